// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `embeddedServer`: an application module served by an engine, with a lifecycle (start,
 * graceful stop, a parent signal) and a reload of the module when watched files change.
 *
 * @module
 */

import { checkDuration } from "../_options.ts";
import { urlHost } from "../http/head.ts";
import { Application, type ApplicationOptions } from "./application.ts";
import type { EngineFactory, RunningEngine } from "./engines.ts";
import { routeTableOf } from "./routing.ts";

/**
 * An application module (Ktor's `Application.() -> Unit`): installs plugins and binds routes
 * on the application it is given. What it returns is awaited, and otherwise ignored.
 */
export type ApplicationModule = (application: Application) => unknown;

/**
 * Options of {@linkcode embeddedServer}: where to listen, the lifecycle, the engine's
 * settings, and the {@linkcode ApplicationOptions} (`onWebSocketError`) of each application
 * it builds, the first and those of each reload.
 *
 * @typeParam TConfig The engine's settings, which `configure` edits.
 *
 * @example WebSocket handlers' errors sent to a log of your own
 * ```ts
 * import { embeddedServer, type EmbeddedServerOptions, WebSockets, WireEngine, type WireEngineConfig } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const failures: string[] = [];
 * const options: EmbeddedServerOptions<WireEngineConfig> = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen() {},
 *   onWebSocketError: (error, request) => failures.push(`${new URL(request.url).pathname}: ${error}`),
 * };
 * const server = embeddedServer(WireEngine, options, (app) => {
 *   app.install(WebSockets);
 *   app.routing((r) => r.webSocket("/ws", () => { throw new Error("bug"); }));
 * });
 * const { port } = await server.start();
 * const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
 * const closed = await new Promise<CloseEvent>((resolve) => (socket.onclose = resolve));
 * assert.equal(closed.code, 1011);
 * assert.deepEqual(failures, ["/ws: Error: bug"]);
 * await server.stop();
 * ```
 */
export interface EmbeddedServerOptions<TConfig> extends ApplicationOptions {
  /** The interface to listen on. @default {"0.0.0.0"} */
  hostname?: string;
  /** The port; 0 picks a free one (`start()` resolves with the address). @default {8000} */
  port?: number;
  /**
   * Ktor's parent coroutine context: aborting it stops the server as
   * {@linkcode EmbeddedServer.stop} does (WebSocket sessions close with 1001).
   */
  signal?: AbortSignal;
  /**
   * Files or directories (relative to the working directory) whose changes reload the module. Needs
   * the module as a specifier: each change (debounced by `reloadDelay`) imports it afresh into a
   * new {@linkcode Application}, which answers the requests that come after; requests in flight and
   * open WebSocket sessions stay with the application that accepted them. A replaced application is
   * disposed (Ktor stops the application a reload replaces: its `signal` aborts) at the reload when
   * it has no open sessions and no response still being sent (an event stream, say), else at a
   * later reload once it has none (`stop()` disposes every application, and closes the sessions
   * with 1001). A handler still running at the reload runs on; one that waits for its application's
   * signal (a long poll) answers once that application is disposed. The runtime caches modules by
   * URL, so only the module itself is evaluated again, not the modules it imports: keep the code
   * you edit in it, or import the rest with a query that changes. Each reload imports the module
   * under a new URL, and the runtime never drops a module it loaded: every version stays in memory
   * with what it holds at top level (about 7 kB of code each, plus any data the module builds when
   * it loads), so restart the process now and then during a long session of edits, and keep large
   * data out of the module's top level. A module that fails to load leaves the previous application
   * serving.
   * A directory is watched recursively; a file is watched through its directory, so a save
   * that replaces it (a temporary file renamed over it, as editors do) or a delete and
   * re-create still reloads, as do later changes.
   * The paths must exist: `start()` fails otherwise, before anything listens.
   *
   * @default {[]}
   */
  watchPaths?: string[];
  /** How long changes must settle before a reload, in milliseconds. @default {100} */
  reloadDelay?: number;
  /**
   * How long a stop ({@linkcode EmbeddedServer.stop} or the signal) lets in-flight responses
   * finish, in milliseconds (Ktor's `stop(gracePeriodMillis, timeoutMillis)` timeout): then
   * the {@linkcode WireEngine} closes the connections still open, which ends a response that
   * streams without end (server-sent events). `Infinity` waits for them.
   *
   * The {@linkcode NativeEngine} waits for them whatever this is: `Deno.serve` has a graceful
   * `shutdown()` that waits for every response, and a non-graceful one (aborting its `signal`)
   * that cannot follow it (Deno 2.9). There, a streaming response must end by itself: end it
   * when the application's `signal` aborts, which a stop does first. But a request body still
   * arriving is cut there: Deno's shutdown fails the handler's next read of it with
   * `BadResource` (measured on Deno 2.9 with plain `Deno.serve` too), so an upload in
   * progress usually ends in a 500. The wire engine lets it finish within `stopTimeout`.
   *
   * @default {10000}
   */
  stopTimeout?: number;
  /** Edits the engine's settings (Ktor's `configure` block) before it starts. */
  configure?: (config: TConfig) => void;
  /**
   * Called once listening. By default the address is printed, as `Deno.serve` does:
   * `Listening on http://<hostname>:<port>/`.
   */
  onListen?: (addr: Deno.NetAddr) => void;
  /**
   * Called after each reload with null, or with the error of a module that failed to load (by
   * default such errors are printed with `console.error`).
   */
  onReload?: (error: unknown) => void;
}

