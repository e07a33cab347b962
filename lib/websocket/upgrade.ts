// Copyright 2026 the wirestream authors. MIT license.
/**
 * `upgradeWebSocket`: turn a request into a WebSocket session, from inside a fetch handler.
 *
 * @module
 */

import { upgradeTickets, wireContexts } from "../http/_upgrade.ts";
import { HttpError } from "../http/error.ts";
import type { TransportReady } from "./_session_core.ts";
import { checkUpgradeRequest, type UpgradeValidationOptions } from "./handshake.ts";
import { RawWebSocketSession, WebSocketSession, type WebSocketSessionOptions } from "./session.ts";

/** Options of {@linkcode upgradeWebSocket}: the session's and the handshake's. */
export interface UpgradeWebSocketOptions
  extends
    Omit<WebSocketSessionOptions, "role" | "protocol" | "buffered">,
    UpgradeValidationOptions {
  /** Expose every frame: the session is a {@linkcode RawWebSocketSession}. @default {false} */
  raw?: boolean;
}

/** What {@linkcode upgradeWebSocket} returns: the response to return and the session. */
export interface WebSocketUpgrade<S> {
  /** Return this from the handler: the engine answers it with 101 Switching Protocols. */
  response: Response;
  /** The session; it starts once the 101 is written. Messages sent before then wait. */
  session: S;
}

/**
 * Upgrades the request to a WebSocket, from inside a fetch handler served by the wire engine
 * (`httpServer`, `startConnectionPipeline`). The request is checked as RFC 6455 §4.2.1 says
 * (see {@linkcode validateUpgradeRequest}); return `response` from the handler, and the
 * engine writes `101 Switching Protocols` (with any headers you add to `response`) and turns
 * the connection, with the bytes already read past the request, into `session` (role
 * server). If the handler returns another response, the session ends with 1006.
 *
 * @param request The request, as the handler received it.
 * @param options Session options, the supported subprotocols, the Origin check, and `raw`.
 * @returns The response to return and the session.
 * @throws {HttpError} 400, 403 or 426 for a request that cannot be upgraded (return
 * `error.toResponse()`).
 * @throws {TypeError} For a request the wire engine did not create, or one already upgraded.
 *
 * @example An echo route
 * ```ts ignore
 * import { httpServer, upgradeWebSocket } from "@wirestream/wirestream";
 *
 * httpServer({ port: 8080 }, (request) => {
 *   const { response, session } = upgradeWebSocket(request, { protocols: ["echo"] });
 *   (async () => {
 *     for await (const message of session.incoming) await session.send(message);
 *   })();
 *   return response;
 * });
 * ```
 */
export function upgradeWebSocket(
  request: Request,
  options: UpgradeWebSocketOptions & { raw: true },
): WebSocketUpgrade<RawWebSocketSession>;
/**
 * Upgrades the request to a WebSocket with a message session; see the overload with `raw`
 * for the full description.
 *
 * @param request The request, as the handler received it.
 * @param options Session options, the supported subprotocols and the Origin check.
 * @returns The response to return and the session.
 * @throws {HttpError} 400, 403 or 426 for a request that cannot be upgraded.
 *
 * @example Upgrading inside a handler
 * ```ts ignore
 * import { upgradeWebSocket } from "@wirestream/wirestream";
 *
 * export function handler(request: Request): Response {
 *   const { response, session } = upgradeWebSocket(request);
 *   session.send("welcome");
 *   return response;
 * }
 * ```
 */
export function upgradeWebSocket(
  request: Request,
  options?: UpgradeWebSocketOptions,
): WebSocketUpgrade<WebSocketSession>;
export function upgradeWebSocket(
  request: Request,
  options: UpgradeWebSocketOptions = {},
): WebSocketUpgrade<WebSocketSession | RawWebSocketSession> {
  const context = wireContexts.get(request);
  if (context === undefined) {
    // Not an upgrade request at all is a 400, whoever served it.
    checkUpgradeRequest({ method: request.method, headers: request.headers }, options);
    throw new TypeError(
      "Cannot upgrade: the request was not served by the wire engine (httpServer or startConnectionPipeline)",
    );
  }
  if (context.ticket !== null) {
    throw new TypeError("Cannot upgrade: the request was upgraded already");
  }
  if (context.hasBody) throw new HttpError(400, "Cannot upgrade: an upgrade request has no body");
  const checked = checkUpgradeRequest(
    { method: request.method, headers: request.headers, httpVersion: context.httpVersion },
    options,
  );
  let settle!: (transport: TransportReady) => void;
  let fail!: (reason: unknown) => void;
  const ready = new Promise<TransportReady>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const { raw, protocols: _p, checkOrigin: _c, ...sessionOptions } = options;
  const init = { ...sessionOptions, role: "server" as const, protocol: checked.protocol };
  const session = raw ? new RawWebSocketSession(ready, init) : new WebSocketSession(ready, init);
  const response = new Response(null, { status: 200 });
  const ticket = { request, key: checked.key, protocol: checked.protocol, settle, fail };
  context.ticket = ticket;
  upgradeTickets.set(response, ticket);
  context.onSession?.(session);
  return { response, session };
}
