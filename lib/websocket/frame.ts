// Copyright 2026 the wirestream authors. MIT license.
/**
 * The WebSocket frame model of RFC 6455 §5.2: opcodes, close codes and frame builders.
 *
 * @module
 */

import { WebSocketError } from "./error.ts";

/**
 * The opcodes of RFC 6455 §5.2 that a frame may carry. The reserved ones (3–7, 0xB–0xF) are
 * not in this type, but a `Frame` holding one can still be built (`new Frame(3 as Opcode)`:
 * the constructor checks nothing); no such frame reaches the wire: the decoder fails the
 * connection with 1002 on receiving one, and the encoder throws a `RangeError` on sending one.
 *
 * @example Telling control frames from data frames
 * ```ts
 * import { Opcode } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Opcode.Ping, 0x9);
 * assert.equal((Opcode.Close & 0x8) !== 0, true); // control opcodes have the top bit set
 * ```
 *
 * @example A reserved opcode is built, and refused when encoded
 * ```ts
 * import { Frame, FrameEncoder, Opcode } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const reserved = new Frame(3 as Opcode);
 * assert.equal(reserved.opcode, 3);
 * assert.throws(() => new FrameEncoder().encode(reserved, { enqueue() {} }), RangeError);
 * ```
 */
export const Opcode = {
  /** A continuation of a fragmented message. */
  Continuation: 0x0,
  /** A text message (or its first fragment), UTF-8. */
  Text: 0x1,
  /** A binary message (or its first fragment). */
  Binary: 0x2,
  /** A close frame: an optional 2-byte code and a UTF-8 reason. */
  Close: 0x8,
  /** A ping; the peer answers with a pong carrying the same payload. */
  Ping: 0x9,
  /** A pong, answering a ping or sent unsolicited as a heartbeat. */
  Pong: 0xa,
} as const;

/** One of the {@linkcode Opcode} values. */
export type Opcode = typeof Opcode[keyof typeof Opcode];

/**
 * The close codes of RFC 6455 §7.4.1 and the IANA registry. 1005, 1006 and 1015 are never
 * sent on the wire: they report a close without a code, a connection that dropped, and a TLS
 * failure. Applications may also use 3000–4999.
 *
 * @example Closing with a policy violation
 * ```ts
 * import { CloseCode, Frame } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const frame = Frame.close(CloseCode.PolicyViolation, "origin not allowed");
 * assert.deepEqual([...frame.payload.subarray(0, 2)], [0x03, 0xf0]); // 1008, big-endian
 * ```
 */
export const CloseCode = {
  /** 1000: the purpose of the connection was fulfilled. */
  NormalClosure: 1000,
  /** 1001: the endpoint is going away (server shutdown, page navigation). */
  GoingAway: 1001,
  /** 1002: the peer broke the protocol. */
  ProtocolError: 1002,
  /** 1003: a data type the endpoint cannot accept. */
  UnsupportedData: 1003,
  /** 1005: reported when a close frame carried no code; never sent. */
  NoStatusReceived: 1005,
  /** 1006: reported when the connection ended without a close frame; never sent. */
  AbnormalClosure: 1006,
  /** 1007: a text message or close reason that is not valid UTF-8. */
  InvalidPayload: 1007,
  /** 1008: a message that violates the endpoint's policy. */
  PolicyViolation: 1008,
  /** 1009: a frame or message too big to process. */
  MessageTooBig: 1009,
  /** 1010: the client expected an extension that the server did not negotiate. */
  MandatoryExtension: 1010,
  /** 1011: the server met an unexpected condition (a ping timeout, a handler error). */
  InternalError: 1011,
  /** 1012: the service is restarting. */
  ServiceRestart: 1012,
  /** 1013: try again later (overload). */
  TryAgainLater: 1013,
  /** 1014: a gateway received an invalid response upstream. */
  BadGateway: 1014,
  /** 1015: reported when the TLS handshake failed; never sent. */
  TlsHandshake: 1015,
} as const;

