// Copyright 2026 the wirestream authors. MIT license.
// The client side of HTTP/1.1 for the wire engine's tests: a response reader of our own (it
// shares no code with lib/http, so a parser bug cannot hide itself), and small helpers.

import assert from "node:assert/strict";
import { within } from "./async.ts";

export { type Deferred, deferred, delay, within } from "./async.ts";
export { sameBytes } from "./random.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The UTF-8 text of `bytes`. */
export function textOf(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Latin-1 text of `bytes`: one character per byte, for looking at wire bytes. */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    text += String.fromCharCode(...bytes.subarray(at, at + 8192));
  }
  return text;
}

/** One response as it came over the wire. */
export interface WireResponse {
  /** `HTTP/1.1` (or what the status line said). */
  version: string;
  /** The status code. */
  status: number;
  /** The reason phrase. */
  reason: string;
  /** The header fields in order, names lowercased, values trimmed. */
  fields: [string, string][];
  /** The fields as `Headers` (repeated names joined). */
  headers: Headers;
  /** The body, de-chunked. */
  body: Uint8Array;
  /** How the body was delimited. */
  framing: "none" | "length" | "chunked" | "close";
  /** Whether the body arrived whole (false: the connection ended inside it). */
  complete: boolean;
  /** The chunked body's trailer fields, names lowercased. */
  trailers: [string, string][];
  /** The response's bytes exactly as sent: head, framing and body. */
  raw: Uint8Array;
}

/** A malformed response: the engine sent bytes that are not HTTP/1.1. */
export class WireError extends Error {
  override name = "WireError";
}

/**
 * Reads HTTP/1.1 responses from a byte stream (a socket's readable, the output of an
 * in-memory pipeline), strictly: CRLF line ends, a valid status line, one framing per
 * response. A read error (a reset) ends the input like an EOF and is kept in `error`.
 */
export class ResponseReader {
  /** The error the stream failed with, if it did. */
  error: unknown = null;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = new Uint8Array(65_536);
  #start = 0;
  #end = 0;
  #ended = false;

  /** Locks `readable`. */
  constructor(readable: ReadableStream<Uint8Array>) {
    this.#reader = readable.getReader();
  }

  /** Whether the input ended (EOF or error) and every byte was read. */
  get ended(): boolean {
    return this.#ended && this.#start === this.#end;
  }

