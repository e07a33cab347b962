// Copyright 2026 the wirestream authors. MIT license.
/**
 * The RFC 6455 §5 frame encoder: a synchronous core and its stream wrapper.
 *
 * @module
 */

import type { Role } from "./decoder.ts";
import type { Frame } from "./frame.ts";
import { Slab } from "../_slab.ts";
import { maskInto } from "./mask.ts";

/** Options of {@linkcode FrameEncoder} and {@linkcode FrameEncoderStream}. */
export interface FrameEncoderOptions {
  /**
   * The role of the endpoint that sends. A client masks every frame (RFC 6455 §5.1).
   *
   * @default {"server"}
   */
  role?: Role;
  /**
   * Mask frames sent by a server too (Ktor's `masking`). RFC 6455 §5.1 forbids masked server
   * frames and standard clients (browsers, `ws`, Deno's `WebSocket`) fail such a
   * connection, so leave it off unless the peer is known to accept them. A client always
   * masks.
   *
   * @default {false}
   */
  masking?: boolean;
}

/** Where {@linkcode FrameEncoder.encode} delivers bytes; a stream controller is one. */
export interface ByteSink {
  /** Receives the next bytes to send. */
  enqueue(chunk: Uint8Array): void;
}

// Unmasked payloads up to this size travel in one chunk with their header: copying 4 KiB
// costs less than a second write on the transport. Larger ones follow the header as is, unless
// the chunk would be lent a pooled block (a session on an engine's connection, lib/_slab.ts):
// then up to LENT_MERGE_LIMIT, as the copy needs no new memory.
const MERGE_LIMIT = 4096;
/**
 * The most merged when lent: 16 KiB with a 4-byte header. Measured on sockets (ws_pair.ts, 64
 * connections, 3–5 alternated runs each, merging up to 32 KiB against up to 8 KiB): server CPU
 * per echo 36.1 → 28.8 µs at 12,000 bytes, 38.6–48.6 → 26.5–31.1 at 16,000, 75.2 → 56.3 at
 * 20,000, but 54.3 → 65.9 at 24,000 and 56.6–63.9 → 66.2–71.2 at 30,000.
 */
const LENT_MERGE_LIMIT = 16_384 - 4;
// Masking keys come from a pool of random bytes refilled with crypto.getRandomValues: each
// frame takes 4 fresh bytes, and the system is asked for randomness once per 1024 frames.
const KEY_POOL = new Uint8Array(4096);
let keyAt = KEY_POOL.length;

function nextKey(): number {
  if (keyAt === KEY_POOL.length) {
    crypto.getRandomValues(KEY_POOL);
    keyAt = 0;
  }
  const p = KEY_POOL, i = keyAt;
  keyAt += 4;
  return (p[i]! | (p[i + 1]! << 8) | (p[i + 2]! << 16) | (p[i + 3]! << 24)) >>> 0;
}

/**
 * The slab of an encoder's chunks. Internal: a session on a connection an engine made turns on
 * the slab's `lending` and gives each chunk back once written (see lib/_slab.ts). Then chunks
 * of 1024 to 32768 bytes are lent pooled blocks, and an unmasked payload of up to 16380 bytes
 * goes with its header in one chunk when a block is free (above 4096 bytes it otherwise
 * follows its header uncopied).
 */
export let encoderSlab: (encoder: FrameEncoder) => Slab;

/** Checks that a frame can go on the wire. */
function checkFrame(frame: Frame): void {
  const op = frame.opcode;
  if (!Number.isInteger(op) || op < 0 || op > 0xa || (op > 0x2 && op < 0x8)) {
    throw new RangeError(`Cannot encode frame: opcode ${op} is reserved`);
  }
  if (op >= 0x8 && (!frame.fin || frame.payload.length > 125)) {
    throw new RangeError(
      `Cannot encode frame: a control frame must be final and at most 125 bytes, got ${frame.payload.length} bytes${
        frame.fin ? "" : " not final"
      }`,
    );
  }
}

/**
 * Encodes {@linkcode Frame}s as RFC 6455 bytes with no streams or promises: the minimal
 * length encoding, and masking with a fresh random key per frame for a client (or with the
 * `masking` option).
 *
 * **Ownership**: an unmasked payload over 4096 bytes is emitted as is, after its header, so
 * it must not change until it is written; a smaller one is copied together with its header
 * into one chunk; a masked payload is masked into a new buffer and the frame's payload is
 * left untouched. Chunks up to 2064 bytes are views into an 8 KiB slab of this encoder's (a
 * fresh `Uint8Array` costs 10–20 times more in Deno): write them, copy them or drop them, but
 * do not transfer their `buffer` — or set {@linkcode FrameEncoder.pooled} to false first.
 *
 * @example Encoding a server frame and a client frame
 * ```ts
 * import { Frame, FrameEncoder } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const chunks: Uint8Array[] = [];
 * new FrameEncoder({ role: "server" }).encode(Frame.text("hi"), { enqueue: (c) => chunks.push(c) });
 * assert.deepEqual([...chunks[0]!], [0x81, 0x02, 0x68, 0x69]);
 *
 * new FrameEncoder({ role: "client" }).encode(Frame.text("hi"), { enqueue: (c) => chunks.push(c) });
 * assert.equal(chunks[1]!.length, 2 + 4 + 2); // header, masking key, masked payload
 * assert.equal(chunks[1]![1], 0x82); // the MASK bit and length 2
 * ```
 */
