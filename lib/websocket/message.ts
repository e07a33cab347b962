// Copyright 2026 the wirestream authors. MIT license.
/**
 * Messages over frames (RFC 6455 §5.4, §5.6): reassembly of fragments with UTF-8 validation
 * and size limits, and the splitting of outgoing messages into frames.
 *
 * @module
 */

import { checkLimit, shown } from "../_options.ts";
import { DEFAULT_MAX_FRAME_SIZE } from "./decoder.ts";
import { MessageTooBigError, WebSocketError } from "./error.ts";
import { Frame, Opcode, readClosePayload } from "./frame.ts";

/** A WebSocket message: a `string` for a text message, a `Uint8Array` for a binary one. */
export type Message = string | Uint8Array;

/** Options of {@linkcode MessageDecoder} and {@linkcode MessageStream}. */
export interface MessageDecoderOptions {
  /**
   * The largest message accepted, in bytes, summed over its fragments; a message is refused
   * (close code 1009) at the fragment that crosses the limit. `Infinity` lifts the limit.
   *
   * @default {4194304}
   */
  maxMessageSize?: number;
}

/** Where {@linkcode MessageDecoder.push} delivers messages and control frames. */
export interface MessageSink {
  /** Receives a message, or a control frame passed through. */
  enqueue(item: Message | Frame): void;
}

/** The default of `maxMessageSize`: 4 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4_194_304;

const STREAM = { stream: true } as const;
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);
// The texts of a fragmented text message's fragments are concatenated in pieces of at least
// this many characters, after the first FEW_FRAGMENTS (see MessageDecoder's #text).
const SHORT_PART = 256;
const FEW_FRAGMENTS = 16;
const encoder = new TextEncoder();

/**
 * Reassembles messages from frames with no streams or promises. It rejects a continuation
 * with no message open and a new data frame inside an open one (1002), validates UTF-8 as
 * fragments arrive and fails on the first fragment with an invalid sequence (1007), enforces
 * `maxMessageSize` at the fragment that crosses it (1009), and checks close frames (a 1-byte
 * payload or a code that may not be sent: 1002; a reason that is not UTF-8: 1007). Control
 * frames pass through in order, also between the fragments of a message.
 *
 * **Ownership**: a binary message of one frame is that frame's payload; the bytes of a
 * fragmented one are copied as they arrive into a buffer of the message's own (growing by
 * doubling up to `maxMessageSize`), so no fragment is held. A fragmented text message is
 * decoded fragment by fragment and held as text.
 *
 * @example Reassembling a fragmented text message around a ping
 * ```ts
 * import { Frame, MessageDecoder } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const out: unknown[] = [];
 * const decoder = new MessageDecoder();
 * const euro = new TextEncoder().encode("€"); // 3 bytes, split across fragments
 * for (const frame of [Frame.text(euro.subarray(0, 1), false), Frame.ping(), Frame.continuation(euro.subarray(1))]) {
 *   decoder.push(frame, { enqueue: (item) => out.push(item) });
 * }
 * assert.equal(out.length, 2);
 * assert.ok(out[0] instanceof Frame); // the ping, passed through first
 * assert.equal(out[1], "€");
 * ```
 */
export class MessageDecoder {
  readonly #maxMessageSize: number;
  /** Decodes the fragments of a text message; see #decodeFragment. */
  readonly #fragments = new TextDecoder("utf-8", { ignoreBOM: true });
  /** The bytes of a UTF-8 sequence left incomplete at the end of the fragments so far. */
  #pending: Uint8Array = EMPTY;
  /** The opcode of the open message, or -1. */
  #open = -1;
  #size = 0;
  /** A fragmented binary message's bytes so far: copied in, so no fragment is held. */
  #bytes: Uint8Array = EMPTY;
  /**
   * A fragmented text message's text so far. Each concatenation holds a rope node of about 32
   * bytes until the text is used: concatenated per fragment, 1-byte fragments took 32 times
   * the message. So past the first few fragments, the texts of short ones are gathered
   * (#short) and joined into pieces of at least SHORT_PART characters. (Keeping the bytes and
   * decoding them again at the end took twice the time for 4 fragments of 16 KiB.)
   */
  #text = "";
  #textFragments = 0;
  #short: string[] = [];
  #shortLength = 0;