/** An application served by an engine: {@linkcode embeddedServer}'s result. */
export interface EmbeddedServer extends AsyncDisposable {
  /**
   * Loads the module, builds the application and starts the engine (Ktor's `start()`).
   *
   * @returns The bound address, once listening.
   * @throws {TypeError} When the module specifier does not export a module function.
   * @throws {Error} When called a second time, or after `stop()`; or when the parent `signal`
   * was aborted already, with its reason as the error's `cause`.
   * @throws {DOMException} An `AbortError` when `stop()` or the parent signal comes while the
   * module is loading: the engine never starts.
   */
  start(): Promise<Deno.NetAddr>;
  /** The address, once started. */
  readonly addr: Deno.NetAddr | null;
  /** The application that answers new requests (it changes on reload), once started. */
  readonly application: Application | null;
  /**
   * Resolves once the server stopped: the engine finished and every application was disposed.
   * A reload still importing its module then is waited for up to `stopTimeout`; the
   * application it makes after that is disposed as soon as it exists, and never serves.
   */
  readonly finished: Promise<void>;
  /**
   * Stops gracefully: stops watching, disposes every application this server made (their
   * WebSocket sessions close with 1001), stops accepting, and lets in-flight requests finish;
   * after `stopTimeout`, the wire engine closes the connections still open. (On the native
   * engine, a request body still arriving is cut: see `stopTimeout`. It also stops accepting
   * only once the WebSocket sessions finished their close handshakes, within `stopTimeout`:
   * `Deno.serve`'s shutdown would cut them with its own 1001 first, so until then new
   * requests are still answered, by the disposed application.)
   * Resolves with {@linkcode finished}; again, it waits for the same.
   */
  stop(): Promise<void>;
}

/**
 * Ktor's `embeddedServer(factory, port, host, watchPaths, parentCoroutineContext, configure,
 * module)`: serves an application module with an engine, {@linkcode NativeEngine}
 * (`Deno.serve`) or {@linkcode WireEngine} (this library's HTTP/1.1). Call `start()`.
 *
 * The module is a function of the application, or a module specifier (a path relative to the
 * working directory, or a URL) whose default export (or export named `module`) is one; only
 * the latter can be reloaded when `watchPaths` change.
 *
 * The engine may be chosen at run time (`useWire ? WireEngine : NativeEngine`): `configure`
 * then gets the union of the two engines' settings, so it can set what both have (`tls`,
 * `onError`) and TypeScript refuses what only one has.
 *
 * @typeParam TEngine The engine's type; `configure` gets its settings.
 * @param engine The engine.
 * @param options Where to listen, the parent signal, watched paths, engine settings and the
 * applications' options.
 * @param module The application module, or its specifier.
 * @returns The server, not started yet.
 * @throws {TypeError} For `watchPaths` with a module given as a function, or bad options (an
 * `onWebSocketError` that is not a function among them).
 * @throws {RangeError} For a `reloadDelay` or `stopTimeout` that is not a duration.
 *
 * @example An application on the wire engine, stopped by its parent signal
 * ```ts
 * import { embeddedServer, WireEngine } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const parent = new AbortController();
 * const server = embeddedServer(WireEngine, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   signal: parent.signal,
 *   onListen() {},
 * }, (app) => {
 *   app.routing((r) => r.get("/hello/:name", (_request, { params }) => new Response(`Hello, ${params.name}!`)));
 * });
 * const { port } = await server.start();
 * const response = await fetch(`http://127.0.0.1:${port}/hello/Ktor`);
 * assert.equal(await response.text(), "Hello, Ktor!");
 * parent.abort();
 * await server.finished;
 * ```
 *
 * @example The engine chosen at run time, with settings both engines have
 * ```ts
 * import { embeddedServer, NativeEngine, WireEngine } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const useWire = Math.random() < 0.5; // known only at run time (a flag, an environment variable)
 * const server = embeddedServer(useWire ? WireEngine : NativeEngine, {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   onListen() {},
 *   configure: (config) => {
 *     config.onError = (_error, request) =>
 *       new Response(`failed: ${new URL(request.url).pathname}`, { status: 500 });
 *   },
 * }, (app) => app.routing((r) => r.get("/fail", () => Promise.reject(new Error("bug")))));
 * const { port } = await server.start();
 * const response = await fetch(`http://127.0.0.1:${port}/fail`);
 * assert.equal(await response.text(), "failed: /fail");
 * await server.stop();
 * ```
 */
