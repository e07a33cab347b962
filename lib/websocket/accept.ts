// Copyright 2026 the wirestream authors. MIT license.
/**
 * The server side of the opening handshake over a bare byte duplex: read the upgrade request,
 * answer 101 (or the error status), and start a session on the same bytes.
 *
 * @module
 */

import { HttpError } from "../http/error.ts";
import { startConnectionPipeline } from "../http/pipeline.ts";
import type { Transport } from "./_session_core.ts";
import type { UpgradeValidationOptions } from "./handshake.ts";
import type { WebSocketSession, WebSocketSessionOptions } from "./session.ts";
import { upgradeWebSocket, type WebSocketUpgrade } from "./upgrade.ts";

/** Options of {@linkcode acceptWebSocket}. */
export interface AcceptWebSocketOptions extends WebSocketSessionOptions, UpgradeValidationOptions {
  /**
   * The largest request head accepted, in bytes (431 above it).
   *
   * @default {16384}
   */
  maxHeadSize?: number;
}

/** A session started by {@linkcode acceptWebSocket}, with the request that asked for it. */
export interface AcceptedWebSocket {
  /** The session, role server. */
  session: WebSocketSession;
  /** The upgrade request, with its URL built from `Host` and the request target. */
  request: Request;
}

/**
 * Accepts a WebSocket on a bare byte duplex (a `Deno.Conn`, a pipe): reads the HTTP/1.1
 * upgrade request, validates it (see {@linkcode validateUpgradeRequest}), writes
 * `101 Switching Protocols` and returns a server {@linkcode WebSocketSession} that starts
 * with the bytes read past the request head. An invalid request is answered with its status
 * (400, 403, 426, 431), the transport is closed, and the {@linkcode HttpError} is thrown.
 *
 * This is the minimal server for a connection that carries one WebSocket; the HTTP engine
 * (`httpServer`) serves HTTP and upgrades on the same port.
 *
 * @param transport The connection.
 * @param options Session options, the supported subprotocols, the Origin check and the head
 * size limit.
 * @returns The session and the request.
 * @throws {HttpError} For an invalid upgrade request (after answering it).
 *
 * @example An echo server on a TCP listener
 * ```ts ignore
 * import { acceptWebSocket } from "@wirestream/wirestream";
 *
 * for await (const conn of Deno.listen({ port: 8080 })) {
 *   acceptWebSocket(conn).then(async ({ session }) => {
 *     for await (const message of session.incoming) await session.send(message);
 *   }).catch(() => {}); // invalid requests were answered already
 * }
 * ```
 */
export function acceptWebSocket(
  transport: Transport,
  options: AcceptWebSocketOptions = {},
): Promise<AcceptedWebSocket> {
  const { maxHeadSize, ...upgradeOptions } = options;
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (result: AcceptedWebSocket | HttpError) => {
      if (settled) return;
      settled = true;
      if (result instanceof HttpError) reject(result);
      else resolve(result);
    };
    // One request on the wire engine's pipeline: its head parsing, limits and error answers.
    const pipeline = startConnectionPipeline(transport, (request) => {
      try {
        // The pipeline created the request, so the session runs on the wire engine.
        const { response, session } = upgradeWebSocket(
          request,
          upgradeOptions,
        ) as WebSocketUpgrade<WebSocketSession>;
        settle({ session, request });
        return response;
      } catch (error) {
        const failure = error instanceof HttpError
          ? error
          : new HttpError(400, "Cannot upgrade: the request could not be served", { cause: error });
        settle(failure);
        const response = failure.toResponse();
        response.headers.set("connection", "close");
        return response;
      }
    }, {
      maxPipelined: 1,
      ...(maxHeadSize === undefined ? {} : { maxHeadSize }),
      ...(options.timeout === undefined
        ? {}
        : { headersTimeout: options.timeout, idleTimeout: options.timeout }),
      onBadRequest: settle,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    pipeline.finished.then(() => {
      settle(new HttpError(400, "Cannot upgrade: the connection ended before a request"));
    });
  });
}
