// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `Application`: the plugins installed on it and its routes, served as one fetch
 * handler.
 *
 * @module
 */

import type { HandlerInfo } from "../http/pipeline.ts";
import { refuseUnchecked } from "./_authority.ts";
import { RouteTable, type Routing } from "./routing.ts";

/**
 * What an engine tells a handler about the connection: the wire engine's `HandlerInfo`
 * (`httpServer`, `startConnectionPipeline`) or `Deno.serve`'s `ServeHandlerInfo`.
 *
 * @example Reading the client's address in a route
 * ```ts
 * import { Application, type ServeInfo } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application().routing((r) => {
 *   r.get("/ip", (_request, { remoteAddr }) => new Response(remoteAddr?.hostname ?? "unknown"));
 * });
 * const info: ServeInfo = {
 *   remoteAddr: { transport: "tcp", hostname: "192.0.2.7", port: 50_000 },
 *   completed: Promise.resolve(),
 * };
 * assert.equal(await (await app.fetch(new Request("http://localhost/ip"), info)).text(), "192.0.2.7");
 * ```
 */
export type ServeInfo = HandlerInfo | Deno.ServeHandlerInfo;

/**
 * A plugin (Ktor's `ApplicationFeature`): a keyed object that {@linkcode Application.install}
 * runs once per application, and whose result {@linkcode Application.plugin} finds again by
 * its key.
 *
 * @typeParam TOptions The options {@linkcode Application.install} passes on.
 * @typeParam TInstance What `install` returns: the plugin's state in this application.
 *
 * @example A plugin with options, found again by its key
 * ```ts
 * import { Application, type Plugin } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const Greeting: Plugin<{ name?: string }, { text: string }> = {
 *   key: "Greeting",
 *   install: (_app, options) => ({ text: `Hello, ${options?.name ?? "World"}!` }),
 * };
 * const app = new Application();
 * app.install(Greeting, { name: "Ktor" });
 * assert.equal(app.plugin(Greeting).text, "Hello, Ktor!");
 * ```
 */
export interface Plugin<TOptions, TInstance> {
  /** The plugin's name: an application holds at most one plugin per key. */
  readonly key: string;
  /**
   * Sets the plugin up on `application`: checks `options` and returns the plugin's state.
   *
   * @param application The application it is installed on.
   * @param options The options given to {@linkcode Application.install}.
   * @returns The plugin's state, returned by {@linkcode Application.plugin} from now on.
   */
  install(application: Application, options: TOptions | undefined): TInstance;
}

/**
 * A plugin installed twice, looked up while not installed, or needed by a route bound before
 * it was installed (Ktor's `DuplicatePluginException` and `MissingApplicationPluginException`).
 *
 * @example Installing a plugin twice
 * ```ts
 * import { Application, PluginError, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application();
 * app.install(WebSockets);
 * assert.throws(() => app.install(WebSockets), (e) => e instanceof PluginError && e.key === "WebSockets");
 * ```
 */
export class PluginError extends Error {
  /** Always `"PluginError"`. */
  override name = "PluginError";
  /** The key of the plugin concerned. */
  readonly key: string;

  /**
   * Creates an error.
   *
   * @param key The key of the plugin concerned.
   * @param message What went wrong.
   */
  constructor(key: string, message: string) {
    super(message);
    this.key = key;
  }
}

/**
 * Options of {@linkcode Application}.
 *
 * @example Sending WebSocket handlers' errors to a log of your own
 * ```ts
 * import { Application, type ApplicationOptions } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const failures: string[] = [];
 * const options: ApplicationOptions = {
 *   onWebSocketError: (error, request) => failures.push(`${new URL(request.url).pathname}: ${error}`),
 * };
 * const app = new Application(options);
 * assert.ok(app instanceof Application);
 * assert.throws(() => new Application({ onWebSocketError: "console" as never }), TypeError);
 * ```
 */
export interface ApplicationOptions {
  /**
   * Called with the error a WebSocket handler threw, after its session was closed with 1011.
   * A `WebSocketError` thrown once the handler's session is no longer open is not reported:
   * it is that session's own failure (or its having closed) seen again through `incoming` or
   * `send`, and the peer was told its code. One thrown while the session is open (another
   * session's send that failed, in a broadcast) is reported as any error is. HTTP
   * handlers' errors are not reported here: an `HttpError` becomes its response, and any
   * other error goes to the engine, which answers 500.
   *
   * @default {(error) => console.error("WebSocket handler failed:", error)}
   */
  onWebSocketError?: (error: unknown, request: Request) => void;
}

