// Copyright 2026 the wirestream authors. MIT license.
/**
 * The RFC 6455 §5 frame decoder: a synchronous state machine and its stream wrapper.
 *
 * @module
 */

import { codecStreams } from "../_codec_stream.ts";
import { checkLimit } from "../_options.ts";
import { MessageTooBigError, WebSocketError } from "./error.ts";
import { Frame, type Opcode } from "./frame.ts";
import { maskInto, maskWith } from "./mask.ts";

/** Which side of the connection an endpoint plays: it decides masking (RFC 6455 §5.1). */
export type Role = "server" | "client";

/** The reserved bits an extension allows on received frames (RFC 6455 §5.2). */
export interface AllowedRsv {
  /** Allow RSV1 (permessage-deflate's "compressed" bit). */
  rsv1?: boolean;
  /** Allow RSV2. */
  rsv2?: boolean;
  /** Allow RSV3. */
  rsv3?: boolean;
}

/** Options of {@linkcode FrameDecoder} and {@linkcode FrameDecoderStream}. */
export interface FrameDecoderOptions {
  /**
   * The role of the endpoint that receives: a server requires every frame masked, a client
   * requires every frame unmasked (RFC 6455 §5.1).
   *
   * @default {"server"}
   */
  role?: Role;
  /**
   * The largest payload accepted in one data frame, in bytes; checked from the header before
   * any payload is buffered (close code 1009). `Infinity` lifts the limit up to 2^53 − 1.
   * Control frames are held to RFC 6455's 125 bytes whatever this is.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
  /**
   * The reserved bits that an extension allows; any other set bit fails with 1002. By default
   * (an empty object) none is allowed.
   *
   * @default {none}
   */
  allowedRsv?: AllowedRsv;
}

/** Where {@linkcode FrameDecoder.push} delivers frames; a stream controller is one. */
export interface FrameSink {
  /**
   * Receives one decoded frame. Returning `false` stops the decoder after it: `push` then
   * returns how far it read, and the rest of the chunk is left as it was, for a later `push`.
   */
  enqueue(frame: Frame): unknown;
}

/** The default of `maxFrameSize`: 1 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 1_048_576;

// States. HEAD gathers the first two header bytes, LENGTH the extended length and masking
// key when the header spans chunks, PAYLOAD the rest of a payload that spans chunks.
const HEAD = 0, LENGTH = 1, PAYLOAD = 2, FAILED = 3;
const EMPTY = new Uint8Array(0);

/** Allocates a payload buffer; a size the runtime cannot allocate is a 1009, not a crash. */
function allocate(length: number): Uint8Array {
  try {
    return new Uint8Array(length);
  } catch {
    throw new MessageTooBigError(
      `Cannot decode frame: payload of ${length} bytes cannot be allocated`,
      length,
      length,
    );
  }
}

/**
 * Sets the limit of a decoder for the frames whose header is still to come. Internal: a
 * session whose data frames are held to a message limit lifts it to its maxFrameSize once it
 * closes and discards data (see SessionCore).
 */
export let setMaxFrameSize: (decoder: FrameDecoder, limit: number) => void;

/**
 * Decodes RFC 6455 frames from bytes, one chunk at a time, with no streams or promises, so a
 * transport loop can drive it directly. Any chunking works: a header split anywhere, many
 * frames in one chunk, one byte at a time, empty chunks.
 *
 * The rules of RFC 6455 §5 for a receiver are checked: masking by role, reserved bits,
 * reserved opcodes, control frames at most 125 bytes and never fragmented, 64-bit lengths
 * without the top bit, and `maxFrameSize` from the header. A violation throws a
 * {@linkcode WebSocketError} (1002) or {@linkcode MessageTooBigError} (1009) and the decoder
 * stays failed. A length written in a longer form than it needs (5 in the 16-bit form) is
 * accepted: §5.2 requires senders to use the shortest form but gives receivers no rule, and
 * `ws` accepts such frames too.
 *
 * **Ownership**: a payload that lies whole within one input chunk is emitted as a view of
 * that chunk, unmasked in place (the chunk is modified); a payload spanning chunks is copied
 * into a buffer of its exact size. Do not reuse an input chunk while a frame from it is held.
 *
 * @example Decoding a masked frame split in two
 * ```ts
 * import { Frame, FrameDecoder } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const frames: Frame[] = [];
 * const decoder = new FrameDecoder({ role: "server" });
 * // RFC 6455 §5.7: a masked text frame "Hello", fed in two pieces.
 * const wire = Uint8Array.of(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
 * decoder.push(wire.subarray(0, 3), { enqueue: (f) => frames.push(f) });
 * decoder.push(wire.subarray(3), { enqueue: (f) => frames.push(f) });
 * decoder.end();
 * assert.equal(new TextDecoder().decode(frames[0]!.payload), "Hello");
 * ```
 */
