// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `routing { … }`: routes by method and `URLPattern` path, HTTP handlers and
 * WebSocket handlers, and the answers for requests no route takes (404, 405, `OPTIONS`).
 *
 * @module
 */

import { unknownKey } from "../_options.ts";
import { HttpError } from "../http/error.ts";
import type { PeerAddress } from "../http/pipeline.ts";
import { hasToken, NORMALIZED_METHODS, TOKEN, UNSUPPORTED_METHODS } from "../http/head.ts";
import { WebSocketError } from "../websocket/error.ts";
import { isOpen } from "../websocket/_open.ts";
import { WireEngineRequiredError } from "../websocket/native.ts";
import { CloseCode } from "../websocket/frame.ts";
import type { MessageSession, RawWebSocketSession } from "../websocket/session.ts";
import {
  checkUpgrade,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
} from "../websocket/upgrade.ts";
import { type Application, PluginError, type ServeInfo } from "./application.ts";
import {
  checkProtocols,
  rawMaxFrameSize,
  WebSockets,
  type WebSocketsConfig,
} from "./websockets.ts";

/**
 * What a route's handler learns besides the request (or the session).
 *
 * @example Parameters, query and the application's plugins
 * ```ts
 * import { Application, type RouteContext, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application();
 * app.install(WebSockets, { pingInterval: 30_000 });
 * app.routing((r) => {
 *   r.get("/rooms/:room", (_request, context: RouteContext) =>
 *     Response.json({
 *       room: context.params.room,
 *       page: context.url.searchParams.get("page"),
 *       ping: context.application.plugin(WebSockets).pingInterval,
 *     }));
 * });
 * const response = await app.fetch(new Request("http://localhost/rooms/t%C3%A9a?page=2"));
 * assert.deepEqual(await response.json(), { room: "téa", page: "2", ping: 30_000 });
 * ```
 */
export interface RouteContext {
  /** The application the route belongs to (Ktor's `call.application`). */
  readonly application: Application;
  /** The request; for a WebSocket route, the upgrade request. */
  readonly request: Request;
  /** The request's URL, parsed. */
  readonly url: URL;
  /**
   * The path's parameters (`:id` in `/users/:id`, `0` for an unnamed `*`), percent-decoded;
   * an optional parameter that is absent has no entry. Decoded, a one-segment parameter may
   * hold anything the client encoded: `/`, `..`, `\` or NUL (`/files/..%2F..%2Fetc%2Fpasswd`
   * gives `name` = `"../../etc/passwd"`), so never join one to a folder by hand: serve files
   * with `serveFile`'s `root`, which confines the path to the folder.
   */
  readonly params: Readonly<Record<string, string>>;
  /** What the engine told about the connection, when it told anything. */
  readonly info: ServeInfo | undefined;
  /**
   * The client's IP address and port, from `info`; null when the engine did not tell it (or
   * the connection is not TCP, as on a Unix socket).
   */
  readonly remoteAddr: PeerAddress | null;
}

/**
 * A route's HTTP handler. Throwing (or rejecting with) an `HttpError` answers with
 * `error.toResponse()`; any other error goes to the engine, which answers 500.
 *
 * @example A handler that refuses with an HttpError
 * ```ts
 * import { Application, HttpError, type RouteHandler } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const users = new Map([["1", "Ada"]]);
 * const getUser: RouteHandler = (_request, { params }) => {
 *   const name = users.get(params.id!);
 *   if (name === undefined) throw new HttpError(404, "Cannot find user");
 *   return Response.json({ name });
 * };
 * const app = new Application().routing((r) => r.get("/users/:id", getUser));
 * assert.deepEqual(await (await app.fetch(new Request("http://localhost/users/1"))).json(), { name: "Ada" });
 * const missing = await app.fetch(new Request("http://localhost/users/2"));
 * assert.equal(missing.status, 404);
 * assert.equal(await missing.text(), "Cannot find user\n");
 * ```
 */
export type RouteHandler = (
  request: Request,
  context: RouteContext,
) => Response | Promise<Response>;

/**
 * What a WebSocket route's handler learns besides the session: the {@linkcode RouteContext} of
 * the upgrade request, and what the route's `beforeUpgrade` hook accepted it with.
 *
 * @typeParam TData What the route's `beforeUpgrade` hook returns when it lets the upgrade go on.
 *
 * @example The user a hook found, in the handler
 * ```ts
 * import { Application, type MessageSession, type WebSocketRouteContext, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const greet = async (session: MessageSession, { data }: WebSocketRouteContext<{ name: string }>) => {
 *   await session.send(`hello ${data.name}`);
 * };
 * const app = new Application();
 * app.install(WebSockets);
 * app.routing((r) => r.webSocket("/hello", greet, { beforeUpgrade: () => ({ name: "Ada" }) }));
 * assert.equal(app.sessions, 0);
 * ```
 */