/**
 * Ktor's `Application`: plugins installed with {@linkcode install}, routes bound with
 * {@linkcode routing}, and the whole served as one web-standard fetch handler. `fetch` has
 * the shape `deno serve` and Deno Deploy expect from a default export, and {@linkcode handler}
 * (the same function, bound) runs on `httpServer`, `Deno.serve` or inside another router such
 * as Hono.
 *
 * @example Routes answered in memory
 * ```ts
 * import { Application } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application().routing((r) => {
 *   r.get("/users/:id", (_request, { params }) => Response.json({ id: params.id }));
 * });
 * const response = await app.fetch(new Request("http://localhost/users/42"));
 * assert.deepEqual(await response.json(), { id: "42" });
 * assert.equal((await app.fetch(new Request("http://localhost/nope"))).status, 404);
 * ```
 *
 * @example Serving it (`deno serve app.ts`, Deno Deploy, or the wire engine)
 * ```ts ignore
 * import { Application, httpServer, WebSockets } from "@wirestream/wirestream";
 *
 * const app = new Application();
 * app.install(WebSockets, { pingInterval: 20_000 });
 * app.routing((r) => {
 *   r.webSocket("/echo", async (session) => {
 *     for await (const message of session.incoming) await session.send(message);
 *   });
 * });
 * export default app; // deno serve app.ts
 * // or: httpServer({ port: 8080 }, app.handler); Deno.serve(app.handler);
 * ```
 *
 * @example Inside Hono: pass the engine's own request, `c.req.raw`
 * ```ts ignore
 * import { Hono } from "hono";
 * import { mount } from "hono/mount";
 * import { type Application, httpServer, type ServeInfo } from "@wirestream/wirestream";
 *
 * declare const app: Application; // with r.webSocket("/chat/:room", …) and r.get("/users/:id", …)
 * const hono = new Hono<{ Bindings: ServeInfo }>();
 * hono.get("/chat/:room", (c) => app.fetch(c.req.raw, c.env));
 * hono.all("/api/*", mount(app.fetch)); // a copy with /api cut off: fine for HTTP routes only
 * httpServer({ port: 8080 }, hono.fetch);
 * ```
 */
export class Application {
  /**
   * Answers a request with the routes: this is the application as a fetch handler, bound to
   * it (pass it around as is). See {@linkcode Routing} for how requests are routed.
   *
   * @param request The request.
   * @param info What the engine tells about the connection, if anything.
   * @returns The response of the route, or 404, 405 or the `OPTIONS` answer; 400 for a
   * request whose `Host` (or URL authority) is not a host and an optional port, as on the
   * engines: `Deno.serve` builds `request.url` from `Host`, so a `Host` of `a/admin` would
   * otherwise route `GET /x` as `/admin/x`; 501 for `CONNECT`, `TRACE` and `TRACK`, and for a
   * method that differs only in case from one Fetch upper-cases (`get`), as on the engines.
   */
  readonly fetch: (request: Request, info?: ServeInfo) => Response | Promise<Response>;
  readonly #plugins = new Map<string, { plugin: Plugin<never, unknown>; instance: unknown }>();
  /** The keys of the plugins whose `install` is running. */
  readonly #installing = new Set<string>();
  readonly #routing: RouteTable;
  readonly #disposal = new AbortController();

  /**
   * Creates an application without plugins or routes: it answers every request with 404.
   *
   * @param options Where WebSocket handlers' errors go.
   * @throws {TypeError} When `onWebSocketError` is not a function.
   */
  constructor(options: ApplicationOptions = {}) {
    const report = options.onWebSocketError ??
      ((error: unknown) => console.error("WebSocket handler failed:", error));
    if (typeof report !== "function") {
      throw new TypeError("Invalid onWebSocketError: it is not a function");
    }
    const routing = new RouteTable(this, report);
    this.#routing = routing;
    // A Host that is no authority is refused here too: under `deno serve`, on Deno Deploy or
    // with Deno.serve(app.fetch), no engine of ours checked it, and Deno builds the URL the
    // routes match from it (a Host of `a/admin` would route `GET /x` as `/admin/x`).
    this.fetch = (request, info) => refuseUnchecked(request) ?? routing.handle(request, info);
  }

  /**
   * How many WebSocket sessions its routes started that have not ended yet.
   *
   * @example
   * ```ts
   * import { Application } from "@wirestream/wirestream";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Application().sessions, 0);
   * ```
   */
  get sessions(): number {
    return this.#routing.sessions;
  }

  /**
   * Aborts when the application is disposed (Ktor's `ApplicationStopping`): its WebSocket
   * sessions follow it and close with 1001, and long-running work of its own can too.
   *
   * @example Work that ends with the application
   * ```ts
   * import { Application } from "@wirestream/wirestream";
   * import assert from "node:assert/strict";
   *
   * const app = new Application();
   * const ticker = setInterval(() => {}, 1000);
   * app.signal.addEventListener("abort", () => clearInterval(ticker));
   * app.dispose();
   * assert.equal(app.signal.aborted, true);
   * ```
   */
  get signal(): AbortSignal {
    return this.#disposal.signal;
  }