export class FrameDecoder {
  static {
    setMaxFrameSize = (decoder, limit) => {
      decoder.#maxFrameSize = limit;
    };
  }
  readonly #masked: boolean;
  #maxFrameSize: number;
  readonly #rsvMask: number;
  #state = HEAD;
  /** Header bytes gathered while a header spans chunks (2 + 8 + 4 at most). */
  readonly #head = new Uint8Array(14);
  #headFill = 0;
  #headNeed = 2;
  // The frame being decoded.
  #b0 = 0;
  #length = 0;
  #key = 0;
  /** Payload bytes still missing from #payload. */
  #need = 0;
  #payload: Uint8Array = EMPTY;

  /**
   * Creates a decoder.
   *
   * @param options The role, `maxFrameSize` and allowed reserved bits.
   * @throws {RangeError} When `maxFrameSize` is negative or not an integer.
   */
  constructor(options: FrameDecoderOptions = {}) {
    const role = options.role ?? "server";
    if (role !== "server" && role !== "client") {
      throw new RangeError(`Invalid role: ${JSON.stringify(role)} is not "server" or "client"`);
    }
    this.#masked = role === "server";
    this.#maxFrameSize = checkLimit("maxFrameSize", options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    const rsv = options.allowedRsv ?? {};
    this.#rsvMask = (rsv.rsv1 ? 0x40 : 0) | (rsv.rsv2 ? 0x20 : 0) | (rsv.rsv3 ? 0x10 : 0);
  }