export interface WebSocketRouteContext<TData = unknown> extends RouteContext {
  /**
   * What the route's `beforeUpgrade` hook returned (or its promise resolved with) to let the
   * upgrade go on, as Bun's `ws.data`: undefined when the route has no hook.
   */
  readonly data: TData;
}

/**
 * A WebSocket route's handler (Ktor's `webSocket { … }` block): it runs once the request was
 * accepted, and the session is closed with 1000 when it returns (or its promise resolves), so
 * await the loops that use the session. When it throws, the session is closed with 1011 (to
 * close with a code of your own, call `session.close(code, reason)` and return); it cannot
 * refuse the upgrade any more (the client has its 101): refuse in the route's
 * `beforeUpgrade` hook (see {@linkcode WebSocketRouteOptions}).
 *
 * @typeParam S The session type: a {@linkcode MessageSession} (the wire engine's
 * `WebSocketSession` or the native engine's `NativeWebSocketSession`) or a
 * {@linkcode RawWebSocketSession}.
 * @typeParam TData What the route's `beforeUpgrade` hook accepts the upgrade with.
 *
 * @example A handler written apart from its route; a plain GET gets the handshake's 400
 * ```ts
 * import { Application, type MessageSession, type WebSocketHandler, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const shout: WebSocketHandler<MessageSession> = async (session) => {
 *   for await (const message of session.incoming) {
 *     await session.send(typeof message === "string" ? message.toUpperCase() : message);
 *   }
 * }; // returning closes the session with 1000
 * const app = new Application();
 * app.install(WebSockets);
 * app.routing((r) => r.webSocket("/shout", shout));
 * const plain = await app.fetch(new Request("http://localhost/shout", { headers: { host: "localhost" } }));
 * assert.equal(plain.status, 400);
 * assert.match(await plain.text(), /^Cannot upgrade: Upgrade does not hold websocket/);
 * ```
 */
export type WebSocketHandler<S, TData = unknown> = (
  session: S,
  context: WebSocketRouteContext<TData>,
) => void | Promise<void>;

/**
 * Options of {@linkcode Routing.webSocket} and {@linkcode Routing.webSocketRaw}.
 *
 * @typeParam TData What `beforeUpgrade` accepts an upgrade with, for the handler's
 * `context.data`.
 *
 * @example A route with its own subprotocols
 * ```ts
 * import { Application, type WebSocketRouteOptions, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application();
 * app.install(WebSockets, { protocols: ["v1.chat"] });
 * const options: WebSocketRouteOptions = { protocols: ["mqtt"] }; // replaces v1.chat here
 * app.routing((r) => r.webSocket("/mqtt", async () => {}, options));
 * assert.throws(() => app.routing((r) => r.webSocket("/bad", async () => {}, { protocols: ["a b"] })), TypeError);
 * ```
 */
export interface WebSocketRouteOptions<TData = undefined> {
  /**
   * The subprotocols this route supports, replacing the {@linkcode WebSockets} plugin's
   * `protocols`; the client's first offer among them is agreed.
   *
   * @default {the plugin's protocols}
   */
  protocols?: readonly string[];
  /**
   * Decides whether to upgrade, before the 101 (Ktor's `authenticate { webSocket(…) }`, ws's
   * `verifyClient`): called with the upgrade request and its route context (`params`, `url`,
   * `remoteAddr`…) once the handshake was checked (a request that is no valid upgrade, or
   * whose `Origin` the {@linkcode WebSockets} plugin refuses, gets its 400, 403 or 426 without
   * a call), and may be async.
   *
   * - It **refuses** by returning a `Response` (a 401 with `WWW-Authenticate`, a 403, a
   *   redirect…) or throwing an `HttpError` (its response): the client gets that answer, and
   *   no session is made, so the handler does not run.
   * - It **accepts** by returning anything else (or nothing): the upgrade goes on, and what it
   *   returned is the handler's `context.data` (the user it found, say). Any other error it
   *   throws goes to the engine, which answers 500, as for an HTTP handler.
   *
   * An HTTP route on the same path cannot do this: a `GET` asking for an upgrade goes to the
   * WebSocket route first. If the application is disposed while the hook runs, the answer is
   * the 503 of a stopping application. On the native engine, keep async hooks short: Deno
   * 2.9 does not see a client that leaves before the response, and an upgrade answered after
   * it left never opens (its session ends with 1006 after the plugin's `timeout`) and keeps
   * `Deno.serve`'s graceful shutdown from finishing; the wire engine sees the client go. For TypeScript to carry the result's type to the handler, give it
   * (`r.webSocket<User>(…)`, checked against what the hook returns) or annotate each parameter
   * of the hook: the handler comes first, so its `data` cannot wait for the hook's inference.
   *
   * @example Refusing an upgrade without a token with 401
   * ```ts
   * import { Application, HttpError, WebSockets } from "@wirestream/wirestream";
   * import assert from "node:assert/strict";
   *
   * const users = new Map([["t0ken", { name: "Ada" }]]);
   * const findUser = async (token: string | null) => users.get(token ?? ""); // a lookup
   * const app = new Application();
   * app.install(WebSockets);
   * app.routing((r) =>
   *   r.webSocket("/chat/:room", async (session, { data, params }) => {
   *     await session.send(`${data.name} joined ${params.room}`);
   *   }, {
   *     beforeUpgrade: async (request: Request) => {
   *       const user = await findUser(new URL(request.url).searchParams.get("token"));
   *       if (user === undefined) {
   *         throw new HttpError(401, "Cannot join: no valid token", {
   *           headers: { "www-authenticate": "Bearer" },
   *         });
   *       }
   *       return user; // the handler's context.data
   *     },
   *   })
   * );
   * const refused = await app.fetch(new Request("http://localhost/chat/lobby?token=nope", {
   *   headers: {
   *     host: "localhost",
   *     upgrade: "websocket",
   *     connection: "Upgrade",
   *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
   *     "sec-websocket-version": "13",
   *   },
   * }));
   * assert.equal(refused.status, 401);
   * assert.equal(refused.headers.get("www-authenticate"), "Bearer");
   * assert.equal(app.sessions, 0); // no session was made
   * await refused.body?.cancel();
   * ```
   */
  beforeUpgrade?: (
    request: Request,
    context: RouteContext,
  ) => Response | TData | Promise<Response | TData>;
}