  /**
   * Stops the application (Ktor's `Application.dispose()`): aborts {@linkcode signal}, so
   * its open WebSocket sessions close with 1001 (going away), and WebSocket routes refuse new
   * upgrades with 503. Plain routes still answer: stopping the server that serves it is the
   * engine's part (`embeddedServer` does both). Again, it does nothing.
   *
   * @example
   * ```ts
   * import { Application, WebSockets } from "@wirestream/wirestream";
   * import assert from "node:assert/strict";
   *
   * const app = new Application();
   * app.install(WebSockets);
   * app.routing((r) => r.webSocket("/ws", async () => {}));
   * app.dispose();
   * const upgrade = new Request("http://localhost/ws", {
   *   headers: {
   *     upgrade: "websocket",
   *     connection: "Upgrade",
   *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
   *     "sec-websocket-version": "13",
   *   },
   * });
   * assert.equal((await app.fetch(upgrade)).status, 503);
   * ```
   */
  dispose(): void {
    this.#disposal.abort(new DOMException("The application was disposed", "AbortError"));
  }

  /** The fetch handler, for `httpServer(options, app.handler)` or `Deno.serve(app.handler)`. */
  get handler(): (request: Request, info?: ServeInfo) => Response | Promise<Response> {
    return this.fetch;
  }

  /**
   * Installs a plugin (Ktor's `install(feature) { … }`): runs its `install` with `options`
   * and keeps the result under the plugin's key.
   *
   * The plugin's key is taken while its `install` runs: installing a plugin with that key
   * again from inside it (a plugin that installs itself) throws a `PluginError`. When `install`
   * throws, nothing is recorded and the error propagates: the plugin counts as not installed
   * and may be installed again (what its `install` did to the application before throwing,
   * such as routes it bound, stays).
   *
   * @param plugin The plugin.
   * @param options Its options, checked by the plugin.
   * @returns What the plugin's `install` returned (its state, e.g. the options applied).
   * @throws {PluginError} When a plugin with the same key is installed already, or is being
   * installed.
   * @throws {TypeError} When `plugin` has no string key or no `install` function, or the
   * plugin rejects the type of an option.
   * @throws {RangeError} When the plugin rejects the value of an option.
   */
  install<TOptions, TInstance>(plugin: Plugin<TOptions, TInstance>, options?: TOptions): TInstance {
    // A class whose key and install are static is a plugin too: its type is one.
    if (
      (typeof plugin !== "object" && typeof plugin !== "function") || plugin === null ||
      typeof plugin.key !== "string" || typeof plugin.install !== "function"
    ) {
      throw new TypeError("Cannot install: a plugin has a string key and an install() method");
    }
    if (this.#plugins.has(plugin.key) || this.#installing.has(plugin.key)) {
      const running = this.#installing.has(plugin.key) ? " (its install is still running)" : "";
      throw new PluginError(
        plugin.key,
        `Cannot install plugin ${JSON.stringify(plugin.key)}: it is installed already${running}`,
      );
    }
    // The key is taken before install runs, so a plugin that installs itself (directly or
    // through another) gets the error above instead of recursing until the stack overflows.
    this.#installing.add(plugin.key);
    let instance: TInstance;
    try {
      instance = plugin.install(this, options);
    } finally {
      this.#installing.delete(plugin.key); // a failed install records nothing
    }
    this.#plugins.set(plugin.key, { plugin: plugin as Plugin<never, unknown>, instance });
    return instance;
  }

  /**
   * Finds an installed plugin's state (Ktor's `application.plugin(…)`).
   *
   * @param plugin The plugin.
   * @returns What its `install` returned.
   * @throws {PluginError} When it is not installed (or another plugin holds its key).
   */
  plugin<TInstance>(plugin: Plugin<never, TInstance>): TInstance {
    const entry = this.#plugins.get(plugin.key);
    if (entry === undefined || entry.plugin !== plugin) {
      throw new PluginError(
        plugin.key,
        `Cannot find plugin ${JSON.stringify(plugin.key)}: it is not installed`,
      );
    }
    return entry.instance as TInstance;
  }

  /**
   * Finds an installed plugin's state, or null (Ktor's `pluginOrNull`).
   *
   * @param plugin The plugin.
   * @returns What its `install` returned, or null when it is not installed.
   */
  pluginOrNull<TInstance>(plugin: Plugin<never, TInstance>): TInstance | null {
    const entry = this.#plugins.get(plugin.key);
    return entry !== undefined && entry.plugin === plugin ? entry.instance as TInstance : null;
  }

  /**
   * Binds routes (Ktor's `routing { … }`); may be called more than once, adding routes.
   *
   * @param configure Binds routes on the {@linkcode Routing} it is given.
   * @returns The application.
   * @throws {PluginError} When a WebSocket route is bound before `install(WebSockets)`.
   * @throws {TypeError} For an invalid path, method or handler.
   */
  routing(configure: (routing: Routing) => void): this {
    configure(this.#routing);
    return this;
  }
}