  /**
   * Decodes the frames that `chunk` completes and hands each to `sink.enqueue`, in order,
   * until the chunk ends or `sink.enqueue` returns `false`.
   *
   * @param chunk The next bytes of the connection; may be modified (unmasked in place).
   * @param sink Receives the frames.
   * @returns How many bytes of `chunk` were read: all of them, unless the sink stopped the
   * decoder, which then expects the rest (`chunk.subarray(read)`) next.
   * @throws {WebSocketError} On a protocol violation (1002) or a frame over `maxFrameSize`
   * (1009); a decoder that threw stays failed.
   */
  push(chunk: Uint8Array, sink: FrameSink): number {
    const n = chunk.length;
    let i = 0;
    let state = this.#state;
    if (state === FAILED) throw new WebSocketError("Cannot decode frame: decoder has failed", 1002);
    try {
      while (i < n) {
        if (state === PAYLOAD) {
          // The rest of a payload that spans chunks.
          const take = Math.min(this.#need, n - i);
          const at = this.#payload.length - this.#need;
          const piece = new Uint8Array(chunk.buffer, chunk.byteOffset + i, take);
          if (this.#masked) maskInto(piece, this.#payload, at, this.#key, at);
          else this.#payload.set(piece, at);
          i += take;
          if ((this.#need -= take) > 0) break;
          const go = this.#emit(this.#payload, sink);
          this.#payload = EMPTY;
          state = HEAD;
          if (!go) break;
          continue;
        }
        if (state === HEAD && this.#headFill === 0 && n - i >= 14) {
          // Fast path: the whole header is in this chunk.
          i = this.#header(chunk, i);
        } else {
          // Gather header bytes in #head until the header is complete.
          const head = this.#head;
          while (i < n && this.#headFill < this.#headNeed) head[this.#headFill++] = chunk[i++]!;
          if (this.#headFill < this.#headNeed) break;
          if (state === HEAD) {
            const extra = this.#headerSize(head[0]!, head[1]!) - 2;
            if (extra > 0) {
              this.#headNeed += extra;
              state = LENGTH;
              continue;
            }
          }
          this.#header(head, 0);
          this.#headFill = 0;
          this.#headNeed = 2;
        }
        // The header is read; now the payload.
        const length = this.#length;
        if (n - i >= length) {
          // A view made by the constructor: cheaper than subarray, which looks up a species.
          const payload = length === 0
            ? EMPTY
            : new Uint8Array(chunk.buffer, chunk.byteOffset + i, length);
          if (this.#masked && length > 0) maskWith(payload, this.#key, 0);
          i += length;
          state = HEAD;
          if (!this.#emit(payload, sink)) break;
        } else {
          this.#payload = allocate(length);
          this.#need = length;
          state = PAYLOAD;
        }
      }
    } catch (error) {
      this.#state = FAILED;
      throw error;
    }
    this.#state = state;
    return i;
  }

  /**
   * Checks that the input ended between frames.
   *
   * @throws {WebSocketError} 1002 when the input ended inside a frame.
   */
  end(): void {
    if (this.#state === FAILED) return;
    if (this.#state !== HEAD || this.#headFill !== 0) {
      this.#state = FAILED;
      throw new WebSocketError("Cannot decode frame: input ended inside a frame", 1002);
    }
  }

  /** Checks the first two header bytes and returns the header's full size. */
  #headerSize(b0: number, b1: number): number {
    if ((b0 & 0x70 & ~this.#rsvMask) !== 0) {
      throw new WebSocketError(
        `Cannot decode frame: reserved bits 0x${
          (b0 & 0x70).toString(16)
        } are set and no extension allows them`,
        1002,
      );
    }
    const opcode = b0 & 0x0f;
    if (opcode > 0xa || (opcode > 0x2 && opcode < 0x8)) {
      throw new WebSocketError(
        `Cannot decode frame: opcode 0x${opcode.toString(16)} is reserved`,
        1002,
      );
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.#masked) {
      throw new WebSocketError(
        this.#masked
          ? "Cannot decode frame: a client frame is not masked (RFC 6455 §5.1)"
          : "Cannot decode frame: a server frame is masked (RFC 6455 §5.1)",
        1002,
      );
    }
    const len7 = b1 & 0x7f;
    if (opcode >= 0x8) {
      if ((b0 & 0x80) === 0) {
        throw new WebSocketError("Cannot decode frame: a control frame is fragmented", 1002);
      }
      if (len7 > 125) {
        throw new WebSocketError(
          "Cannot decode frame: a control frame's payload exceeds 125 bytes",
          1002,
        );
      }
    }
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  /** Reads a complete header at `bytes[at]`, checks it, and returns the index after it. */
  #header(bytes: Uint8Array, at: number): number {
    const b0 = bytes[at]!, b1 = bytes[at + 1]!;
    this.#headerSize(b0, b1);
    let length = b1 & 0x7f;
    let i = at + 2;
    if (length === 126) {
      length = (bytes[i]! << 8) | bytes[i + 1]!;
      i += 2;
    } else if (length === 127) {
      const high =
        ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
      const low =
        ((bytes[i + 4]! << 24) | (bytes[i + 5]! << 16) | (bytes[i + 6]! << 8) | bytes[i + 7]!) >>>
        0;
      if (high >= 0x8000_0000) {
        throw new WebSocketError(
          "Cannot decode frame: the 64-bit length has its top bit set",
          1002,
        );
      }
      // Above 2^53 − 1 the length is not exact as a number; it exceeds any limit anyway.
      length = high > 0x1f_ffff ? Number.MAX_SAFE_INTEGER + 1 : high * 0x1_0000_0000 + low;
      i += 8;
    }
    // A control frame is held to 125 bytes above (RFC 6455 §5.5), whatever maxFrameSize is: a
    // limit under 125 must not turn a peer's close reason or ping into a 1009.
    if ((length > this.#maxFrameSize && (b0 & 0x08) === 0) || length > Number.MAX_SAFE_INTEGER) {
      throw new MessageTooBigError(
        `Cannot decode frame: payload of ${length} bytes exceeds maxFrameSize of ${this.#maxFrameSize} bytes`,
        this.#maxFrameSize,
        length,
      );
    }
    if (this.#masked) {
      this.#key =
        (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0;
      i += 4;
    }
    this.#b0 = b0;
    this.#length = length;
    return i;
  }

  /** Hands a frame on; false when the sink asks the decoder to stop after it. */
  #emit(payload: Uint8Array, sink: FrameSink): boolean {
    const b0 = this.#b0;
    return sink.enqueue(
      new Frame(
        (b0 & 0x0f) as Opcode,
        payload,
        (b0 & 0x80) !== 0,
        (b0 & 0x40) !== 0,
        (b0 & 0x20) !== 0,
        (b0 & 0x10) !== 0,
      ),
    ) !== false;
  }
}

/**
 * A transform stream from bytes to {@linkcode Frame}s: the {@linkcode FrameDecoder} as a
 * stream, for `pipeThrough`. A protocol violation errors both sides with the decoder's
 * {@linkcode WebSocketError}; input that ends inside a frame errors them with 1002; a chunk
 * that is not a `Uint8Array`, with a `TypeError`. The readable side errors only after every
 * frame decoded before the violation has been read (a `TransformStream` would discard those
 * still queued): a close frame followed by garbage
 * in the same chunk still arrives. Otherwise it behaves as a `TransformStream` (writes wait
 * for reads; cancelling the readable side errors the writable one), though it is not one.
 *
 * @example Decoding frames from a byte stream
 * ```ts
 * import { FrameDecoderStream } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * // Two unmasked server frames (a client decodes them): text "hi" and a ping.
 * const bytes = ReadableStream.from([Uint8Array.of(0x81, 0x02, 0x68), Uint8Array.of(0x69, 0x89, 0x00)]);
 * const frames = await Array.fromAsync(bytes.pipeThrough(new FrameDecoderStream({ role: "client" })));
 * assert.deepEqual(frames.map((f) => f.opcode), [0x1, 0x9]);
 * assert.equal(new TextDecoder().decode(frames[0]!.payload), "hi");
 * ```
 */
export class FrameDecoderStream {
  /** The decoded frames. */
  readonly readable: ReadableStream<Frame>;
  /** The bytes to decode. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * Creates the stream.
   *
   * @param options The decoder's options.
   */
  constructor(options: FrameDecoderOptions = {}) {
    const decoder = new FrameDecoder(options);
    ({ readable: this.readable, writable: this.writable } = codecStreams<Uint8Array, Frame>({
      push: (chunk, sink) => decoder.push(chunk, sink),
      end: () => decoder.end(),
    }, "frames"));
  }
}