export function embeddedServer<TEngine extends EngineFactory<unknown>>(
  engine: TEngine,
  options: EmbeddedServerOptions<TEngine extends EngineFactory<infer TConfig> ? TConfig : never>,
  module: ApplicationModule | string | URL,
): EmbeddedServer {
  // The engine as a factory of its own settings, which TypeScript cannot see through the
  // conditional type: the settings go from its defaults() through configure to its start().
  type TConfig = TEngine extends EngineFactory<infer C> ? C : never;
  return new Embedded(engine as EngineFactory<TConfig>, options, module);
}

class Embedded<TConfig> implements EmbeddedServer {
  readonly finished: Promise<void>;
  readonly #engine: EngineFactory<TConfig>;
  readonly #options: EmbeddedServerOptions<TConfig>;
  readonly #module: ApplicationModule | URL;
  readonly #watchPaths: string[];
  readonly #reloadDelay: number;
  readonly #stopTimeout: number;
  /** The reloads under way, one after another (see #watch). */
  #reloading: Promise<void> = Promise.resolve();
  /** Every application made, for stop() to dispose. */
  readonly #applications = new Set<Application>();
  /**
   * The responses of each application that its handlers returned and that are not done yet
   * (watchPaths only): a reload keeps a replaced application while it has any, as it does
   * for sessions.
   */
  readonly #inFlight = new Map<Application, number>();
  #current: Application | null = null;
  #running: RunningEngine | null = null;
  readonly #watchers: Deno.FsWatcher[] = [];
  #state: "new" | "starting" | "started" | "stopped" = "new";
  #stopping: Promise<void> | null = null;
  #finish!: () => void;
  #reloads = 0;