/**
 * Where routes are bound: the argument of {@linkcode Application.routing}.
 *
 * **Paths** are `URLPattern` pathname patterns (`/users/:id`, `/files/*`, `/v{1}?/items`),
 * matched against the request's path, which must match whole (so `/users` and `/users/` are
 * different paths; the hex digits of percent-escapes written out whole, `%XX`, match in either
 * case, in the path bound as in the request's, and in regexp groups but for their character
 * classes). Parameters
 * reach handlers percent-decoded in `context.params`; a parameter that is not valid
 * percent-encoding gets 400. Decoded, a one-segment parameter may hold `/`
 * and `..` (`%2F`, `%2e%2e`): `/files/:name` matches `/files/..%2F..%2Fetc%2Fpasswd`. Never
 * join a parameter to a folder to make a file path; pass the folder as `serveFile`'s `root`.
 *
 * **Which route answers**: the first route bound whose method and path match. A `HEAD`
 * request is answered by a `HEAD` route, else by the first matching `GET` HTTP route (the
 * engine drops the body: both `Deno.serve` and `httpServer` do), else by a `GET` WebSocket
 * route, with the 400 of a `GET` without an upgrade. A `GET` asking for a WebSocket upgrade
 * prefers a WebSocket route, any other `GET` an HTTP route, so one path may serve a page and
 * its WebSocket; a `GET` reaching a WebSocket route without a valid upgrade gets the
 * handshake's 400 or 426.
 *
 * **No route**: a path that no route matches gets 404, and so does a path that only `OPTIONS`
 * routes match (a CORS catch-all), for other methods. A path that routes match under other
 * methods gets 405 with `Allow` listing them (`HEAD` after a `GET` route, then
 * `OPTIONS`), and an `OPTIONS` request to it, when no `OPTIONS` route is bound, gets
 * 204 with that `Allow` (RFC 9110 §9.3.7). The automatic answer carries no CORS fields, so a
 * browser's preflight fails on it as it would on a 404: bind `options` routes to serve CORS.
 *
 * @example Methods, parameters, 404, 405 and OPTIONS
 * ```ts
 * import { Application } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application().routing((r) => {
 *   r.get("/items/:id", (_request, { params }) => new Response(`item ${params.id}`));
 *   r.delete("/items/:id", () => new Response(null, { status: 204 }));
 * });
 * const at = (path: string, method = "GET") => app.fetch(new Request(`http://localhost${path}`, { method }));
 * assert.equal(await (await at("/items/caf%C3%A9")).text(), "item café");
 * assert.equal((await at("/items")).status, 404);
 * const refused = await at("/items/1", "POST");
 * assert.equal(refused.status, 405);
 * assert.equal(refused.headers.get("allow"), "GET, DELETE, HEAD, OPTIONS");
 * await refused.body?.cancel();
 * assert.equal((await at("/items/1", "OPTIONS")).status, 204);
 * ```
 */
