// Copyright 2026 the wirestream authors. MIT license.
/**
 * The error type of the WebSocket protocol core.
 *
 * @module
 */

/**
 * A WebSocket protocol violation or failure, carrying the close code that the peer must be
 * told (RFC 6455 §7.4): 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a frame
 * or message over its limit, 1011 for an internal failure such as a ping timeout, and 1006
 * (never sent on the wire) for a connection that ended without a close handshake.
 *
 * @example Reading the close code of a decoding error
 * ```ts
 * import { FrameDecoder, WebSocketError } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder({ role: "server" });
 * // An unmasked text frame sent to a server: RFC 6455 §5.1 says fail the connection.
 * assert.throws(() => decoder.push(Uint8Array.of(0x81, 0x00), { enqueue() {} }), (e) => {
 *   assert(e instanceof WebSocketError);
 *   assert.equal(e.closeCode, 1002);
 *   return true;
 * });
 * ```
 */
export class WebSocketError extends Error {
  /** Always `"WebSocketError"` (or the subclass name). */
  override name = "WebSocketError";
  /** The close code to send to the peer, or 1006 when the connection dropped. */
  readonly closeCode: number;

  /**
   * Creates an error with a message and the close code it calls for.
   *
   * @param message What went wrong, in std's grammar (`Cannot decode frame: …`).
   * @param closeCode The close code the peer must receive.
   * @param options The `cause`, when wrapping another error.
   */
  constructor(message: string, closeCode: number, options?: ErrorOptions) {
    super(message, options);
    this.closeCode = closeCode;
  }
}

/**
 * A frame or message over its size limit (close code 1009). `limit` is the option that was
 * exceeded and `size` the size that was announced or reached, both in bytes.
 *
 * @example Catching a message over its limit
 * ```ts
 * import { FrameDecoder, MessageTooBigError } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder({ role: "client", maxFrameSize: 4 });
 * // An unmasked binary frame announcing 5 bytes: rejected from the header alone.
 * assert.throws(() => decoder.push(Uint8Array.of(0x82, 0x05), { enqueue() {} }), (e) => {
 *   assert(e instanceof MessageTooBigError);
 *   assert.deepEqual([e.closeCode, e.limit, e.size], [1009, 4, 5]);
 *   return true;
 * });
 * ```
 */
export class MessageTooBigError extends WebSocketError {
  /** Always `"MessageTooBigError"`. */
  override name = "MessageTooBigError";
  /** The limit that was exceeded, in bytes. */
  readonly limit: number;
  /** The size announced or reached, in bytes. */
  readonly size: number;

  /**
   * Creates the error for a frame or message of `size` bytes over a limit of `limit` bytes.
   *
   * @param message What went wrong.
   * @param limit The limit that was exceeded, in bytes.
   * @param size The size announced or reached, in bytes.
   */
  constructor(message: string, limit: number, size: number) {
    super(message, 1009);
    this.limit = limit;
    this.size = size;
  }
}