  /** The number of bytes received and not yet read as a response. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more; false at the end of the input. */
  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.#reader.read();
    } catch (error) {
      this.error = error;
      this.#ended = true;
      return false;
    }
    if (result.done) {
      this.#ended = true;
      return false;
    }
    const chunk = result.value;
    if (this.#buffer.length - this.#end < chunk.length) {
      const size = this.#end - this.#start + chunk.length;
      if (size > this.#buffer.length / 2) {
        const fresh = new Uint8Array(size * 2);
        fresh.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = fresh;
      } else {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      }
      this.#end -= this.#start;
      this.#start = 0;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
    return true;
  }

  /** Index of CRLF at or after `from` (absolute), or -1. */
  #crlf(from: number): number {
    for (let i = from; i + 1 < this.#end; i++) {
      if (this.#buffer[i] === 13 && this.#buffer[i + 1] === 10) return i;
    }
    return -1;
  }

  /** Waits until at least `n` unread bytes are here; false when the input ends first. */
  async #need(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) if (!(await this.#fill())) return false;
    return true;
  }

  /** Reads one CRLF-terminated line starting at `at` (absolute); null at EOF. */
  async #line(at: number): Promise<{ line: string; next: number } | null> {
    let scanned = at;
    while (true) {
      const cr = this.#crlf(scanned);
      if (cr !== -1) {
        return { line: latin1(this.#buffer.subarray(at, cr)), next: cr + 2 };
      }
      scanned = Math.max(at, this.#end - 1);
      const offset = this.#start;
      if (!(await this.#fill())) return null;
      // The buffer may have moved to the front.
      at -= offset - this.#start;
      scanned -= offset - this.#start;
    }
  }

  /**
   * Reads the next response. `method` tells a response to HEAD (which has no body).
   *
   * @returns The response, or null when the input ended before its first byte.
   * @throws {WireError} When the bytes are not a valid response, or end inside the head.
   */
  async next(method = "GET"): Promise<WireResponse | null> {
    if (!(await this.#need(1))) return null;
    // Read the head, line by line, with absolute indexes that we fix up after each fill.
    let head = "";
    while (true) {
      const cut = head.length;
      const found = await this.#line(this.#start + cut);
      if (found === null) {
        throw new WireError(`The input ended inside a response head: ${JSON.stringify(head)}`);
      }
      head += found.line + "\r\n";
      if (found.line === "") break;
      if (found.line.includes("\n") || found.line.includes("\r")) {
        throw new WireError(`A bare CR or LF in a response head: ${JSON.stringify(found.line)}`);
      }
    }
    const headLength = head.length;
    const lines = head.slice(0, -4).split("\r\n");
    const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!);
    if (m === null) throw new WireError(`A bad status line: ${JSON.stringify(lines[0])}`);
    const fields: [string, string][] = [];
    const headers = new Headers();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) {
        throw new WireError(`A bad field line: ${JSON.stringify(line)}`);
      }
      const name = line.slice(0, colon).toLowerCase(), value = line.slice(colon + 1).trim();
      fields.push([name, value]);
      headers.append(name, value);
    }
    const status = Number(m[2]);
    const base = {
      version: m[1]!,
      status,
      reason: m[3]!,
      fields,
      headers,
      trailers: [] as [string, string][],
    };
    let at = this.#start + headLength; // absolute index of the body's first byte
    const parts: Uint8Array[] = [];
    let framing: WireResponse["framing"];
    let complete = true;
    const te = headers.get("transfer-encoding");
    const cl = headers.get("content-length");
    if (method === "HEAD" || status < 200 || status === 204 || status === 304) {
      framing = "none";
    } else if (te !== null) {
      if (te.toLowerCase() !== "chunked") throw new WireError(`A bad Transfer-Encoding: ${te}`);
      if (cl !== null) throw new WireError("Both Transfer-Encoding and Content-Length");
      framing = "chunked";
      while (true) {
        const offset = this.#start;
        const sizeLine = await this.#line(at);
        at -= offset - this.#start;
        if (sizeLine === null) {
          complete = false;
          at = this.#end;
          break;
        }
        const size = parseInt(sizeLine.line.split(";")[0]!, 16);
        if (!/^[0-9a-fA-F]+(;.*)?$/.test(sizeLine.line) || !(size >= 0)) {
          throw new WireError(`A bad chunk size line: ${JSON.stringify(sizeLine.line)}`);
        }
        at = sizeLine.next;
        if (size === 0) {
          // Trailers, then the empty line.
          while (true) {
            const before = this.#start;
            const line = await this.#line(at);
            at -= before - this.#start;
            if (line === null) {
              complete = false;
              at = this.#end;
              break;
            }
            at = line.next;
            if (line.line === "") break;
            const colon = line.line.indexOf(":");
            base.trailers.push([
              line.line.slice(0, colon).toLowerCase(),
              line.line.slice(colon + 1).trim(),
            ]);
          }
          break;
        }
        const rel = at - this.#start;
        if (!(await this.#need(rel + size + 2))) {
          parts.push(this.#buffer.slice(this.#start + rel, this.#end));
          complete = false;
          at = this.#end;
          break;
        }
        at = this.#start + rel;
        parts.push(this.#buffer.slice(at, at + size));
        if (this.#buffer[at + size] !== 13 || this.#buffer[at + size + 1] !== 10) {
          throw new WireError("A chunk does not end with CRLF");
        }
        at += size + 2;
      }
    } else if (cl !== null) {
      if (!/^\d+$/.test(cl)) throw new WireError(`A bad Content-Length: ${cl}`);
      framing = "length";
      const size = Number(cl);
      const rel = at - this.#start;
      complete = await this.#need(rel + size);
      at = this.#start + rel;
      const stop = Math.min(at + size, this.#end);
      parts.push(this.#buffer.slice(at, stop));
      at = stop;
    } else {
      framing = "close";
      const rel = at - this.#start;
      while (await this.#fill()) { /* read to the end */ }
      at = this.#start + rel;
      parts.push(this.#buffer.slice(at, this.#end));
      at = this.#end;
    }
    const raw = this.#buffer.slice(this.#start, at);
    this.#start = at;
    let size = 0;
    for (const part of parts) size += part.length;
    const body = new Uint8Array(size);
    size = 0;
    for (const part of parts) {
      body.set(part, size);
      size += part.length;
    }
    return { ...base, body, framing, complete, raw };
  }

  /**
   * Reads to the end of the input.
   *
   * @returns The bytes that came after the last response read (none, for a clean close).
   */
  async rest(): Promise<Uint8Array> {
    while (await this.#fill()) { /* read to the end */ }
    const out = this.#buffer.slice(this.#start, this.#end);
    this.#start = this.#end;
    return out;
  }

  /**
   * Reads exactly `n` bytes past what was read (the frames after a 101, say).
   *
   * @returns The bytes, or null when the input ends first.
   */
  async bytes(n: number): Promise<Uint8Array | null> {
    if (!(await this.#need(n))) return null;
    const out = this.#buffer.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** Stops reading; never throws. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** The head of a POST with a chunked body, for a handler that does not read it. */
export const UNREAD_CHUNKED =
  "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

/** The bytes of a chunked body made of `chunks`, with no extensions or trailers. */
export function chunked(...chunks: string[]): string {
  return chunks.map((c) => `${utf8(c).length.toString(16)}\r\n${c}\r\n`).join("") + "0\r\n\r\n";
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A raw TCP client on 127.0.0.1:`port`, with a response reader on its input. */
export async function dial(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const responses = new ResponseReader(conn.readable);
  let closed = false;
  return {
    conn,
    responses,
    /** Writes bytes (a string as UTF-8). */
    send(data: string | Uint8Array): Promise<void> {
      return writeAll(conn, typeof data === "string" ? utf8(data) : data);
    },
    /** The next response, within 5 s. */
    next(method = "GET"): Promise<WireResponse | null> {
      return within(responses.next(method), 5000, "the next response");
    },
    /** Asserts the server closed the connection with no more bytes and no reset. */
    async expectClosed(ms = 5000): Promise<void> {
      const rest = await within(responses.rest(), ms, "the server to close the connection");
      assert.equal(latin1(rest), "", "no bytes after the last response");
      assert.equal(responses.error, null, "no reset");
    },
    /** Closes the socket; never throws. */
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await responses.cancel(); // closes the socket as well
      try {
        conn.close();
      } catch {
        // Closed by the cancel.
      }
    },
  };
}