export interface Routing {
  /**
   * Binds a route for a method (Ktor's `route(path, method) { handle { … } }`).
   *
   * @param method The method, matched case-sensitively as `Request.method` holds it (which
   * upper-cases `delete`, `get`, `head`, `options`, `post` and `put`, so this does too).
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} For a method that is not a token, or that no request can reach
   * (`CONNECT`, `TRACE`, `TRACK`: both engines answer them 501), a path that is not a
   * pattern, a handler that is not a function, or a method and path bound already.
   */
  route(method: string, path: string, handler: RouteHandler): this;
  /**
   * Binds a `GET` route, which answers `HEAD` too.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  get(path: string, handler: RouteHandler): this;
  /**
   * Binds a `POST` route.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  post(path: string, handler: RouteHandler): this;
  /**
   * Binds a `PUT` route.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  put(path: string, handler: RouteHandler): this;
  /**
   * Binds a `PATCH` route.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  patch(path: string, handler: RouteHandler): this;
  /**
   * Binds a `DELETE` route.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  delete(path: string, handler: RouteHandler): this;
  /**
   * Binds a `HEAD` route, which takes `HEAD` requests from the path's `GET` route.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  head(path: string, handler: RouteHandler): this;
  /**
   * Binds an `OPTIONS` route, which replaces the automatic 204 for its path.
   *
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Answers the requests.
   * @returns This routing.
   * @throws {TypeError} As {@linkcode Routing.route} does.
   */
  options(path: string, handler: RouteHandler): this;
  /**
   * Binds a WebSocket route (Ktor's `webSocket(path, protocol) { … }`): a `GET` upgrade request
   * to `path` is checked (RFC 6455 §4.2.1, the Origin policy of the {@linkcode WebSockets}
   * plugin: 400, 403 or 426 when it fails) and accepted with the plugin's options, and
   * `handler` gets a {@linkcode MessageSession} (messages, with pongs, the pinger and the
   * close handshake handled). The request must be the one the engine created, and the response
   * must reach the engine as returned: a router that copies requests (Hono's `mount` by
   * default) or responses (a Hono middleware setting headers after `next()`) defeats the
   * upgrade. On the wire engine a copied request gets a 500, and a copied response reaches the
   * client as a 200 while the session ends with 1006. On the native engine (`Deno.serve`,
   * `deno serve`, Deno Deploy) a copied request is worse: Deno answers 101 but never opens the
   * socket, so the client waits on a connection that says nothing, and the session ends with
   * 1006 after the plugin's `timeout` (a copied response there works). Pass the request itself
   * (`c.req.raw` in Hono).
   *
   * To refuse an upgrade (a client without credentials: 401, 403), give `options` a
   * `beforeUpgrade` hook: it runs before the 101, where the handler runs after it.
   *
   * @typeParam TData What the `beforeUpgrade` hook accepts the upgrade with: the handler's
   * `context.data`.
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Runs the session; the session closes with 1000 when it returns, with 1011
   * when it throws.
   * @param options The route's subprotocols, and the hook that may refuse the upgrade.
   * @returns This routing.
   * @throws {PluginError} When the {@linkcode WebSockets} plugin is not installed yet.
   * @throws {TypeError} As {@linkcode Routing.route} does, for a subprotocol that is not a
   * token, or for a `beforeUpgrade` that is not a function.
   *
   * @example A chat route with a subprotocol
   * ```ts ignore
   * import { Application, WebSockets } from "@wirestream/wirestream";
   *
   * const app = new Application();
   * app.install(WebSockets, { pingInterval: 20_000 });
   * app.routing((r) => {
   *   r.webSocket("/rooms/:room", async (session, { params }) => {
   *     await session.send(`welcome to ${params.room}`);
   *     for await (const message of session.incoming) await session.send(message);
   *   }, { protocols: ["chat.v1"] });
   * });
   * ```
   */
  webSocket<TData extends undefined = undefined>(
    path: string,
    handler: WebSocketHandler<MessageSession, TData>,
    options?: WebSocketRouteOptions<TData>,
  ): this;
  /**
   * Binds a WebSocket route whose `beforeUpgrade` hook accepts the upgrade with `TData`, the
   * handler's `context.data` (see the overload above): the hook is required, so that a `data`
   * typed `TData` cannot be `undefined` at run time.
   *
   * @typeParam TData What the `beforeUpgrade` hook accepts the upgrade with.
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Runs the session; the session closes with 1000 when it returns, with 1011
   * when it throws.
   * @param options The route's subprotocols, and the hook, which gives `context.data`.
   * @returns This routing.
   * @throws {PluginError} When the {@linkcode WebSockets} plugin is not installed yet.
   * @throws {TypeError} As the overload above does.
   */
  webSocket<TData>(
    path: string,
    handler: WebSocketHandler<MessageSession, TData>,
    options: WebSocketRouteOptionsWithData<TData>,
  ): this;
  /**
   * Binds a raw WebSocket route (Ktor's `webSocketRaw`): as {@linkcode Routing.webSocket}, but
   * `handler` gets a {@linkcode RawWebSocketSession} that yields every frame, pings and close
   * included, and answers nothing by itself. The plugin's `pingInterval` and
   * `maxMessageSize` do not apply.
   *
   * Raw frames need the wire engine: `embeddedServer` refuses to start an application with such
   * a route on `NativeEngine`, and when the application is served by `Deno.serve` or
   * `deno serve` directly, each upgrade to the route gets 501 with a body naming the wire
   * engine. The same holds for every WebSocket route when the plugin's `masking` is true.
   *
   * @typeParam TData What the `beforeUpgrade` hook accepts the upgrade with: the handler's
   * `context.data`.
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Runs the session; the session closes with 1000 when it returns, with 1011
   * when it throws.
   * @param options The route's subprotocols, and the hook that may refuse the upgrade.
   * @returns This routing.
   * @throws {PluginError} When the {@linkcode WebSockets} plugin is not installed yet.
   * @throws {TypeError} As {@linkcode Routing.webSocket} does.
   */
  webSocketRaw<TData extends undefined = undefined>(
    path: string,
    handler: WebSocketHandler<RawWebSocketSession, TData>,
    options?: WebSocketRouteOptions<TData>,
  ): this;
  /**
   * Binds a raw WebSocket route whose `beforeUpgrade` hook accepts the upgrade with `TData`,
   * the handler's `context.data` (see the overload above; the hook is required).
   *
   * @typeParam TData What the `beforeUpgrade` hook accepts the upgrade with.
   * @param path A `URLPattern` pathname pattern, starting with `/`.
   * @param handler Runs the session; the session closes with 1000 when it returns, with 1011
   * when it throws.
   * @param options The route's subprotocols, and the hook, which gives `context.data`.
   * @returns This routing.
   * @throws {PluginError} When the {@linkcode WebSockets} plugin is not installed yet.
   * @throws {TypeError} As {@linkcode Routing.webSocket} does.
   */
  webSocketRaw<TData>(
    path: string,
    handler: WebSocketHandler<RawWebSocketSession, TData>,
    options: WebSocketRouteOptionsWithData<TData>,
  ): this;
}