/** One of the {@linkcode CloseCode} values. */
export type CloseCode = typeof CloseCode[keyof typeof CloseCode];

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4): 1000–1003,
 * 1007–1014 and 3000–4999. 1004–1006 and 1015 are reserved, the rest unassigned.
 *
 * @param code The close code to check.
 * @returns `true` when an endpoint may send it and must accept it.
 *
 * @example Checking codes
 * ```ts
 * import { isValidCloseCode } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidCloseCode(1000), true);
 * assert.equal(isValidCloseCode(4000), true);
 * assert.equal(isValidCloseCode(1005), false); // reported locally, never sent
 * assert.equal(isValidCloseCode(2000), false);
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/**
 * A WebSocket frame (RFC 6455 §5.2): the FIN and RSV bits, the opcode and the unmasked payload.
 *
 * Frames built here or by {@linkcode FrameDecoder} are immutable in shape; the payload is a
 * plain `Uint8Array` which, for decoded frames, may be a view into the decoder's input chunk
 * (see its ownership notes).
 *
 * @example Building frames
 * ```ts
 * import { Frame, Opcode } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const text = Frame.text("héllo");
 * assert.equal(text.opcode, Opcode.Text);
 * assert.equal(text.payload.length, 6); // UTF-8 bytes
 * assert.equal(Frame.ping().isControl, true);
 * assert.equal(new Frame(Opcode.Binary, Uint8Array.of(1, 2), false).fin, false);
 * ```
 */
export class Frame {
  /** The opcode (§5.2): data (0x0–0x2) or control (0x8–0xA). */
  readonly opcode: Opcode;
  /** The payload, unmasked. */
  readonly payload: Uint8Array;
  /** Whether this is the final fragment of a message. */
  readonly fin: boolean;
  /** RSV1, meaningful only with an extension that defines it (permessage-deflate). */
  readonly rsv1: boolean;
  /** RSV2, meaningful only with an extension that defines it. */
  readonly rsv2: boolean;
  /** RSV3, meaningful only with an extension that defines it. */
  readonly rsv3: boolean;

  /**
   * Creates a frame. Shapes the encoder cannot send (a reserved opcode, a control frame over
   * 125 bytes or fragmented) are rejected when it is encoded, not here.
   *
   * @param opcode The opcode.
   * @param payload The unmasked payload.
   * @param fin Whether this is the final fragment; `true` when left out.
   * @param rsv1 The RSV1 bit.
   * @param rsv2 The RSV2 bit.
   * @param rsv3 The RSV3 bit.
   */
  constructor(
    opcode: Opcode,
    payload: Uint8Array = EMPTY,
    fin = true,
    rsv1 = false,
    rsv2 = false,
    rsv3 = false,
  ) {
    this.opcode = opcode;
    this.payload = payload;
    this.fin = fin;
    this.rsv1 = rsv1;
    this.rsv2 = rsv2;
    this.rsv3 = rsv3;
  }

  /** Whether this is a control frame (close, ping or pong). */
  get isControl(): boolean {
    return (this.opcode & 0x8) !== 0;
  }

  /**
   * Builds a text frame.
   *
   * @param data The text, encoded as UTF-8, or bytes that already are UTF-8.
   * @param fin Whether this is the final fragment; `true` when left out.
   * @returns The frame.
   */
  static text(data: string | Uint8Array, fin = true): Frame {
    return new Frame(Opcode.Text, typeof data === "string" ? encoder.encode(data) : data, fin);
  }

  /**
   * Builds a binary frame.
   *
   * @param data The payload.
   * @param fin Whether this is the final fragment; `true` when left out.
   * @returns The frame.
   */
  static binary(data: Uint8Array, fin = true): Frame {
    return new Frame(Opcode.Binary, data, fin);
  }

  /**
   * Builds a continuation frame.
   *
   * @param data The payload: more bytes of the open message.
   * @param fin Whether this is the final fragment; `true` when left out.
   * @returns The frame.
   */
  static continuation(data: Uint8Array, fin = true): Frame {
    return new Frame(Opcode.Continuation, data, fin);
  }

  /**
   * Builds a close frame (§5.5.1). Without a code the payload is empty.
   *
   * @param code A close code that may be sent (see {@linkcode isValidCloseCode}).
   * @param reason A UTF-8 reason of at most 123 bytes; none when left out.
   * @returns The frame.
   * @throws {RangeError} When the code may not be sent, or when a reason comes without a code
   * or exceeds 123 bytes.
   */
  static close(code?: number, reason = ""): Frame {
    if (code === undefined) {
      if (reason !== "") throw new RangeError("Cannot build close frame: a reason needs a code");
      return new Frame(Opcode.Close, EMPTY);
    }
    if (!Number.isInteger(code) || !isValidCloseCode(code)) {
      throw new RangeError(`Cannot build close frame: code ${code} may not be sent`);
    }
    const text = encoder.encode(reason);
    if (text.length > 123) {
      throw new RangeError(
        `Cannot build close frame: reason of ${text.length} bytes exceeds 123 bytes`,
      );
    }
    const payload = new Uint8Array(2 + text.length);
    payload[0] = code >>> 8;
    payload[1] = code & 0xff;
    payload.set(text, 2);
    return new Frame(Opcode.Close, payload);
  }

  /**
   * Builds a ping frame.
   *
   * @param payload Application data of at most 125 bytes, echoed by the pong.
   * @returns The frame.
   */
  static ping(payload: Uint8Array = EMPTY): Frame {
    return new Frame(Opcode.Ping, payload);
  }

  /**
   * Builds a pong frame.
   *
   * @param payload The payload of the ping it answers, at most 125 bytes.
   * @returns The frame.
   */
  static pong(payload: Uint8Array = EMPTY): Frame {
    return new Frame(Opcode.Pong, payload);
  }
}

/** The code and reason a close frame carried. */
export interface ClosePayload {
  /** The close code, or 1005 (`NoStatusReceived`) when the frame had no payload. */
  code: number;
  /** The reason, decoded from UTF-8; empty when absent. */
  reason: string;
}

/**
 * Reads the code and reason of a received close frame's payload (RFC 6455 §5.5.1, §7.1.5).
 *
 * @param payload The close frame's payload.
 * @returns The code (1005 for an empty payload) and reason.
 * @throws {WebSocketError} 1002 for a 1-byte payload or a code that may not be sent; 1007 for
 * a reason that is not UTF-8.
 *
 * @example Reading a close frame
 * ```ts
 * import { Frame, readClosePayload } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(readClosePayload(Frame.close(4001, "bye").payload), { code: 4001, reason: "bye" });
 * assert.deepEqual(readClosePayload(new Uint8Array(0)), { code: 1005, reason: "" });
 * assert.throws(() => readClosePayload(Uint8Array.of(0x03)), { closeCode: 1002 });
 * ```
 */
export function readClosePayload(payload: Uint8Array): ClosePayload {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: "" };
  if (payload.length === 1) {
    throw new WebSocketError(
      "Cannot read close frame: payload of 1 byte has no room for a code",
      1002,
    );
  }
  const code = (payload[0]! << 8) | payload[1]!;
  if (!isValidCloseCode(code)) {
    throw new WebSocketError(`Cannot read close frame: code ${code} may not be sent`, 1002);
  }
  let reason = "";
  if (payload.length > 2) {
    try {
      reason = strictDecoder.decode(payload.subarray(2));
    } catch (cause) {
      throw new WebSocketError("Cannot read close frame: reason is not valid UTF-8", 1007, {
        cause,
      });
    }
  }
  return { code, reason };
}
