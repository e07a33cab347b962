// Copyright 2026 the wirestream authors. MIT license.
/**
 * The engines an application runs on (Ktor's engine factories, `Netty` and `CIO`): the native
 * engine on `Deno.serve`, and the wire engine on this library's own HTTP/1.1.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { HttpError } from "../http/error.ts";
import { markChecked, refuseAuthority, refuseMethod } from "./_authority.ts";
import { DEFAULT_MAX_BODY_SIZE } from "../http/pipeline.ts";
import { httpServer, type HttpServerOptions } from "../http/server.ts";
import type { Application, ServeInfo } from "./application.ts";
import { routeTableOf } from "./routing.ts";
import { WebSockets } from "./websockets.ts";

/** A fetch handler, as an engine serves it. */
export type EngineHandler = (request: Request, info: ServeInfo) => Response | Promise<Response>;

/** Where and how an engine listens: what {@linkcode embeddedServer} gives every engine. */
export interface EngineEnvironment {
  /** The interface to listen on. */
  hostname: string;
  /** The port; 0 picks a free one. */
  port: number;
  /** Called once listening, with the bound address. */
  onListen(addr: Deno.NetAddr): void;
}

/** A listening engine. */
export interface RunningEngine {
  /** The address it is bound to. */
  readonly addr: Deno.NetAddr;
  /** Resolves when it stopped and its connections ended. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, lets in-flight requests finish and closes idle connections; resolves
   * with {@linkcode finished}. An engine that can closes the connections still open after
   * `timeout` milliseconds (the {@linkcode WireEngine} does; the {@linkcode NativeEngine}
   * cannot, and waits for them, but cuts a request body still arriving: Deno's shutdown
   * fails the handler's next read of it).
   *
   * @param timeout How long to wait before closing the connections still open, in
   * milliseconds; `Infinity` waits for them.
   */
  shutdown(timeout?: number): Promise<void>;
  /**
   * True when {@linkcode shutdown} closes the WebSocket connections itself, at once, as
   * `Deno.serve`'s does (with its own close 1001, before a session's close frame goes out):
   * `embeddedServer` then lets the sessions finish their close handshakes first, within its
   * `stopTimeout`, while the engine still accepts.
   */
  readonly closesSessions?: boolean;
}

/**
 * An engine factory (Ktor's `ApplicationEngineFactory`): its settings, and a way to serve a
 * handler with them. {@linkcode NativeEngine} and {@linkcode WireEngine} are the two there
 * are; pass one to `embeddedServer`.
 *
 * @typeParam TConfig The engine's own settings, which `embeddedServer`'s `configure` edits.
 *
 * @example Serving a handler with an engine directly
 * ```ts
 * import { type EngineFactory, WireEngine, type WireEngineConfig } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const engine: EngineFactory<WireEngineConfig> = WireEngine;
 * const running = engine.start(() => new Response("hi"), {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen() {},
 * }, engine.defaults());
 * assert.equal(await (await fetch(`http://127.0.0.1:${running.addr.port}/`)).text(), "hi");
 * await running.shutdown();
 * ```
 */
export interface EngineFactory<TConfig> {
  /** The engine's name, for messages. */
  readonly name: string;
  /** Fresh default settings, for `configure` to edit. */
  defaults(): TConfig;
  /**
   * Listens and serves `handler`.
   *
   * @param handler The fetch handler.
   * @param environment Where to listen.
   * @param config The engine's settings.
   * @returns The running engine.
   */
  start(handler: EngineHandler, environment: EngineEnvironment, config: TConfig): RunningEngine;
  /**
   * Checks that the engine can serve what `application` uses: `embeddedServer` calls it on
   * each application it builds, so that `start()` rejects before anything listens (and a
   * reload to such a module fails, leaving the previous application serving). An engine
   * without it serves any application.
   *
   * @param application The application, with its plugins installed and routes bound.
   * @throws {TypeError} When the application uses what the engine cannot serve.
   */
  check?(application: Application): void;
}

