// Copyright 2026 the wirestream authors. MIT license.
// Reads and parses an HTTP/1.1 message head (RFC 9112 §2–5) from a byte stream, for the
// WebSocket handshake over a bare duplex: the client's response, acceptWebSocket's request.
// Strict: CRLF line ends only (a bare LF is a 400), token field names with no whitespace
// before the colon, no obs-fold, no CR, LF or NUL in values, and a bounded size.

import { HttpError } from "../http/error.ts";

/** A parsed head: the start line's three parts and the fields. */
export interface Head {
  /** Request: method, target, version. Response: version, status, reason. */
  start: [string, string, string];
  headers: Headers;
  /** Bytes read past the head: the start of what follows it. */
  rest: Uint8Array;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, spaces and tabs.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Finds CRLFCRLF in `bytes` from `from`; returns the index after it, or -1. */
function headEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(from, 3); i < bytes.length; i++) {
    if (
      bytes[i] === 0x0a && bytes[i - 1] === 0x0d && bytes[i - 2] === 0x0a && bytes[i - 3] === 0x0d
    ) return i + 1;
  }
  return -1;
}

/**
 * Reads a head from `readable` (released afterwards, so another reader can take over), at
 * most `maxSize` bytes.
 *
 * @throws {HttpError} 431 over `maxSize`, 400 for a malformed head or a stream that ends first.
 */
export async function readHead(
  readable: ReadableStream<Uint8Array>,
  maxSize: number,
  kind: "request" | "response",
): Promise<Head> {
  const reader = readable.getReader();
  let buffer = new Uint8Array(0);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) {
        throw new HttpError(
          400,
          `Cannot read ${kind} head: the connection ended after ${buffer.length} bytes`,
        );
      }
      const scanFrom = buffer.length - 3;
      const next = new Uint8Array(buffer.length + value.length);
      next.set(buffer);
      next.set(value, buffer.length);
      buffer = next;
      const end = headEnd(buffer, scanFrom);
      if (end !== -1 && end <= maxSize) {
        return parseHead(buffer.subarray(0, end), buffer.subarray(end), kind);
      }
      if (buffer.length > maxSize) {
        throw new HttpError(431, `Cannot read ${kind} head: it exceeds ${maxSize} bytes`);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Parses a complete head (ending in CRLFCRLF). */
export function parseHead(bytes: Uint8Array, rest: Uint8Array, kind: "request" | "response"): Head {
  // One character per byte: TextDecoder("latin1") is windows-1252 and would turn obs-text
  // such as 0x80 into U+20AC.
  let text = "";
  const end = bytes.length - 4;
  for (let at = 0; at < end; at += 4096) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(at, Math.min(at + 4096, end)) as unknown as number[],
    );
  }
  const lines = text.split("\r\n");
  for (const line of lines) {
    if (line.includes("\n") || line.includes("\r") || line.includes("\0")) {
      throw new HttpError(400, `Cannot read ${kind} head: a line holds a bare CR, LF or NUL`);
    }
  }
  const startLine = lines[0]!;
  let start: [string, string, string];
  if (kind === "request") {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/\d\.\d)$/.exec(startLine);
    if (m === null) {
      throw new HttpError(
        400,
        `Cannot read request head: bad request line ${JSON.stringify(startLine.slice(0, 64))}`,
      );
    }
    start = [m[1]!, m[2]!, m[3]!];
  } else {
    const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(startLine);
    if (m === null) {
      throw new HttpError(
        400,
        `Cannot read response head: bad status line ${JSON.stringify(startLine.slice(0, 64))}`,
      );
    }
    start = [m[1]!, m[2]!, m[3] ?? ""];
  }
  const headers = new Headers();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name)) {
      // Covers obs-fold (a line starting with whitespace) and whitespace before the colon.
      throw new HttpError(
        400,
        `Cannot read ${kind} head: bad field line ${JSON.stringify(line.slice(0, 64))}`,
      );
    }
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) {
      throw new HttpError(400, `Cannot read ${kind} head: bad value in field ${name}`);
    }
    headers.append(name, value);
  }
  return { start, headers, rest };
}

/** Whether a comma-separated header holds `token`, case-insensitively (RFC 9110 §5.6.1). */
export function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}