/** {@linkcode WebSocketRouteOptions} whose `beforeUpgrade` hook is given: it makes `TData`. */
export type WebSocketRouteOptionsWithData<TData> =
  & WebSocketRouteOptions<TData>
  & Required<Pick<WebSocketRouteOptions<TData>, "beforeUpgrade">>;

/** The options of a WebSocket route (see {@linkcode WebSocketRouteOptions}). */
const ROUTE_OPTION_NAMES: ReadonlySet<string> = new Set(["protocols", "beforeUpgrade"]);

/** A route bound. */
interface Route {
  readonly method: string;
  readonly path: string;
  readonly pattern: URLPattern;
  /** Set on WebSocket routes. */
  readonly webSocket: {
    readonly raw: boolean;
    readonly options: UpgradeWebSocketOptions;
    readonly config: WebSocketsConfig;
    readonly handler: WebSocketHandler<MessageSession | RawWebSocketSession>;
    readonly beforeUpgrade: WebSocketRouteOptions<unknown>["beforeUpgrade"];
  } | null;
  readonly handler: RouteHandler | null;
}

/** The route table of each application, for {@linkcode routeTableOf}. */
const tables = new WeakMap<Application, RouteTable>();

/**
 * The route table of `application`, for an engine to check what it binds. Internal.
 *
 * @param application The application.
 * @returns Its route table.
 */
export function routeTableOf(application: Application): RouteTable {
  return tables.get(application)!;
}

/** The route table of an {@linkcode Application}: binds routes, and answers requests. */
export class RouteTable implements Routing {
  readonly #application: Application;
  readonly #report: (error: unknown, request: Request) => void;
  readonly #routes: Route[] = [];
  /** The `closed` of each WebSocket session its routes started that has not ended yet. */
  readonly #open = new Set<Promise<unknown>>();

  /** The WebSocket sessions its routes started that have not ended yet. */
  get sessions(): number {
    return this.#open.size;
  }

