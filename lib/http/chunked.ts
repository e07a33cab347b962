// Copyright 2026 the wirestream authors. MIT license.
/**
 * The chunked transfer coding (RFC 9112 §7.1): a decoder that stops at the body's last byte,
 * with trailers, and an encoder.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { codecStreams, kindOf } from "../_codec_stream.ts";
import { Slab } from "../_slab.ts";
import { latin1Bytes, latin1Text, writeLatin1 } from "./_latin1.ts";
import { HttpError } from "./error.ts";
import { HOP_BY_HOP, parseFieldLines } from "./head.ts";

/** Options of {@linkcode ChunkedDecoder} and its stream forms. */
export interface ChunkedDecoderOptions {
  /**
   * The longest chunk extension part of a size line (after the size), in bytes (400 above).
   *
   * @default {4096}
   */
  maxExtensionSize?: number;
  /**
   * The largest trailer section, in bytes (431 above it).
   *
   * @default {16384}
   */
  maxTrailerSize?: number;
  /**
   * The most fields in the trailer section (431 above it, as soon as the field that crosses
   * it begins). A head may hold `maxHeaders` fields, 100 by default; trailers, rarer and
   * smaller (a checksum, a gRPC status), are held to fewer: each is parsed and added to a
   * `Headers`.
   *
   * @default {32}
   */
  maxTrailers?: number;
  /**
   * The most data bytes accepted over all chunks (413 above it). `Infinity` lifts it.
   *
   * @default {Infinity}
   */
  maxSize?: number;
}

/** Where {@linkcode ChunkedDecoder.push} delivers data. */
export interface DataSink {
  /** Receives the next data bytes (a view of the input). */
  enqueue(data: Uint8Array): void;
}

// States.
const SIZE = 0,
  SIZE_WS = 1,
  EXT = 2,
  SIZE_LF = 3,
  DATA = 4,
  DATA_CR = 5,
  DATA_LF = 6,
  TRAILER = 7,
  TRAILER_LF = 8,
  DONE = 9;