/** Settings of the {@linkcode NativeEngine}: what `Deno.serve` takes besides the address. */
export interface NativeEngineConfig {
  /** Serve HTTPS: the certificate chain and private key, PEM. */
  tls?: { cert: string; key: string };
  /** Let several processes listen on the port (Linux; `Deno.serve`'s `reusePort`). */
  reusePort?: boolean;
  /**
   * Turns a handler's error into a response, as the wire engine's `onError` does (so one
   * function serves both engines); by default `Deno.serve` prints the error and answers 500.
   */
  onError?: (error: unknown, request: Request) => Response | Promise<Response>;
  /**
   * The largest request body accepted, in bytes, as the wire engine's `maxBodySize`:
   * `Deno.serve` itself has no limit. A `Content-Length` over it gets 413 with `Connection:
   * close` before the application sees the request (Deno frames the body by it, so it cannot
   * run longer; Deno still reads it to its end before closing, see {@linkcode NativeEngine}); a
   * body without one (chunked, or an HTTP/2 stream) is counted as the handler reads it, and
   * the read that crosses the limit fails with a 413 {@linkcode HttpError} (thrown on, it is
   * the answer). Such a request reaches the handler as a new `Request` over the counted body,
   * with the same URL, headers and signal (reading that signal makes Deno 2.9 print, once,
   * its notice on `request.signal`'s legacy behaviour). `Infinity` lifts it.
   *
   * @default {134217728}
   */
  maxBodySize?: number;
}

/**
 * The request with its body held to `max` bytes (see `NativeEngineConfig.maxBodySize`), or the
 * 413 for a declared length over it.
 */
function limitBody(request: Request, max: number): Request | Response {
  if (max === Infinity) return request;
  // Deno joins repeated fields ("10, 10"); hyper took them only if they agree (RFC 9112 §6.3).
  // The length first, before `request.body` is touched: once it was, Deno keeps the
  // connection after the body came, whatever the response says (our 413 closes it).
  const declared = request.headers.get("content-length")?.split(",")[0]?.trim() ?? null;
  if (declared !== null) {
    if (Number(declared) <= max) return request;
    const refusal = new HttpError(
      413,
      `Cannot accept request body: Content-Length of ${declared} bytes exceeds maxBodySize of ${max} bytes`,
    ).toResponse();
    // Deno reads the body to its declared end, then closes the connection (RFC 9112 §9.6).
    refusal.headers.set("connection", "close");
    return refusal;
  }
  if (request.body === null) return request;
  let size = 0;
  const counted = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.length;
        if (size > max) {
          throw new HttpError(
            413,
            `Cannot read request body: it exceeds maxBodySize of ${max} bytes`,
          );
        }
        controller.enqueue(chunk);
      },
    }),
  );
  return new Request(request, { body: counted, duplex: "half" } as RequestInit);
}

/**
 * The native engine: `Deno.serve`, whose HTTP and WebSocket framing are Deno's own (in Rust).
 * It is what Deno Deploy runs; its WebSocket sessions have the limits the native session
 * documents (no raw frames, no server masking): `embeddedServer` rejects `start()` with a
 * `TypeError` for an application with a `webSocketRaw` route or the WebSockets option
 * `masking: true`, before listening.
 *
 * A request whose `Host` is not a valid authority (RFC 9110 §7.2, RFC 3986 §3.2: a host and an
 * optional port, so no `/`, `?`, `#`, `@` or space) gets 400 before the application sees it,
 * as on the wire engine: `Deno.serve` accepts any `Host` and pastes it in front of the path
 * to make `request.url`, so `Host: 127.0.0.1/admin` would turn `GET /x` into a request for
 * `/admin/x`. The authority of `request.url` is checked the same way, which covers HTTP/2
 * (`:authority`, no `Host`) and absolute-form targets. Unlike the wire engine, an HTTP/1.1
 * request without `Host` is served (Deno fills in its own address, which is harmless). As on
 * the wire engine, `CONNECT`, `TRACE` and `TRACK` (in any case) get 501, and so does a method
 * that differs only in case from one Fetch upper-cases (`get`, `Post`).
 *
 * Memory is Deno's to bound, and two of its paths are not bounded (measured with Deno 2.9 on
 * bare `Deno.serve` too): a WebSocket message of fragments is assembled whatever its size
 * before any limit of ours sees it, and one connection that pipelines requests while a
 * streamed response body is written (a `serveFile`, say) has its requests read and held
 * without limit (1.2 GB of RSS in 15 s here). Behind a proxy that bounds them, or for an
 * application that trusts its peers, that is fine; on the open internet, the wire engine
 * bounds both. Nor can a handler end a connection: a request body it refused or left unread
 * (the 413 of `maxBodySize` included) is read by Deno to its declared end before the
 * connection closes, whatever the response says (a `Content-Length` of 100 GB kept one open,
 * reading, with `Connection: close` sent); the wire engine reads at most `maxDrainSize` of
 * it, then lingers for 2 s at most.
 *
 * @example
 * ```ts
 * import { Application, embeddedServer, NativeEngine } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const server = embeddedServer(NativeEngine, { hostname: "127.0.0.1", port: 0 }, (app: Application) => {
 *   app.routing((r) => r.get("/", () => new Response("native")));
 * });
 * const { port } = await server.start();
 * assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "native");
 * await server.stop();
 * ```
 */