  /** Resolves once every session open now has ended. */
  sessionsEnded(): Promise<void> {
    return Promise.all(this.#open).then(() => {});
  }

  constructor(application: Application, report: (error: unknown, request: Request) => void) {
    this.#application = application;
    this.#report = report;
    tables.set(application, this);
  }

  /** The paths of the routes bound with `webSocketRaw`, in the order bound. */
  get rawWebSocketPaths(): string[] {
    return this.#routes.filter((route) => route.webSocket?.raw === true).map((route) => route.path);
  }

  route(method: string, path: string, handler: RouteHandler): this {
    if (typeof method !== "string" || !TOKEN.test(method)) {
      throw new TypeError(
        `Cannot bind route: method ${JSON.stringify(String(method).slice(0, 64))} is not a token`,
      );
    }
    const upper = method.toUpperCase();
    if (UNSUPPORTED_METHODS.has(upper)) {
      // Both engines answer them 501 before any route (see UNSUPPORTED_METHODS).
      throw new TypeError(
        `Cannot bind route: method ${method} is answered 501 by both engines, before any route`,
      );
    }
    return this.#bind(NORMALIZED_METHODS.has(upper) ? upper : method, path, handler, null);
  }

  get(path: string, handler: RouteHandler): this {
    return this.#bind("GET", path, handler, null);
  }

  post(path: string, handler: RouteHandler): this {
    return this.#bind("POST", path, handler, null);
  }

  put(path: string, handler: RouteHandler): this {
    return this.#bind("PUT", path, handler, null);
  }

  patch(path: string, handler: RouteHandler): this {
    return this.#bind("PATCH", path, handler, null);
  }

  delete(path: string, handler: RouteHandler): this {
    return this.#bind("DELETE", path, handler, null);
  }

  head(path: string, handler: RouteHandler): this {
    return this.#bind("HEAD", path, handler, null);
  }

  options(path: string, handler: RouteHandler): this {
    return this.#bind("OPTIONS", path, handler, null);
  }

  webSocket<TData = undefined>(
    path: string,
    handler: WebSocketHandler<MessageSession, TData>,
    options: WebSocketRouteOptions<TData> = {},
  ): this {
    return this.#bindWebSocket("webSocket", false, path, handler, options);
  }

  webSocketRaw<TData = undefined>(
    path: string,
    handler: WebSocketHandler<RawWebSocketSession, TData>,
    options: WebSocketRouteOptions<TData> = {},
  ): this {
    return this.#bindWebSocket("webSocketRaw", true, path, handler, options);
  }

  #bindWebSocket<TData>(
    kind: string,
    raw: boolean,
    path: string,
    handler: WebSocketHandler<never, TData>,
    options: WebSocketRouteOptions<TData>,
  ): this {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Invalid ${kind} options: they are not an object`);
    }
    // A misspelt option would otherwise be ignored: a route without the hook meant to refuse
    // upgrades, or without its subprotocols.
    const unknown = unknownKey(options, ROUTE_OPTION_NAMES);
    if (unknown !== null) {
      throw new TypeError(
        `Invalid ${kind} option ${
          JSON.stringify(unknown.slice(0, 64))
        }: there is no such option (protocols, beforeUpgrade)`,
      );
    }
    const beforeUpgrade = options.beforeUpgrade;
    if (beforeUpgrade !== undefined && typeof beforeUpgrade !== "function") {
      throw new TypeError(`Invalid ${kind} option beforeUpgrade: it is not a function`);
    }
    const config = this.#application.pluginOrNull(WebSockets);
    if (config === null) {
      throw new PluginError(
        WebSockets.key,
        `Cannot bind ${kind} route ${JSON.stringify(String(path).slice(0, 64))}: ` +
          "install the WebSockets plugin first (app.install(WebSockets))",
      );
    }
    const protocols = options.protocols === undefined
      ? config.protocols
      : checkProtocols(`${kind} option protocols`, options.protocols);
    return this.#bind("GET", path, null, {
      raw,
      config,
      handler: handler as WebSocketHandler<MessageSession | RawWebSocketSession>,
      beforeUpgrade,
      options: {
        pingInterval: config.pingInterval,
        timeout: config.timeout,
        maxFrameSize: raw ? rawMaxFrameSize(config) : config.maxFrameSize,
        masking: config.masking,
        maxMessageSize: config.maxMessageSize,
        maxSendQueue: config.maxSendQueue,
        protocols,
      },
    });
  }

  #bind(
    method: string,
    path: string,
    handler: RouteHandler | null,
    webSocket: Route["webSocket"],
  ): this {
    const where = `${method} ${JSON.stringify(String(path).slice(0, 64))}`;
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new TypeError(`Cannot bind route ${where}: the path does not start with "/"`);
    }
    if (typeof (handler ?? webSocket?.handler) !== "function") {
      throw new TypeError(`Cannot bind route ${where}: the handler is not a function`);
    }
    let pattern: URLPattern;
    try {
      pattern = new URLPattern({ pathname: literalEscapesUpper(path) });
    } catch (error) {
      throw new TypeError(`Cannot bind route ${where}: the path is not a URLPattern pathname`, {
        cause: error,
      });
    }
    const bound = this.#routes.some((route) =>
      route.method === method && route.pattern.pathname === pattern.pathname &&
      (route.webSocket === null) === (webSocket === null)
    );
    if (bound) throw new TypeError(`Cannot bind route ${where}: it is bound already`);
    this.#routes.push({ method, path, pattern, handler, webSocket });
    return this;
  }

  /**
   * Answers a request: the route's response, or 404, 405 or the `OPTIONS` answer.
   *
   * @param request The request.
   * @param info What the engine told about the connection.
   * @returns The response.
   */
  handle(request: Request, info: ServeInfo | undefined): Response | Promise<Response> {
    const url = new URL(request.url);
    const method = request.method;
    const upgrade = method === "GET" && hasToken(request.headers.get("upgrade"), "websocket");
    // The first route of the best rank wins: rank 1 is the request's own method (for a GET,
    // of the kind it asks for); rank 2 is a GET HTTP route answering HEAD, or a GET route of
    // the other kind; rank 3 a GET WebSocket route answering HEAD (with the 400 a GET without
    // an upgrade gets: HEAD is GET without the content, RFC 9110 §9.3.2).
    let fallback: Route | null = null;
    let fallbackMatch: URLPatternResult | null = null;
    let fallbackRank = 4;
    const href = percentUpper(request.url);
    for (const route of this.#routes) {
      let rank: number;
      if (route.method === method) {
        rank = method !== "GET" || (route.webSocket !== null) === upgrade ? 1 : 2;
      } else if (method === "HEAD" && route.method === "GET") {
        rank = route.webSocket === null ? 2 : 3;
      } else continue;
      if (rank >= fallbackRank) continue;
      // The URL string, not { pathname }: the same groups (the pattern's other parts match
      // anything), and over ten times faster in Deno 2.9 (the init form is checked per call).
      const match = route.pattern.exec(href);
      if (match === null) continue;
      if (rank === 1) return this.#answer(route, match, request, url, info);
      fallback = route;
      fallbackMatch = match;
      fallbackRank = rank;
    }
    if (fallback !== null) return this.#answer(fallback, fallbackMatch!, request, url, info);
    return this.#unrouted(method, href);
  }

  /** The answer when no route takes the method: 404, 405 or 204 for OPTIONS. */
  #unrouted(method: string, href: string): Response {
    const allow: string[] = [];
    for (const route of this.#routes) {
      if (!route.pattern.test(href)) continue;
      if (!allow.includes(route.method)) allow.push(route.method);
    }
    // A path that only OPTIONS routes match (a CORS catch-all, `/*`) is no resource of ours
    // for another method: 404, not a 405 that would name OPTIONS alone.
    if (allow.length === 0 || (method !== "OPTIONS" && allow.every((m) => m === "OPTIONS"))) {
      return new HttpError(404, "Cannot route: no route matches the path").toResponse();
    }
    if (allow.includes("GET") && !allow.includes("HEAD")) allow.push("HEAD");
    if (!allow.includes("OPTIONS")) allow.push("OPTIONS");
    const headers = { allow: allow.join(", ") };
    if (method === "OPTIONS") return new Response(null, { status: 204, headers });
    return new HttpError(
      405,
      `Cannot route: method ${JSON.stringify(method.slice(0, 64))} is not allowed on the path`,
      { headers },
    ).toResponse();
  }

  #answer(
    route: Route,
    match: URLPatternResult,
    request: Request,
    url: URL,
    info: ServeInfo | undefined,
  ): Response | Promise<Response> {
    let context: RouteContext;
    try {
      context = {
        application: this.#application,
        request,
        url,
        params: decodeParams(match.pathname.groups),
        info,
        remoteAddr: info !== undefined && info.remoteAddr !== null && "hostname" in info.remoteAddr
          ? info.remoteAddr
          : null,
      };
    } catch (error) {
      if (error instanceof HttpError) return error.toResponse();
      throw error;
    }
    if (route.webSocket !== null) return this.#upgrade(route.webSocket, request, context);
    let result: Response | Promise<Response>;
    try {
      result = route.handler!(request, context);
    } catch (error) {
      return answerError(error);
    }
    if (result instanceof Response) return result;
    return Promise.resolve(result).then((response) => {
      if (response instanceof Response) return response;
      throw new TypeError(
        `Route ${route.method} ${JSON.stringify(route.path)} did not return a Response`,
      );
    }, answerError);
  }

  #upgrade(
    route: NonNullable<Route["webSocket"]>,
    request: Request,
    context: RouteContext,
  ): Response | Promise<Response> {
    const signal = this.#application.signal;
    if (signal.aborted) return stopping();
    const host = request.headers.get("host");
    const options: UpgradeWebSocketOptions = {
      ...route.options,
      signal,
      checkOrigin: (origin) =>
        route.config.isAllowedOrigin(origin, host, request.url.startsWith("https:")),
    };
    const hook = route.beforeUpgrade;
    if (hook === undefined) return this.#accept(route, request, options, context, undefined);
    let decision: unknown;
    try {
      // The handshake first: a request that is no upgrade, or comes from an origin refused,
      // gets its 400, 403 or 426 as without a hook, which so only sees upgrades it may accept;
      // and the 501 of a raw route or masking on the native engine comes before it too.
      checkUpgrade(request, route.raw ? { ...options, raw: true } : options);
      decision = hook(request, context);
    } catch (error) {
      return this.#refused(error);
    }
    const then = (decision as { then?: unknown } | null)?.then;
    if (typeof then !== "function") {
      return this.#decided(route, request, options, context, decision);
    }
    // Any thenable, not only a Promise of this realm: one taken for data would let its
    // refusal through.
    return Promise.resolve(decision).then(
      (decided) => this.#decided(route, request, options, context, decided),
      answerError,
    );
  }

  /** Answers with what a `beforeUpgrade` hook returned, or upgrades with it as the data. */
  #decided(
    route: NonNullable<Route["webSocket"]>,
    request: Request,
    options: UpgradeWebSocketOptions,
    context: RouteContext,
    decision: unknown,
  ): Response {
    if (decision instanceof Response) return decision;
    // An async hook may have outlasted the application.
    if (options.signal?.aborted) return stopping();
    return this.#accept(route, request, options, context, decision);
  }

