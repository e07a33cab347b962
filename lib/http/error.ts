// Copyright 2026 the wirestream authors. MIT license.
/**
 * The error type of HTTP: a failure that carries the status to answer with.
 *
 * @module
 */

/** Options of {@linkcode HttpError}. */
export interface HttpErrorOptions extends ErrorOptions {
  /** Headers the answer must carry (`Sec-WebSocket-Version` on a 426, `Allow` on a 405). */
  headers?: HeadersInit;
}

/**
 * An HTTP failure with the status the peer must receive (400, 403, 413, 426, 431…) and any
 * headers that status calls for. {@linkcode HttpError.toResponse} turns it into the answer.
 *
 * @example Answering an upgrade request with the wrong version
 * ```ts
 * import { HttpError } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const error = new HttpError(426, "Cannot upgrade: Sec-WebSocket-Version is not 13", {
 *   headers: { "sec-websocket-version": "13" },
 * });
 * const response = error.toResponse();
 * assert.equal(response.status, 426);
 * assert.equal(response.headers.get("sec-websocket-version"), "13");
 * ```
 */
export class HttpError extends Error {
  /** Always `"HttpError"`. */
  override name = "HttpError";
  /** The status to answer with. */
  readonly status: number;
  /** The headers the answer must carry. */
  readonly headers: Headers;

  /**
   * Creates an error.
   *
   * @param status The HTTP status: the one to answer with (400–599), or, for a failed client
   * handshake, the server's answer.
   * @param message What went wrong; it becomes the answer's plain-text body.
   * @param options Headers for the answer, and the `cause`.
   */
  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.headers = new Headers(options.headers);
  }

  /**
   * Builds the answer: the status, the headers, and the message as a plain-text body (none
   * for 204, 205 and 304, which carry no content: a client's error for a server's 304, say).
   *
   * @returns The response.
   * @throws {RangeError} For a status outside 200–599, which a `Response` cannot carry.
   */
  toResponse(): Response {
    const status = this.status;
    if (!Number.isInteger(status) || !(status >= 200 && status <= 599)) {
      // Checked here: for 101 the Response would first refuse the body, with a TypeError.
      throw new RangeError(
        `Cannot answer with status ${status}: a Response carries 200-599 only`,
      );
    }
    const headers = new Headers(this.headers);
    if (status === 204 || status === 205 || status === 304) {
      return new Response(null, { status, headers });
    }
    headers.set("content-type", "text/plain; charset=utf-8");
    return new Response(this.message + "\n", { status, headers });
  }
}
