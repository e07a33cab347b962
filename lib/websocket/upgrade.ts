// Copyright 2026 the wirestream authors. MIT license.
/**
 * `upgradeWebSocket`: turn a request into a WebSocket session, from inside a fetch handler.
 *
 * @module
 */

import { upgradeTickets, type WireContext, wireContexts } from "../http/_upgrade.ts";
import { HttpError } from "../http/error.ts";
import type { TransportReady } from "./_session_core.ts";
import {
  checkRequestOnly,
  checkValidationOptions,
  type UpgradeInfo,
  type UpgradeValidationOptions,
} from "./handshake.ts";
import {
  checkNativeUpgrade,
  nativeLimits,
  type NativeWebSocketSessionOptions,
  upgradeNative,
} from "./native.ts";
import {
  type MessageSession,
  RawWebSocketSession,
  sessionSettings,
  WebSocketSession,
  type WebSocketSessionOptions,
} from "./session.ts";

/**
 * Options of {@linkcode upgradeWebSocket}: the session's and the handshake's. Each engine
 * applies them as its session does: see {@linkcode WebSocketSession} for the wire engine and
 * `NativeWebSocketSession` for the native one. On the native engine,
 * `pingInterval` and `timeout` become `Deno.upgradeWebSocket`'s `idleTimeout`.
 */