  /**
   * The answer to an upgrade refused. Raw frames and masking need the wire engine:
   * embeddedServer refuses to start such an application on NativeEngine, but one served by
   * Deno.serve or `deno serve` learns its engine only now: 501 tells the client why, where a
   * 500 would say nothing.
   */
  #refused(error: unknown): Response {
    if (error instanceof WireEngineRequiredError) {
      return new HttpError(501, error.message, { cause: error }).toResponse();
    }
    return answerError(error);
  }

  /** Upgrades, counts the session, and runs the handler with it. */
  #accept(
    route: NonNullable<Route["webSocket"]>,
    request: Request,
    options: UpgradeWebSocketOptions,
    context: RouteContext,
    data: unknown,
  ): Response {
    let upgrade: { response: Response; session: MessageSession | RawWebSocketSession };
    try {
      upgrade = route.raw
        ? upgradeWebSocket(request, { ...options, raw: true })
        : upgradeWebSocket(request, options);
    } catch (error) {
      return this.#refused(error);
    }
    const closed = upgrade.session.closed;
    this.#open.add(closed);
    closed.then(() => this.#open.delete(closed));
    this.#run(route.handler, upgrade.session, { ...context, data });
    return upgrade.response;
  }

  /** Runs a WebSocket handler; closes its session with 1000 after it, 1011 when it throws. */
  async #run(
    handler: WebSocketHandler<MessageSession | RawWebSocketSession>,
    session: MessageSession | RawWebSocketSession,
    context: WebSocketRouteContext,
  ): Promise<void> {
    try {
      await handler(session, context);
    } catch (error) {
      // A WebSocketError thrown once the session stopped being open is its own failure (or
      // its having closed), seen again through incoming or send: the peer was told its code,
      // and there is no bug to report. One thrown while it is still open came from elsewhere
      // (another session's send, in a broadcast): the handler failed, as with any error.
      const own = error instanceof WebSocketError && isOpen(session) !== true;
      session.close(CloseCode.InternalError, "internal error"); // nothing when closing already
      if (own) return;
      try {
        this.#report(error, context.request);
      } catch (again) {
        // A reporter that throws must not become an unhandled rejection, which ends Deno.
        console.error("onWebSocketError failed:", again, "reporting:", error);
      }
      return;
    }
    session.close(CloseCode.NormalClosure);
  }
}