export class FrameEncoder {
  static {
    encoderSlab = (encoder) => encoder.#slab;
  }
  readonly #masking: boolean;
  readonly #slab = new Slab();

  /**
   * Creates an encoder.
   *
   * @param options The role and the `masking` option.
   */
  constructor(options: FrameEncoderOptions = {}) {
    const role = options.role ?? "server";
    if (role !== "server" && role !== "client") {
      throw new RangeError(`Invalid role: ${JSON.stringify(role)} is not "server" or "client"`);
    }
    this.#masking = role === "client" || options.masking === true;
  }

  /**
   * Whether small chunks are carved from this encoder's slab (the default). Turn it off for a
   * consumer that transfers the buffers of the chunks it gets.
   */
  get pooled(): boolean {
    return this.#slab.pooled;
  }

  set pooled(value: boolean) {
    this.#slab.pooled = value;
  }

  /**
   * Encodes one frame and hands its bytes to `sink.enqueue`: one chunk, or a header and the
   * payload itself for an unmasked payload over 4096 bytes.
   *
   * @param frame The frame to send.
   * @param sink Receives the bytes.
   * @throws {RangeError} For a reserved opcode, or a control frame that is fragmented or over
   * 125 bytes (RFC 6455 §5.5).
   */
  encode(frame: Frame, sink: ByteSink): void {
    checkFrame(frame);
    const payload = frame.payload;
    const length = payload.length;
    const masked = this.#masking;
    const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
    const headSize = 2 + lengthBytes + (masked ? 4 : 0);
    const whole = masked || length <= MERGE_LIMIT ||
      (length <= LENT_MERGE_LIMIT && this.#slab.canLend(headSize + length));
    const out = this.#slab.allocate(whole ? headSize + length : headSize);
    out[0] = (frame.fin ? 0x80 : 0) | (frame.rsv1 ? 0x40 : 0) | (frame.rsv2 ? 0x20 : 0) |
      (frame.rsv3 ? 0x10 : 0) | frame.opcode;
    const maskBit = masked ? 0x80 : 0;
    if (lengthBytes === 0) {
      out[1] = maskBit | length;
    } else if (lengthBytes === 2) {
      out[1] = maskBit | 126;
      out[2] = length >>> 8;
      out[3] = length & 0xff;
    } else {
      out[1] = maskBit | 127;
      const high = Math.floor(length / 0x1_0000_0000);
      out[2] = high >>> 24;
      out[3] = (high >>> 16) & 0xff;
      out[4] = (high >>> 8) & 0xff;
      out[5] = high & 0xff;
      out[6] = length >>> 24;
      out[7] = (length >>> 16) & 0xff;
      out[8] = (length >>> 8) & 0xff;
      out[9] = length & 0xff;
    }
    if (masked) {
      const key = nextKey();
      const at = headSize - 4;
      out[at] = key & 0xff;
      out[at + 1] = (key >>> 8) & 0xff;
      out[at + 2] = (key >>> 16) & 0xff;
      out[at + 3] = key >>> 24;
      if (length < 64) {
        // Short payloads: XOR while copying, without the views maskInto would create.
        for (let i = 0; i < length; i++) out[headSize + i] = payload[i]! ^ (key >>> ((i & 3) << 3));
      } else {
        maskInto(payload, out, headSize, key, 0);
      }
      sink.enqueue(out);
    } else if (whole) {
      if (length > 0) out.set(payload, headSize);
      sink.enqueue(out);
    } else {
      sink.enqueue(out);
      sink.enqueue(payload);
    }
  }
}

/**
 * A `TransformStream` from {@linkcode Frame}s to bytes: the {@linkcode FrameEncoder} as a
 * stream. A frame that cannot be sent errors both sides with a `RangeError`. Each chunk it
 * gives has a buffer of its own (its reader may transfer it), unlike `FrameEncoder`'s pooled
 * small chunks, except an unmasked payload over 4096 bytes: that is the frame's own, passed
 * on uncopied.
 *
 * @example Encoding frames into a byte stream
 * ```ts
 * import { Frame, FrameEncoderStream } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([Frame.text("a", false), Frame.continuation(Uint8Array.of(0x62))]);
 * const chunks = await Array.fromAsync(frames.pipeThrough(new FrameEncoderStream()));
 * assert.deepEqual(chunks.map((c) => [...c]), [[0x01, 0x01, 0x61], [0x80, 0x01, 0x62]]);
 * ```
 */
export class FrameEncoderStream extends TransformStream<Frame, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The encoder's options.
   */
  constructor(options: FrameEncoderOptions = {}) {
    const encoder = new FrameEncoder(options);
    // What a stream's reader gets is its own: it may transfer it (a byte stream's enqueue
    // does), which would detach the other chunks of a shared slab still queued.
    encoder.pooled = false;
    super({ transform: (frame, controller) => encoder.encode(frame, controller) });
  }
}