export interface UpgradeWebSocketOptions
  extends
    Omit<WebSocketSessionOptions, "role" | "protocol" | "buffered">,
    Pick<NativeWebSocketSessionOptions, "maxQueuedBytes" | "maxBufferedAmount">,
    UpgradeValidationOptions {
  /**
   * Expose every frame: the session is a {@linkcode RawWebSocketSession}. The wire engine
   * only: on the native engine it throws a `TypeError`.
   *
   * @default {false}
   */
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
 * Upgrades the request to a WebSocket, from inside a fetch handler, on either engine. The
 * request is checked as RFC 6455 §4.2.1 says (see {@linkcode validateUpgradeRequest}), with
 * one difference between the engines: the HTTP version. The wire engine refuses an HTTP/1.0
 * upgrade with 400 (§4.2.1 asks for HTTP/1.1 or later); on the native engine nothing in
 * Deno's `Request` or `ServeHandlerInfo` tells the version, so an HTTP/1.0 upgrade passes and
 * Deno answers it `HTTP/1.0 101`. Return `response` from the handler.
 *
 * - **The wire engine** (`httpServer`, `startConnectionPipeline`) writes `101 Switching
 *   Protocols` (with any headers you add to `response`) and turns the connection, with the
 *   bytes already read past the request, into a {@linkcode WebSocketSession} (or, with `raw`,
 *   a {@linkcode RawWebSocketSession}) on our frame codec.
 * - **The native engine**: any other request (`Deno.serve`, `deno serve`, Deno Deploy) is
 *   upgraded by `Deno.upgradeWebSocket` with `pingInterval + timeout` as its `idleTimeout`
 *   in seconds (0, off, without pings or without a timeout): Deno pings after half of it
 *   without a data frame or pong received and closes with 1001 after the other half (a ping
 *   from the peer does not count). The agreed subprotocol goes into the 101's
 *   `Sec-WebSocket-Protocol`. The session is a `NativeWebSocketSession`; `raw` and
 *   `masking: true` need the wire engine and throw a `TypeError`. Headers you add to
 *   `response` are sent with the 101.
 *
 * If the handler returns another response, the session ends with 1006 (on the native
 * engine after `timeout`; Deno then answers that client nothing, and **Deno 2.9's `Deno.serve`
 * stops serving every request after it**: "Upgrade response was not returned from callback").
 * So on the native engine call `upgradeWebSocket` only once the handler will return its
 * response: make every check that may refuse first (a `webSocket` route's `beforeUpgrade`
 * runs before the upgrade for this reason). On the wire engine, so
 * does a session asked for too late: once the engine is done with the request — its
 * connection aborted or shut down past its timeout, its client gone, or the request answered
 * already — `upgradeWebSocket` still returns, and the session ends at once with 1006
 * (`closed` resolves with `wasClean: false`), holding no connection and delaying no server
 * shutdown. A handler that awaits something before it upgrades can check `request.signal`
 * first: it aborts when the connection goes.
 *
 * @param request The request, as the handler received it.
 * @param options Session options, the supported subprotocols, the Origin check, and `raw`.
 * @returns The response to return and the session.
 * @throws {HttpError} 400, 403 or 426 for a request that cannot be upgraded (return
 * `error.toResponse()`).
 * @throws {TypeError} For a request already upgraded, a `checkOrigin` that is not a function or
 * returns no boolean, `protocols` that are not an array of tokens, or, on the native engine,
 * for `raw`, `masking: true`, or a runtime without `Deno.upgradeWebSocket`.
 * @throws {RangeError} When an option is out of range.
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
 * Upgrades the request to a WebSocket with a message session, on either engine: a
 * {@linkcode WebSocketSession} on the wire engine, a `NativeWebSocketSession` on
 * `Deno.serve`; see the overload with `raw` for the full description.
 *
 * @param request The request, as the handler received it.
 * @param options Session options, the supported subprotocols and the Origin check.
 * @returns The response to return and the session.
 * @throws {HttpError} 400, 403 or 426 for a request that cannot be upgraded.
 * @throws {TypeError} For a request already upgraded, `masking: true` on the native engine,
 * a `checkOrigin` that is not a function or returns no boolean, or `protocols` that are not
 * an array of tokens.
 * @throws {RangeError} When an option is out of range.
 *
 * @example Refusing a request that is not an upgrade, on either engine
 * ```ts
 * import { HttpError, upgradeWebSocket } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => upgradeWebSocket(new Request("http://localhost/")), (e) => {
 *   assert(e instanceof HttpError);
 *   assert.equal(e.status, 400); // no Upgrade: websocket
 *   return true;
 * });
 * ```
 *
 * @example The same handler on Deno.serve and on httpServer
 * ```ts ignore
 * import { httpServer, type MessageSession, upgradeWebSocket } from "@wirestream/wirestream";
 *
 * function handler(request: Request): Response {
 *   const { response, session } = upgradeWebSocket(request);
 *   greet(session);
 *   return response;
 * }
 * async function greet(session: MessageSession): Promise<void> {
 *   await session.send("welcome");
 *   await session.close(1000, "bye");
 * }
 * Deno.serve({ port: 8080 }, handler);
 * httpServer({ port: 8081 }, handler);
 * ```
 */
export function upgradeWebSocket(
  request: Request,
  options?: UpgradeWebSocketOptions,
): WebSocketUpgrade<MessageSession>;
export function upgradeWebSocket(
  request: Request,
  options: UpgradeWebSocketOptions = {},
): WebSocketUpgrade<MessageSession | RawWebSocketSession> {
  const context = wireContexts.get(request);
  if (context === undefined) return upgradeNative(request, options);
  // Unused here (the wire engine reads only as fast as `incoming` asks), but checked alike.
  nativeLimits(options);
  if (context.ticket !== null) {
    throw new TypeError("Cannot upgrade: the request was upgraded already");
  }
  // The caller's faults before the request's, as on the native engine: the session's options
  // (its constructor checks them again, after the handshake's checks).
  sessionSettings({ ...options, role: "server" });
  const checked = checkWireUpgrade(request, options, context);
  let settle!: (transport: TransportReady) => void;
  let fail!: (reason: unknown) => void;
  const ready = new Promise<TransportReady>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const {
    raw,
    protocols: _p,
    checkOrigin: _c,
    maxQueuedBytes: _q,
    maxBufferedAmount: _b,
    ...sessionOptions
  } = options;
  const init = { ...sessionOptions, role: "server" as const, protocol: checked.protocol };
  const session = raw ? new RawWebSocketSession(ready, init) : new WebSocketSession(ready, init);
  const response = new Response(null, { status: 200 });
  const ticket = { request, key: checked.key, protocol: checked.protocol, settle, fail };
  context.ticket = ticket;
  upgradeTickets.set(response, ticket);
  if (context.ended) {
    // The pipeline is done with the request (aborted, shut down past its timeout, the client
    // gone, or answered already): no connection will come. The session ends at once, as one
    // whose 101 is never written, rather than wait for a transport (or its close timeout),
    // and it holds no connection: a server's shutdown does not wait for it.
    fail(new Error("Cannot upgrade: the connection closed before the upgrade"));
    return { response, session };
  }
  context.onSession?.(session);
  return { response, session };
}

/** The wire engine's refusals of an upgrade that depend on the request (400, 403, 426). */
function checkWireUpgrade(
  request: Request,
  options: UpgradeWebSocketOptions,
  context: WireContext,
): Omit<UpgradeInfo, "accept"> {
  checkValidationOptions(options); // the caller's faults before the request's
  if (context.hasBody) throw new HttpError(400, "Cannot upgrade: an upgrade request has no body");
  return checkRequestOnly(
    { method: request.method, headers: request.headers, httpVersion: context.httpVersion },
    options,
  );
}

/**
 * Every refusal {@linkcode upgradeWebSocket} would make of `request` because of the request
 * or where it came from, without upgrading it: an `HttpError` (400, 403, 426) as the handshake
 * checks it on that engine (the wire engine also sees its HTTP version and body), or a
 * `WireEngineRequiredError` for raw frames or masking on the native engine. For a router that
 * runs a hook between these checks and the upgrade (internal: not in `mod.ts`).
 *
 * @param request The request.
 * @param options The options the upgrade will be made with.
 */
export function checkUpgrade(request: Request, options: UpgradeWebSocketOptions): void {
  const context = wireContexts.get(request);
  if (context === undefined) checkNativeUpgrade(request, options);
  else checkWireUpgrade(request, options, context);
}