export const NativeEngine: EngineFactory<NativeEngineConfig> = {
  name: "native engine (Deno.serve)",
  defaults: () => ({}),
  check(application) {
    // Deno's WebSocket does the framing: what needs our codec cannot be served per request.
    if (application.pluginOrNull(WebSockets)?.masking === true) {
      throw new TypeError(
        "Cannot serve on the native engine: the WebSockets option masking: true needs server frames masked, which Deno never does; use WireEngine",
      );
    }
    const raw = routeTableOf(application).rawWebSocketPaths[0];
    if (raw !== undefined) {
      throw new TypeError(
        `Cannot serve on the native engine: webSocketRaw route ${
          JSON.stringify(raw.slice(0, 64))
        } needs raw frames, which Deno reads and answers itself; use WireEngine`,
      );
    }
  },
  start(handler, environment, config) {
    const { tls, onError, maxBodySize, ...rest } = config;
    const maxBody = checkLimit("maxBodySize", maxBodySize ?? DEFAULT_MAX_BODY_SIZE);
    // Deno.serve's own onError is not told the request: catch here, where it is known.
    const caught: EngineHandler = onError === undefined ? handler : async (request, info) => {
      try {
        return await handler(request, info);
      } catch (error) {
        return await onError(error, request);
      }
    };
    const serve: EngineHandler = (request, info) => {
      const limited = limitBody(request, maxBody);
      if (!(limited instanceof Response)) markChecked(limited); // see refuseAuthority below
      return limited instanceof Response ? limited : caught(limited, info);
    };
    const server = Deno.serve(
      {
        hostname: environment.hostname,
        port: environment.port,
        onListen: (addr) => environment.onListen(addr as Deno.NetAddr),
        ...rest,
        ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      },
      (request, info) => refuseAuthority(request) ?? refuseMethod(request) ?? serve(request, info),
    );
    return {
      addr: server.addr as Deno.NetAddr,
      finished: server.finished,
      shutdown: async () => {
        await server.shutdown();
        await server.finished;
      },
      closesSessions: true,
    };
  },
};

/** Settings of the {@linkcode WireEngine}: `httpServer`'s options besides the address. */
export type WireEngineConfig = Omit<HttpServerOptions, "hostname" | "port" | "signal" | "onListen">;

/**
 * The wire engine: `httpServer`, this library's own HTTP/1.1 (pipelining, strict parsing,
 * timeouts and limits) and WebSocket frame codec (raw frames, every session option).
 *
 * @example
 * ```ts
 * import { Application, embeddedServer, WireEngine } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const server = embeddedServer(WireEngine, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   configure: (config) => (config.idleTimeout = 2000),
 * }, (app: Application) => app.routing((r) => r.get("/", () => new Response("wire"))));
 * const { port } = await server.start();
 * assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "wire");
 * await server.stop();
 * ```
 */
export const WireEngine: EngineFactory<WireEngineConfig> = {
  name: "wire engine (httpServer)",
  defaults: () => ({}),
  start(handler, environment, config) {
    const server = httpServer({
      ...config,
      hostname: environment.hostname,
      port: environment.port,
      onListen: environment.onListen,
    }, handler);
    return {
      addr: server.addr,
      finished: server.finished,
      shutdown: (timeout) => server.shutdown(timeout),
    };
  },
};