/** The groups of a match, without absent ones, percent-decoded. */
function decodeParams(groups: Record<string, string | undefined>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const name in groups) {
    const value = groups[name];
    if (value === undefined) continue;
    try {
      params[name] = value.includes("%") ? decodeURIComponent(value) : value;
    } catch (error) {
      throw new HttpError(
        400,
        `Cannot route: parameter ${name} is not valid percent-encoding`,
        { cause: error },
      );
    }
  }
  return params;
}

/** The 503 of a WebSocket route whose application was disposed. */
function stopping(): Response {
  return new HttpError(503, "Cannot upgrade: the application is stopping").toResponse();
}

/** An `HttpError` as its response; anything else is thrown on to the engine. */
function answerError(error: unknown): Response {
  if (error instanceof HttpError) return error.toResponse();
  throw error;
}

/**
 * `href` with the hex digits of its percent-encodings in upper case, as `URLPattern` encodes
 * a pattern's literal text: RFC 3986 §6.2.2.1 makes them case-insensitive, so `/caf%c3%a9`
 * matches a route bound as `/café`.
 */
function percentUpper(href: string): string {
  // Browsers send upper-case escapes: only a URL with a lower-case hex digit gets a new string.
  return href.includes("%") && LOWER_ESCAPE.test(href)
    ? href.replace(/%[0-9a-f]{2}/gi, upper)
    : href;
}

const LOWER_ESCAPE = /%(?:[a-f][0-9a-fA-F]|[0-9A-F][a-f])/;

function upper(text: string): string {
  return text.toUpperCase();
}

/**
 * A route's path with its percent-escapes in upper case, as the URLs it is matched against
 * (see percentUpper): bound as `/caf%c3%a9`, it would match nothing. In a regexp group too,
 * but not in a character class there: `[%a-f]` is a class of characters, not an escape.
 */
function literalEscapesUpper(path: string): string {
  if (!path.includes("%")) return path;
  let out = "", depth = 0, inClass = false;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === "\\") {
      // An escaped character is literal; an escaped `%` begins an escape all the same.
      const pair = path[i + 1] === "%" && !inClass && HEX_PAIR.test(path.slice(i + 2, i + 4));
      out += pair ? "\\%" + path.slice(i + 2, i + 4).toUpperCase() : c + (path[i + 1] ?? "");
      i += pair ? 3 : 1;
      continue;
    }
    if (inClass) inClass = c !== "]";
    else if (depth > 0 && c === "[") inClass = true;
    else if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    if (!inClass && c === "%" && HEX_PAIR.test(path.slice(i + 1, i + 3))) {
      out += path.slice(i, i + 3).toUpperCase();
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;