  constructor(
    engine: EngineFactory<TConfig>,
    options: EmbeddedServerOptions<TConfig>,
    module: ApplicationModule | string | URL,
  ) {
    this.#engine = engine;
    this.#options = options;
    this.#watchPaths = options.watchPaths ?? [];
    this.#reloadDelay = checkDuration("reloadDelay", options.reloadDelay ?? 100);
    this.#stopTimeout = checkDuration("stopTimeout", options.stopTimeout ?? 10_000);
    if (options.onWebSocketError !== undefined && typeof options.onWebSocketError !== "function") {
      throw new TypeError("Invalid onWebSocketError: it is not a function");
    }
    if (!Array.isArray(this.#watchPaths) || this.#watchPaths.some((p) => typeof p !== "string")) {
      throw new TypeError("Invalid watchPaths: it is not an array of paths");
    }
    if (typeof module === "function") {
      if (this.#watchPaths.length > 0) {
        throw new TypeError(
          "Cannot watch paths: the module must be given as a specifier to be imported again",
        );
      }
      this.#module = module;
    } else if (typeof module === "string" || module instanceof URL) {
      this.#module = specifierUrl(module);
    } else {
      throw new TypeError("Invalid module: it is not a function or a module specifier");
    }
    this.finished = new Promise((resolve) => (this.#finish = resolve));
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => void this.stop();

  get addr(): Deno.NetAddr | null {
    return this.#running?.addr ?? null;
  }

  get application(): Application | null {
    return this.#current;
  }

  start(): Promise<Deno.NetAddr> {
    if (this.#state !== "new") {
      return Promise.reject(
        new Error(
          `Cannot start: the server was ${
            this.#state === "stopped" ? "stopped" : "started"
          } already`,
        ),
      );
    }
    if (this.#options.signal?.aborted) {
      void this.stop();
      return Promise.reject(
        new Error("Cannot start: the signal was aborted", { cause: this.#options.signal.reason }),
      );
    }
    this.#state = "starting";
    this.#starting = this.#start();
    return this.#starting;
  }

  #starting: Promise<Deno.NetAddr> | null = null;

  async #start(): Promise<Deno.NetAddr> {
    try {
      this.#current = await this.#load(this.#module);
      // stop() (or the signal) came during the load: listening now would serve a stopped server.
      if (this.#state === "stopped") {
        throw new DOMException(
          "Cannot start: the server was stopped while starting",
          "AbortError",
        );
      }
      const config = this.#engine.defaults();
      this.#options.configure?.(config);
      // Watched paths are checked (they must exist) before anything listens.
      if (this.#watchPaths.length > 0) this.#watch();
      const reloads = this.#watchPaths.length > 0;
      this.#running = this.#engine.start(
        (request, info) => {
          const application = this.#current!;
          const answer = application.fetch(request, info);
          if (!reloads) return answer;
          // Read only here: the wire engine makes `completed` on first use.
          const completed = info.completed;
          if (completed === undefined) return answer;
          if (answer instanceof Response) {
            this.#track(application, completed);
            return answer;
          }
          return answer.then((response) => {
            this.#track(application, completed);
            return response;
          });
        },
        {
          hostname: this.#options.hostname ?? "0.0.0.0",
          port: this.#options.port ?? 8000,
          onListen: this.#options.onListen ?? ((addr) => {
            // https when the engine serves TLS; an IPv6 address in brackets (RFC 3986 §3.2.2).
            const scheme = (config as { tls?: unknown }).tls ? "https" : "http";
            console.log(`Listening on ${scheme}://${urlHost(addr.hostname)}:${addr.port}/`);
          }),
        },
        config,
      );
    } catch (error) {
      // Nothing listens: the server is over.
      this.#unwatch();
      this.#state = "stopped";
      this.#options.signal?.removeEventListener("abort", this.#onAbort);
      for (const application of this.#applications) application.dispose();
      this.#finish();
      throw error;
    }
    if (this.#state === "starting") this.#state = "started";
    return this.#running.addr;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    this.#state = "stopped";
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    await this.#starting?.catch(() => {}); // a start under way finishes first
    // One stopTimeout for all the waits below, counted from here.
    const deadline = Date.now() + this.#stopTimeout; // Infinity stays Infinity
    const left = () => Math.max(0, deadline - Date.now());
    this.#unwatch();
    // Sessions first (1001): an engine's graceful stop could wait for them.
    for (const application of this.#applications) application.dispose();
    // A reload under way finishes too, so that the application it makes (which it disposes,
    // seeing the stop) is disposed before `finished` says every one was.
    const reloaded = this.#reloading;
    try {
      if (this.#running?.closesSessions) {
        // Deno.serve's shutdown closes every WebSocket itself, at once, with its own 1001
        // ("Server shutting down") before our close frames go out, and the sessions then
        // report a clean 1005 whatever the peer answered: let their close handshakes finish
        // first, those of an application the reload makes included.
        await settledWithin(
          reloaded.then(() =>
            Promise.all(
              [...this.#applications].map((application) =>
                routeTableOf(application).sessionsEnded()
              ),
            )
          ),
          left(),
        );
        await this.#running.shutdown(left());
      } else {
        await Promise.all([this.#running?.shutdown(left()), settledWithin(reloaded, left())]);
      }
    } finally {
      this.#finish();
    }
  }

  /** Imports (or runs) the module into a new application. */
  async #load(module: ApplicationModule | URL): Promise<Application> {
    let configure: ApplicationModule;
    if (typeof module === "function") {
      configure = module;
    } else {
      const url = new URL(module);
      if (this.#reloads > 0 && url.protocol !== "data:" && url.protocol !== "blob:") {
        url.searchParams.set("reload", String(this.#reloads)); // a new URL is evaluated anew
      }
      const exports = await import(url.href);
      configure = exports.default ?? exports.module;
      if (typeof configure !== "function") {
        throw new TypeError(
          `Cannot load module ${module.href}: it exports no default or "module" function`,
        );
      }
    }
    const application = new Application(this.#options); // its ApplicationOptions
    this.#applications.add(application);
    try {
      await configure(application);
      this.#engine.check?.(application); // what the engine cannot serve fails here, not per request
    } catch (error) {
      this.#applications.delete(application);
      application.dispose();
      throw error;
    }
    return application;
  }

  /**
   * Reloads the module on changes under the watched paths, debounced. A directory is watched
   * recursively. A file is watched through its parent directory, keeping only the events for
   * its name: an inotify watch on the file itself follows its inode, which an editor's save
   * (a temporary file renamed over it) or a delete and re-create replaces, and the watch
   * would then go silent for good.
   */
  #watch(): void {
    const directories: string[] = [];
    /** The watched files, by their parent directory: the names to keep. */
    const files = new Map<string, Set<string>>();
    for (const path of this.#watchPaths) {
      if (Deno.statSync(path).isDirectory) { // throws NotFound for a missing path
        directories.push(path);
        continue;
      }
      const cut = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
      const parent = cut < 0 ? "." : path.slice(0, cut + 1);
      const names = files.get(parent) ?? new Set();
      names.add(path.slice(cut + 1));
      files.set(parent, names);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const changed = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        // #reload never rejects: one failure must not stop the reloads after it.
        this.#reloading = this.#reloading.then(() => this.#reload());
      }, this.#reloadDelay);
    };
    const follow = async (watcher: Deno.FsWatcher, names: Set<string> | null) => {
      try {
        for await (const event of watcher) {
          if (event.kind === "access" || event.kind === "other") continue;
          if (names !== null && !event.paths.some((p) => names.has(basename(p)))) continue;
          changed();
        }
      } catch {
        // The watcher was closed.
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      if (directories.length > 0) {
        const watcher = Deno.watchFs(directories, { recursive: true });
        this.#watchers.push(watcher);
        void follow(watcher, null);
      }
      // One watcher per parent: an event then names a file of that directory only.
      for (const [parent, names] of files) {
        const watcher = Deno.watchFs(parent, { recursive: false });
        this.#watchers.push(watcher);
        void follow(watcher, names);
      }
    } catch (error) {
      this.#unwatch();
      throw error;
    }
  }

  #unwatch(): void {
    for (const watcher of this.#watchers) {
      try {
        watcher.close();
      } catch {
        // Closed already.
      }
    }
    this.#watchers.length = 0;
  }

  /**
   * Counts a response of `application` until it is done (see #inFlight). From the handler's
   * return only: a handler that runs until its application's signal aborts (a long poll)
   * would otherwise keep it for as long as it waits, and on `Deno.serve` even once its client
   * left (`completed` waits for the handler, and reading `request.signal` there makes Deno
   * print a notice on its legacy behaviour).
   */
  #track(application: Application, completed: Promise<void>): void {
    this.#inFlight.set(application, (this.#inFlight.get(application) ?? 0) + 1);
    const done = () => {
      const left = this.#inFlight.get(application)! - 1;
      if (left === 0) this.#inFlight.delete(application);
      else this.#inFlight.set(application, left);
    };
    completed.then(done, done);
  }

  async #reload(): Promise<void> {
    if (this.#stopping !== null) return;
    this.#reloads++;
    let failure: unknown = null;
    try {
      const application = await this.#load(this.#module);
      if (this.#stopping !== null) {
        application.dispose();
        return;
      }
      this.#current = application;
      // The applications replaced before, once their sessions and responses ended, are done
      // with (a response still streaming, an event stream say, may end on the signal).
      for (const old of this.#applications) {
        if (old !== application && old.sessions === 0 && !this.#inFlight.has(old)) {
          old.dispose();
          this.#applications.delete(old);
        }
      }
    } catch (error) {
      failure = error;
    }
    try {
      if (this.#options.onReload !== undefined) this.#options.onReload(failure);
      else if (failure !== null) {
        console.error("Reload failed; the previous application serves on:", failure);
      }
    } catch (error) {
      // A reporter that throws must not become an unhandled rejection, which ends Deno.
      console.error("onReload failed:", error, "reporting:", failure);
    }
  }
}

/** Resolves when `promise` settles, or after `ms` milliseconds (never, for Infinity). */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      promise.catch(() => {}),
      new Promise<void>((resolve) => {
        if (ms !== Infinity) timer = setTimeout(resolve, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last segment of a path. */
function basename(path: string): string {
  return path.slice(Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\")) + 1);
}

/** A module specifier as a URL: a URL as it is, a path relative to the working directory. */
function specifierUrl(specifier: string | URL): URL {
  if (specifier instanceof URL) return specifier;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(specifier) && !/^[A-Za-z]:[\\/]/.test(specifier)) {
    return new URL(specifier); // a URL (not a Windows drive letter)
  }
  const base = new URL("file:///");
  // Each segment encoded: a % (or # or ?) in the working directory is a character, not a code.
  base.pathname = Deno.cwd().replaceAll("\\", "/").split("/").map(encodeURIComponent).join("/")
    .replace(/\/?$/, "/");
  return new URL(
    specifier.replaceAll("%", "%25").replaceAll("#", "%23").replaceAll("?", "%3F"),
    base,
  );
}