  /**
   * Creates a decoder.
   *
   * @param options The message size limit.
   * @throws {RangeError} When `maxMessageSize` is negative or not an integer.
   */
  constructor(options: MessageDecoderOptions = {}) {
    this.#maxMessageSize = checkLimit(
      "maxMessageSize",
      options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    );
  }

  /** Whether a fragmented message is open. */
  get inMessage(): boolean {
    return this.#open !== -1;
  }

  /**
   * Takes the next frame and hands on what it completes: a message, or the frame itself if
   * it is a control frame.
   *
   * @param frame The next frame received.
   * @param sink Receives messages and control frames.
   * @throws {WebSocketError} 1002, 1007 or 1009 as described above.
   */
  push(frame: Frame, sink: MessageSink): void {
    const opcode = frame.opcode;
    const payload = frame.payload;
    if (opcode >= Opcode.Close) {
      if (opcode === Opcode.Close) readClosePayload(payload);
      sink.enqueue(frame);
      return;
    }
    if (opcode === Opcode.Continuation) {
      if (this.#open === -1) {
        throw new WebSocketError(
          "Cannot read message: a continuation frame has no message to continue",
          1002,
        );
      }
    } else if (this.#open !== -1) {
      throw new WebSocketError(
        "Cannot read message: a new data frame arrived inside a fragmented message",
        1002,
      );
    } else if (frame.fin) {
      // A whole message in one frame: no state.
      this.#checkSize(payload.length);
      sink.enqueue(opcode === Opcode.Text ? this.#decodeWhole(payload) : payload);
      return;
    } else {
      this.#open = opcode;
      this.#size = 0;
    }
    this.#checkSize(this.#size += payload.length);
    if (this.#open === Opcode.Text) {
      this.#addText(this.#decodeFragment(payload));
      if (!frame.fin) return;
      if (this.#fragments.decode() !== "") this.#invalid(); // ends inside a sequence
      this.#joinShort();
      const text = this.#text;
      this.#text = "";
      this.#textFragments = 0;
      this.#pending = EMPTY;
      this.#open = -1;
      sink.enqueue(text);
      return;
    }
    if (payload.length > 0) {
      const size = this.#size;
      if (size > this.#bytes.length) {
        // Grow by doubling, within the limit: a message of n bytes costs O(n) copying however
        // it is fragmented, and a flood of tiny fragments holds no more than the message.
        const grown = new Uint8Array(
          Math.min(Math.max(size, this.#bytes.length * 2, 1024), this.#maxMessageSize),
        );
        grown.set(this.#bytes.subarray(0, size - payload.length));
        this.#bytes = grown;
      }
      this.#bytes.set(payload, size - payload.length);
    }
    if (!frame.fin) return;
    const message = this.#size === this.#bytes.length
      ? this.#bytes
      : this.#bytes.slice(0, this.#size); // an exact copy: a message does not pin spare room
    this.#bytes = EMPTY;
    this.#open = -1;
    sink.enqueue(message);
  }

  /**
   * Checks that no message was left open.
   *
   * @throws {WebSocketError} 1002 when the frames ended inside a fragmented message.
   */
  end(): void {
    if (this.#open !== -1) {
      this.#reset();
      throw new WebSocketError(
        "Cannot read message: frames ended inside a fragmented message",
        1002,
      );
    }
  }

  #reset(): void {
    this.#open = -1;
    this.#bytes = EMPTY;
    this.#text = "";
    this.#textFragments = 0;
    this.#short.length = this.#shortLength = 0;
    this.#pending = EMPTY;
    this.#fragments.decode(); // drops any partial sequence
  }

  #invalid(cause?: unknown): never {
    this.#reset();
    throw new WebSocketError("Cannot read message: text is not valid UTF-8", 1007, { cause });
  }

  #checkSize(size: number): void {
    if (size > this.#maxMessageSize) {
      this.#reset();
      throw new MessageTooBigError(
        `Cannot read message: size of at least ${size} bytes exceeds maxMessageSize of ${this.#maxMessageSize} bytes`,
        this.#maxMessageSize,
        size,
      );
    }
  }

  /**
   * Decodes a whole text message. Deno's replacing decoder runs 2–3 times faster than the
   * fatal one (bench/websocket_message_bench.ts), and it can only have met an invalid
   * sequence if its output holds U+FFFD; then the fatal decoder decides.
   */
  #decodeWhole(bytes: Uint8Array): string {
    const text = lenient.decode(bytes);
    if (text.indexOf("\uFFFD") !== -1) {
      try {
        fatal.decode(bytes);
      } catch (cause) {
        this.#invalid(cause);
      }
    }
    return text;
  }

  /** Adds a fragment's text to the open message's (see #text). */
  #addText(text: string): void {
    if (text.length >= SHORT_PART || this.#textFragments++ < FEW_FRAGMENTS) {
      this.#joinShort();
      this.#text += text;
    } else if (text.length > 0) {
      this.#short.push(text);
      if ((this.#shortLength += text.length) >= SHORT_PART) this.#joinShort();
    }
  }

  /** Adds the gathered short texts to the message's text, as one piece. */
  #joinShort(): void {
    if (this.#short.length === 0) return;
    this.#text += this.#short.length === 1 ? this.#short[0]! : this.#short.join("");
    this.#short.length = this.#shortLength = 0;
  }

  /**
   * Decodes the next fragment of a text message with the streaming replacing decoder, and
   * fails on the first fragment holding an invalid sequence: when the output holds U+FFFD, a
   * fatal decoder fed with the sequence left open by the previous fragments and this one
   * decides whether the text says U+FFFD or the bytes are invalid.
   */
  #decodeFragment(bytes: Uint8Array): string {
    const text = this.#fragments.decode(bytes, STREAM);
    if (text.indexOf("\uFFFD") !== -1) {
      const probe = new Uint8Array(this.#pending.length + bytes.length);
      probe.set(this.#pending);
      probe.set(bytes, this.#pending.length);
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(probe, STREAM);
      } catch (cause) {
        this.#invalid(cause);
      }
    }
    this.#pending = openSequence(this.#pending, bytes);
    return text;
  }
}

/**
 * The bytes of the UTF-8 sequence left incomplete at the end of `head` followed by `tail`,
 * both valid so far: at most 3 bytes, found from the last lead byte.
 */
function openSequence(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const total = head.length + tail.length;
  const at = (i: number) => (i < head.length ? head[i]! : tail[i - head.length]!);
  for (let k = 1; k <= 3 && k <= total; k++) {
    const byte = at(total - k);
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    if (length <= k) return EMPTY;
    return Uint8Array.from({ length: k }, (_, j) => at(total - k + j));
  }
  return EMPTY; // three continuation bytes end a complete 4-byte sequence
}

/**
 * A `TransformStream` from frames to messages, with control frames passed through in order:
 * the {@linkcode MessageDecoder} as a stream.
 *
 * @example Reading messages from frames
 * ```ts
 * import { Frame, MessageStream } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([Frame.binary(Uint8Array.of(1), false), Frame.continuation(Uint8Array.of(2)), Frame.text("ok")]);
 * const messages = await Array.fromAsync(frames.pipeThrough(new MessageStream()));
 * assert.deepEqual(messages, [Uint8Array.of(1, 2), "ok"]);
 * ```
 */
export class MessageStream extends TransformStream<Frame, Message | Frame> {
  /**
   * Creates the stream.
   *
   * @param options The message size limit.
   */
  constructor(options: MessageDecoderOptions = {}) {
    const decoder = new MessageDecoder(options);
    super({
      transform: (frame, controller) => decoder.push(frame, controller),
      flush: () => decoder.end(),
    });
  }
}

/** Options of {@linkcode encodeMessage}. */
export interface EncodeMessageOptions {
  /**
   * The largest payload per frame, in bytes (at least 1); `Infinity` sends one frame.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
}

/** Where {@linkcode encodeMessage} delivers frames. */
export interface FrameSinkLike {
  /** Receives the next frame of the message. */
  enqueue(frame: Frame): void;
}

/**
 * Splits a message into frames of at most `maxFrameSize` payload bytes: a text or binary
 * frame, then continuation frames (Ktor: `maxFrameSize` is the "maximum frame that could be
 * received or sent"). A text message may be split inside a UTF-8 sequence, which RFC 6455
 * §5.6 allows. An empty message is one empty frame.
 *
 * @param message The message: a string is sent as text, bytes as binary.
 * @param sink Receives the frames.
 * @param options The largest payload per frame.
 * @throws {RangeError} When `maxFrameSize` is not a positive integer or `Infinity`.
 *
 * @example Splitting a message
 * ```ts
 * import { encodeMessage, type Frame } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const frames: Frame[] = [];
 * encodeMessage("hello", { enqueue: (f) => frames.push(f) }, { maxFrameSize: 2 });
 * assert.deepEqual(frames.map((f) => [f.opcode, f.fin, f.payload.length]), [
 *   [0x1, false, 2], [0x0, false, 2], [0x0, true, 1],
 * ]);
 * ```
 */
export function encodeMessage(
  message: Message,
  sink: FrameSinkLike,
  options: EncodeMessageOptions = {},
): void {
  const maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  if (!(maxFrameSize >= 1) || (maxFrameSize !== Infinity && !Number.isInteger(maxFrameSize))) {
    throw new RangeError(
      `Invalid maxFrameSize: ${shown(maxFrameSize)} is not a positive integer or Infinity`,
    );
  }
  let opcode: Opcode;
  let bytes: Uint8Array;
  if (typeof message === "string") {
    opcode = Opcode.Text;
    bytes = encoder.encode(message);
  } else if (message instanceof Uint8Array) {
    opcode = Opcode.Binary;
    bytes = message;
  } else {
    throw new TypeError("Cannot send message: it is neither a string nor a Uint8Array");
  }
  if (bytes.length <= maxFrameSize) {
    sink.enqueue(new Frame(opcode, bytes));
    return;
  }
  for (let at = 0; at < bytes.length; at += maxFrameSize) {
    const end = Math.min(at + maxFrameSize, bytes.length);
    sink.enqueue(
      new Frame(
        at === 0 ? opcode : Opcode.Continuation,
        bytes.subarray(at, end),
        end === bytes.length,
      ),
    );
  }
}