const CR = 13, LF = 10;
const NO_BYTES = new Uint8Array(0);

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * Decodes the chunked transfer coding with no streams or promises (Ktor's `decodeChunked`):
 * hex sizes in either case, chunk extensions (checked and skipped, length-limited), the
 * trailer section (limited in bytes and in fields, parsed into `Headers`), and the exact end:
 * {@linkcode push} consumes bytes up to the final CRLF and no further, so what follows (the
 * next request on the connection) is left to the caller. CRLF line ends only; a bare LF is a
 * 400.
 *
 * **Ownership**: data is delivered as views of the input.
 *
 * @example Decoding a body and its trailers
 * ```ts
 * import { ChunkedDecoder } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("5;x=y\r\nhello\r\n0\r\nChecksum: 1\r\n\r\nNEXT");
 * const parts: string[] = [];
 * const decoder = new ChunkedDecoder();
 * const used = decoder.push(wire, { enqueue: (d) => parts.push(new TextDecoder().decode(d)) });
 * assert.deepEqual(parts, ["hello"]);
 * assert.equal(decoder.done, true);
 * assert.equal(used, wire.length - 4); // "NEXT" is left alone
 * assert.equal(decoder.trailers.get("checksum"), "1");
 * ```
 */
export class ChunkedDecoder {
  readonly #maxExtensionSize: number;
  readonly #maxTrailerSize: number;
  readonly #maxTrailers: number;
  readonly #maxSize: number;
  #state = SIZE;
  #size = 0;
  #digits = 0;
  #extension = 0;
  /** Leading zeros of the size being read, past its first digit. */
  #zeros = 0;
  #need = 0;
  #total = 0;
  /** The trailer section's bytes so far (CRLFs included) in [0, #trailerSize). */
  #trailer: Uint8Array = NO_BYTES;
  #trailerSize = 0;
  /** Where the trailer line being read begins in #trailer. */
  #lineStart = 0;
  #trailerFields = 0;
  #trailers = new Headers();

  /**
   * Creates a decoder.
   *
   * @param options The limits.
   * @throws {RangeError} When a limit is not a non-negative integer or Infinity.
   */
  constructor(options: ChunkedDecoderOptions = {}) {
    this.#maxExtensionSize = checkLimit("maxExtensionSize", options.maxExtensionSize ?? 4096);
    this.#maxTrailerSize = checkLimit("maxTrailerSize", options.maxTrailerSize ?? 16_384);
    this.#maxTrailers = checkLimit("maxTrailers", options.maxTrailers ?? 32);
    this.#maxSize = checkLimit("maxSize", options.maxSize ?? Infinity);
  }

  /** Whether the last chunk and the trailer section were read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The trailer fields; complete once {@linkcode done}. */
  get trailers(): Headers {
    return this.#trailers;
  }

  /**
   * The data bytes of the chunks so far: a chunk counts once its size line is read, before
   * its data arrives (so `maxSize` refuses it early).
   */
  get size(): number {
    return this.#total;
  }

  /**
   * Decodes what it can of `chunk`, handing data to `sink`.
   *
   * @param chunk The next coded bytes.
   * @param sink Receives data as views of `chunk`.
   * @returns How many bytes of `chunk` it consumed: all of them, unless the coding ended
   * inside it.
   * @throws {HttpError} 400 for a malformed coding, 413 over `maxSize`, 431 for a trailer
   * section over `maxTrailerSize` or `maxTrailers`.
   */
  push(chunk: Uint8Array, sink: DataSink): number {
    if (this.#failure !== null) throw this.#failure.error;
    try {
      return this.#run(chunk, 0, chunk.length, sink);
    } catch (error) {
      this.#failure = { error };
      throw error;
    }
  }

  /**
   * Decodes `bytes[start, end)` in place: the data bytes are moved down to form one run from
   * `start`, so a caller can hand them on as a single view. Used by the HTTP pipeline over its
   * read buffer.
   *
   * @param bytes The buffer, modified.
   * @param start Where the coded bytes begin.
   * @param end Where they end.
   * @returns How many bytes were consumed and how many data bytes now lie at `start`. When
   * the coding breaks after some data in the same call, that data is returned first (with at
   * least one byte left unconsumed) and the next call throws.
   * @throws {HttpError} As {@linkcode push}.
   */
  compact(bytes: Uint8Array, start: number, end: number): { consumed: number; data: number } {
    if (this.#failure !== null) throw this.#failure.error;
    this.#write = start;
    try {
      const consumed = this.#run(bytes, start, end, null) - start;
      return { consumed, data: this.#write - start };
    } catch (error) {
      this.#failure = { error };
      const data = this.#write - start;
      if (data === 0) throw error;
      // The bad byte lies at or after the write position, so a byte stays unconsumed.
      return { consumed: data, data };
    }
  }

  /** The error the decoder failed with: every later call throws it again. */
  #failure: { error: unknown } | null = null;

  /** The write position of {@linkcode compact}. */
  #write = 0;

  #run(bytes: Uint8Array, start: number, end: number, sink: DataSink | null): number {
    let i = start;
    let state = this.#state;
    while (i < end && state !== DONE) {
      const byte = bytes[i]!;
      switch (state) {
        case SIZE: {
          const digit = hexValue(byte);
          if (digit !== -1) {
            // RFC 9112 §7.1: chunk-size is 1*HEXDIG, so leading zeros are valid (llhttp and
            // hyper read 00000000000000001 as 1). They are held to maxExtensionSize, as the
            // rest of a size line is: a size line is never free. #digits counts the others,
            // which the overflow check below bounds (15 significant digits exceed 2^53 - 1).
            if (this.#size === 0 && digit === 0 && this.#digits > 0) {
              if (++this.#zeros > this.#maxExtensionSize) {
                throw new HttpError(
                  400,
                  `Cannot decode chunked body: a chunk size line exceeds ${this.#maxExtensionSize} bytes`,
                );
              }
            } else {
              this.#digits++;
            }
            this.#size = this.#size * 16 + digit;
            if (this.#size > Number.MAX_SAFE_INTEGER) {
              throw new HttpError(
                400,
                "Cannot decode chunked body: a chunk size overflows 2^53 - 1",
              );
            }
            i++;
            break;
          }
          if (this.#digits === 0) {
            throw new HttpError(
              400,
              `Cannot decode chunked body: expected a hex chunk size, got byte 0x${
                byte.toString(16)
              }`,
            );
          }
          state = SIZE_WS;
          break;
        }
        case SIZE_WS:
          if (byte === 0x20 || byte === 0x09) {
            // Whitespace after a size counts toward the extension limit: it is not free.
            if (++this.#extension > this.#maxExtensionSize) {
              throw new HttpError(
                400,
                `Cannot decode chunked body: chunk extensions exceed ${this.#maxExtensionSize} bytes`,
              );
            }
            i++;
          } else if (byte === 0x3b) {
            state = EXT;
            i++;
          } else if (byte === CR && this.#extension === 0) {
            state = SIZE_LF;
            i++;
          } else {
            // Whitespace is allowed only before ";" (BWS in chunk-ext, RFC 9112 §7.1.1).
            throw new HttpError(
              400,
              `Cannot decode chunked body: unexpected byte 0x${
                byte.toString(16)
              } after a chunk size`,
            );
          }
          break;
        case EXT:
          if (byte === CR) {
            state = SIZE_LF;
          } else if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f) {
            throw new HttpError(
              400,
              "Cannot decode chunked body: a chunk extension holds a control character",
            );
          } else if (++this.#extension > this.#maxExtensionSize) {
            throw new HttpError(
              400,
              `Cannot decode chunked body: chunk extensions exceed ${this.#maxExtensionSize} bytes`,
            );
          }
          i++;
          break;
        case SIZE_LF: {
          if (byte !== LF) {
            throw new HttpError(400, "Cannot decode chunked body: a size line ends with a bare CR");
          }
          i++;
          const size = this.#size;
          this.#size =
            this.#digits =
            this.#extension =
            this.#zeros =
              0;
          if (size === 0) {
            state = TRAILER;
            break;
          }
          if ((this.#total += size) > this.#maxSize) {
            throw new HttpError(
              413,
              `Cannot decode chunked body: it exceeds ${this.#maxSize} bytes`,
            );
          }
          this.#need = size;
          state = DATA;
          break;
        }
        case DATA: {
          const n = Math.min(this.#need, end - i);
          if (sink !== null) sink.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset + i, n));
          else {
            if (this.#write !== i) bytes.copyWithin(this.#write, i, i + n);
            this.#write += n;
          }
          i += n;
          if ((this.#need -= n) === 0) state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (byte !== CR) {
            throw new HttpError(
              400,
              "Cannot decode chunked body: chunk data is longer than its size",
            );
          }
          state = DATA_LF;
          i++;
          break;
        case DATA_LF:
          if (byte !== LF) {
            throw new HttpError(400, "Cannot decode chunked body: chunk data ends with a bare CR");
          }
          state = SIZE;
          i++;
          break;
        case TRAILER: {
          // The trailer section (RFC 9112 §7.1.2): field lines, CRLFs included, gathered whole
          // lines at a time (an indexOf, then one copy) into #trailer, up to an empty line
          // that ends the body and is not part of it.
          if (this.#trailerSize === this.#lineStart) {
            if (byte === CR) { // the empty line, or a bare CR that the next byte shows
              state = TRAILER_LF;
              i++;
              break;
            }
            if (byte === LF) {
              throw new HttpError(400, "Cannot decode chunked body: a trailer line is a bare LF");
            }
            if (++this.#trailerFields > this.#maxTrailers) {
              throw new HttpError(
                431,
                `Cannot decode chunked body: trailers exceed ${this.#maxTrailers} fields`,
              );
            }
          }
          // Search only up to `end`: the bytes past it may be stale (compact's buffer).
          const lf = (end === bytes.length ? bytes : bytes.subarray(0, end)).indexOf(LF, i);
          const stop = lf === -1 ? end : lf + 1;
          const size = this.#trailerSize + stop - i;
          if (size > this.#maxTrailerSize) {
            throw new HttpError(
              431,
              `Cannot decode chunked body: trailers exceed ${this.#maxTrailerSize} bytes`,
            );
          }
          let trailer = this.#trailer;
          if (trailer.length < size) {
            // Doubling, so a section that trickles in is copied O(log n) times, not per byte.
            const grown = new Uint8Array(
              Math.min(Math.max(size, 2 * trailer.length, 256), this.#maxTrailerSize),
            );
            grown.set(trailer.subarray(0, this.#trailerSize));
            this.#trailer = trailer = grown;
          }
          trailer.set(bytes.subarray(i, stop), this.#trailerSize);
          this.#trailerSize = size;
          i = stop;
          if (lf !== -1) {
            // The line holds a byte before its LF (a bare LF at its start was refused).
            if (trailer[size - 2] !== CR) {
              throw new HttpError(
                400,
                "Cannot decode chunked body: a trailer line ends with a bare LF",
              );
            }
            this.#lineStart = size;
          }
          break;
        }
        case TRAILER_LF:
          if (byte !== LF) {
            throw new HttpError(400, "Cannot decode chunked body: a trailer line holds a bare CR");
          }
          i++;
          this.#parseTrailers();
          state = DONE;
          break;
      }
    }
    this.#state = state;
    return i;
  }

  #parseTrailers(): void {
    if (this.#trailerSize === 0) return;
    const lines = latin1Text(this.#trailer, 0, this.#trailerSize).split("\r\n");
    this.#trailer = NO_BYTES;
    lines.pop(); // every field line ends with CRLF, so the last item is empty
    for (const line of lines) {
      if (line.includes("\r")) {
        throw new HttpError(400, "Cannot decode chunked body: a trailer line holds a bare CR");
      }
    }
    for (const [name, value] of parseFieldLines(lines, 0, "Cannot decode chunked body")) {
      this.#trailers.append(name, value);
    }
  }

  /**
   * Checks that the coding ended.
   *
   * @throws {HttpError} 400 when the input ended before the last chunk and trailers; the
   * decoder's error when it failed.
   */
  end(): void {
    if (this.#failure !== null) throw this.#failure.error;
    if (this.#state !== DONE) {
      throw new HttpError(400, "Cannot decode chunked body: it ended before the last chunk");
    }
  }
}

/**
 * A transform stream from a chunked-coded body to its data: the {@linkcode ChunkedDecoder}
 * as a stream, for `pipeThrough`. `trailers` resolves with the trailer fields at the end.
 * Bad coding, bytes after the coding's end, or an input that ends before it error both sides
 * with an {@linkcode HttpError}: 400, 413 over `maxSize`, 431 for a trailer section over its
 * limits; a chunk that is not a `Uint8Array` errors them with a `TypeError`. The readable side
 * errors only after the data decoded before the error has been read (a `TransformStream`
 * would discard what is still queued). Otherwise it behaves as a `TransformStream` (writes
 * wait for reads; cancelling the readable side errors the writable one), though it is not one.
 *
 * @example Decoding a chunked body
 * ```ts
 * import { ChunkedDecoderStream } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const decoder = new ChunkedDecoderStream();
 * const body = ReadableStream.from([new TextEncoder().encode("3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")]);
 * assert.equal(await new Response(body.pipeThrough(decoder)).text(), "abc");
 * assert.equal((await decoder.trailers).get("x-t"), "1");
 * ```
 */
export class ChunkedDecoderStream {
  /** The decoded data. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The chunked-coded bytes. */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * The trailer fields, once the input ended right after the coding (the writable side
   * closed; data may still wait to be read); rejects if the stream fails, is aborted or its
   * data is cancelled first.
   */
  readonly trailers: Promise<Headers>;

  /**
   * Creates the stream.
   *
   * @param options The decoder's limits.
   */
  constructor(options: ChunkedDecoderOptions = {}) {
    const decoder = new ChunkedDecoder(options);
    const { promise, resolve, reject } = Promise.withResolvers<Headers>();
    promise.catch(() => {});
    this.trailers = promise;
    ({ readable: this.readable, writable: this.writable } = codecStreams<Uint8Array, Uint8Array>({
      push(chunk, sink) {
        const used = decoder.done ? 0 : decoder.push(chunk, sink);
        if (used < chunk.length) {
          throw new HttpError(400, "Cannot decode chunked body: data follows the last chunk");
        }
      },
      end() {
        decoder.end();
        resolve(decoder.trailers);
      },
      failed: reject,
    }, "a chunked body"));
  }
}

/** A decoded chunked body: {@linkcode decodeChunked}'s result. */
export interface DecodedChunked {
  /** The data. */
  body: ReadableStream<Uint8Array>;
  /** The trailer fields, once `body` ended. */
  trailers: Promise<Headers>;
}

/**
 * Ktor's `decodeChunked`: decodes a chunked-coded byte stream.
 *
 * @param readable The coded bytes.
 * @param options The decoder's limits.
 * @returns The data and the trailers.
 *
 * @example Decoding a stream
 * ```ts
 * import { decodeChunked } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const { body, trailers } = decodeChunked(ReadableStream.from([new TextEncoder().encode("2\r\nok\r\n0\r\n\r\n")]));
 * assert.equal(await new Response(body).text(), "ok");
 * assert.equal([...(await trailers)].length, 0);
 * ```
 */
export function decodeChunked(
  readable: ReadableStream<Uint8Array>,
  options: ChunkedDecoderOptions = {},
): DecodedChunked {
  const decoder = new ChunkedDecoderStream(options);
  return { body: readable.pipeThrough(decoder), trailers: decoder.trailers };
}

/** Options of {@linkcode ChunkedEncoderStream}. */
export interface ChunkedEncoderOptions {
  /**
   * Trailer fields sent after the last chunk, or a function that gives them at the end.
   * Names and values are checked as `Headers` checks them, and the fields that frame or
   * route a message (`Content-Length`, `Transfer-Encoding`, `Trailer`, `Host`, and the
   * connection's own: `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade`) are
   * refused: RFC 9110
   * §6.5.1 forbids generating a trailer field whose definition does not allow it, and these
   * must be known before the content. Given as fields, they are checked by the constructor,
   * before anything is sent; given as a function, at the end, when the body went out already
   * (the stream then errors, and the body on the wire ends without its last chunk).
   */
  trailers?: HeadersInit | (() => HeadersInit | Promise<HeadersInit>);
}

/**
 * Serializes trailer fields (names and values checked by `Headers`).
 *
 * @throws {TypeError} For a field `Headers` refuses, or one that frames or routes a message.
 */
function trailerText(init: HeadersInit): string {
  let text = "";
  for (const [name, value] of new Headers(init)) {
    if (HOP_BY_HOP.has(name) || name === "host") {
      throw new TypeError(`Cannot send trailer field ${name}: it frames or routes the message`);
    }
    text += `${name}: ${value}\r\n`;
  }
  return text;
}

/**
 * A `TransformStream` that applies the chunked transfer coding: each non-empty input chunk
 * becomes one chunk (empty ones are skipped, since a zero size ends the body), and the end
 * writes the last chunk and the trailers. Each input chunk yields two outputs: its size line
 * (with the previous chunk's closing CRLF, in a buffer of its own: a reader may transfer it)
 * and the data itself, not copied. A chunk that is not a `Uint8Array` errors the stream with
 * a `TypeError` (its `length` need not be its size in bytes).
 *
 * @example Encoding a body
 * ```ts
 * import { ChunkedEncoderStream } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const coded = ReadableStream.from([new TextEncoder().encode("hello")])
 *   .pipeThrough(new ChunkedEncoderStream({ trailers: { "x-sum": "5" } }));
 * assert.equal(await new Response(coded).text(), "5\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n");
 * ```
 */
export class ChunkedEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options Trailer fields.
   * @throws {TypeError} For trailer fields given as fields that `Headers` refuses, or that
   * frame or route a message.
   */
  constructor(options: ChunkedEncoderOptions = {}) {
    let first = true;
    // What a stream's reader gets is its own: it may transfer it (a byte stream's enqueue
    // does), which would detach the other size lines of a shared slab still queued.
    const slab = new Slab();
    slab.pooled = false;
    // Fields known now are checked now, before a byte is sent.
    const fixed = options.trailers === undefined || typeof options.trailers === "function"
      ? null
      : trailerText(options.trailers);
    super({
      transform(chunk, controller) {
        if (!(chunk instanceof Uint8Array)) {
          // Its length is not its size in bytes (a Uint16Array), or it has none: the size
          // line would lie about what follows.
          throw new TypeError(
            `Cannot encode a chunked body: a chunk of type ${kindOf(chunk)} is not a Uint8Array`,
          );
        }
        if (chunk.length === 0) return;
        controller.enqueue(sizeLine(slab, chunk.length, first));
        controller.enqueue(chunk);
        first = false;
      },
      async flush(controller) {
        const trailers = typeof options.trailers === "function"
          ? trailerText(await options.trailers())
          : fixed ?? "";
        const end = `${first ? "" : "\r\n"}0\r\n${trailers}\r\n`;
        controller.enqueue(latin1Bytes(end));
      },
    });
  }
}

/**
 * The size line of a chunk of `size` bytes, after the CRLF that closes the previous chunk
 * (none before the first, or with `first` true). The pipeline writes chunked responses with
 * it too.
 */
export function sizeLine(slab: Slab, size: number, first: boolean): Uint8Array {
  const text = `${first ? "" : "\r\n"}${size.toString(16)}\r\n`;
  const line = slab.allocate(text.length);
  writeLatin1(line, 0, text);
  return line;
}
