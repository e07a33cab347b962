// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `httpServer`: the wire engine on a TCP or TLS listener.
 *
 * @module
 */

import { checkDuration, checkLimit } from "../_options.ts";
import { markWritesDone } from "../_slab.ts";
import { urlHost } from "./head.ts";
import {
  type ConnectionPipeline,
  type ConnectionPipelineOptions,
  type Handler,
  pipelineLimits,
  startCheckedPipeline,
} from "./pipeline.ts";

/** Options of {@linkcode httpServer}: where to listen, TLS, and the pipeline's options. */
export interface HttpServerOptions
  extends Omit<ConnectionPipelineOptions, "signal" | "remoteAddr" | "scheme" | "onSession"> {
  /** The interface to listen on. @default {"0.0.0.0"} */
  hostname?: string;
  /**
   * The server's host for HTTP/1.0 requests without `Host`, as `host:port`.
   *
   * @default {the hostname and port listened on, with `localhost` for `0.0.0.0` and `::`, and an IPv6 address in brackets (`[::1]:8000`)}
   */
  defaultHost?: string;
  /** The port; 0 picks a free one (read it from `addr`). @default {8000} */
  port?: number;
  /** Aborting it shuts the server down gracefully, as {@linkcode HttpServer.shutdown}. */
  signal?: AbortSignal;
  /**
   * Serve HTTPS: the certificate chain and private key, PEM. ALPN (RFC 7301) offers
   * `http/1.1` and `http/1.0`: a client that offers both HTTP/2 and HTTP/1.1 gets HTTP/1.1,
   * one that offers only `h2` fails its handshake (`no_application_protocol`), and one that
   * offers none is served.
   */
  tls?: { cert: string; key: string };
  /**
   * The most connections served at once, WebSocket sessions included; a connection accepted
   * past it is closed at once. With `tls`, none is accepted past it: new clients wait in the
   * kernel's listen backlog until a place frees (Deno cannot close a TLS connection whose
   * handshake it has begun, which it does at accept). Each holds a read buffer (4 KiB while
   * idle, up to `readBufferSize`) and up to `maxPipelined` requests. With `tls`, a connection closed while
   * a write waits (a client that stopped reading, at `writeTimeout`) keeps its place until the
   * client reads or leaves: Deno 2.9 frees its socket only then, so this limit bounds the
   * descriptors such clients hold.
   *
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * With `tls`, how long a client may take to complete its TLS handshake, in milliseconds;
   * then its connection is given up: it is never served, and it is closed once the client
   * closes it or its handshake ends. Deno 2.9 cannot close a TLS connection whose handshake
   * is under way (`close()` leaves its socket open until the peer closes it), so until then
   * it keeps its place under `maxConnections`: that limit bounds the sockets that silent
   * clients can hold. `Infinity` waits.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
  /**
   * Called once listening, with the bound address, before the first connection is accepted.
   * If it throws, the listener is closed and `httpServer` throws its error.
   */
  onListen?: (addr: Deno.NetAddr) => void;
  /**
   * How long a shutdown (`shutdown()` or the signal) waits for in-flight responses and
   * WebSocket sessions, in milliseconds; then the connections still open are closed, which
   * ends a response that streams without end (server-sent events). `Infinity` waits for them.
   *
   * @default {10000}
   */
  shutdownTimeout?: number;
}

/** A running server: {@linkcode httpServer}'s result. */
export interface HttpServer extends AsyncDisposable {
  /** The address the server is bound to. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the server stopped and every connection ended. */
  readonly finished: Promise<void>;
  /**
   * Aborts when a shutdown begins (`shutdown()`, or the options' `signal`), with an
   * `AbortError` (Ktor's `ApplicationStopping`): a response that streams without end
   * (server-sent events, a long poll) can end on it, with a last word, rather than be cut
   * after `shutdownTimeout`. It lives as long as the server: a listener added per request
   * must be removed when its response ends (or pass `{ signal }` to `addEventListener`), or
   * every request stays reachable. Listeners run inside the call that began the shutdown.
   */
  readonly stopping: AbortSignal;
  /**
   * Stops gracefully: stops accepting, lets in-flight requests finish (their connections
   * close after the last response), closes idle connections, and closes WebSocket sessions
   * with 1001. The connections still open after `timeout` milliseconds are closed. Resolves
   * with {@linkcode finished}; a second call waits for the same, and a shorter `timeout` cuts
   * sooner.
   *
   * @param timeout How long to wait before closing the connections still open, in
   * milliseconds; `Infinity` waits for them.
   * @default {options.shutdownTimeout}
   * @throws {RangeError} For a `timeout` that is not a duration.
   */
  shutdown(timeout?: number): Promise<void>;
}

/**
 * Ktor's `httpServer`: listens with `Deno.listen` (or `Deno.listenTls` with `tls`) and serves
 * every connection with {@linkcode startConnectionPipeline}, this library's own HTTP/1.1
 * engine, and WebSocket upgrades on its own frame codec (see `upgradeWebSocket`).
 *
 * @param options Where to listen, TLS, the signal, and the pipeline's timeouts and limits.
 * @param handler The fetch handler.
 * @returns The server: its address, `finished` and `shutdown()`.
 * @throws {RangeError} For `maxConnections` or a pipeline timeout or limit out of its range,
 * before anything listens.
 * @throws {Error} What `onListen` threw, once the listener is closed again.
 *
 * @example Hello world
 * ```ts ignore
 * import { httpServer } from "@wirestream/wirestream";
 *
 * const server = httpServer({ port: 8080 }, () => new Response("Hello, World!"));
 * console.log(`listening on http://localhost:${server.addr.port}/`);
 * ```
 */
export function httpServer(options: HttpServerOptions, handler: Handler): HttpServer {
  const maxConnections = checkLimit("maxConnections", options.maxConnections ?? 10_000, 1);
  const shutdownTimeout = checkDuration("shutdownTimeout", options.shutdownTimeout ?? 10_000);
  const handshakeTimeout = checkDuration("handshakeTimeout", options.handshakeTimeout ?? 10_000);
  const {
    signal,
    tls,
    handshakeTimeout: _t,
    onListen: _onListen,
    hostname: _h,
    port: _p,
    maxConnections: _m,
    shutdownTimeout: _s,
    ...pipelineOptions
  } = options;
  // Checked once, before listening: a bad option is the caller's error, not every connection's.
  const limits = pipelineLimits(pipelineOptions);
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8000;
  const listener = options.tls
    ? Deno.listenTls({
      hostname,
      port,
      cert: options.tls.cert,
      key: options.tls.key,
      // Only what this engine speaks: a client that offers h2 alone is refused in the
      // handshake (no_application_protocol) rather than after it, and one that offers both
      // is told it gets HTTP/1.1 (RFC 7301).
      alpnProtocols: ["http/1.1", "http/1.0"],
    })
    : Deno.listen({ hostname, port });
  const addr = listener.addr as Deno.NetAddr;
  try {
    options.onListen?.(addr);
  } catch (error) {
    // Nothing is accepted yet: closing the listener frees the port, and leaves nothing behind.
    listener.close();
    throw error;
  }
  const defaultHost = options.defaultHost ?? `${authorityHost(hostname)}:${addr.port}`;
  const pipelines = new Set<ConnectionPipeline>();
  const sessions = new Set<{ close(code?: number, reason?: string): unknown }>();
  /** TLS connections whose handshake is under way; they count toward maxConnections. */
  const handshakes = new Set<Promise<void>>();
  /**
   * TLS connections given up at handshakeTimeout, until their handshake ends (when the peer
   * closes, or completes it late). Their sockets stay open until then whatever we do, so they
   * count toward maxConnections: when they were dropped from the count at the timeout, a
   * review's silent clients ran a server with maxConnections 20 out of file descriptors.
   */
  const abandoned = new Set<Deno.TlsConn>();
  /**
   * TLS connections closed while a write was under way (a client that stopped reading, cut at
   * writeTimeout): Deno frees such a socket only when that write ends, when the client reads
   * or leaves, so they keep their place under maxConnections until then (see deferClose). A
   * review's 120 stalled clients held 76 descriptors past maxConnections 10 when they did not.
   */
  const lingering = new Set<Deno.TlsConn>();
  /** Every connection still open (served by a pipeline or a session): a timed-out shutdown closes them. */
  const conns = new Set<Deno.Conn>();
  let stopping = false;

  /**
   * A session took `conn` over and holds it until it ends. Not a closure of serve's: what the
   * session's `closed` keeps must not include serve's scope, whose pipeline (its buffers,
   * timers and state) would then live as long as the session.
   */
  const adopt = (
    session: { close(code?: number, reason?: string): unknown },
    conn: Deno.Conn,
  ): void => {
    if (stopping) session.close(1001, "going away");
    sessions.add(session);
    (session as { closed?: Promise<unknown> }).closed?.then(() => {
      sessions.delete(session);
      freed();
      conns.delete(conn);
    });
  };

  /** Serves a connection with a pipeline, until it closes or a session takes it over. */
  const serve = (conn: Deno.Conn): void => {
    // A Deno.Conn's write is done with its bytes once it resolved (so is deferClose's): the
    // pipeline and the sessions lend their large chunks pooled buffers (lib/_slab.ts).
    markWritesDone(conn);
    let upgraded = false;
    const pipeline = startCheckedPipeline(conn, handler, {
      ...pipelineOptions,
      scheme: tls ? "https" : "http",
      remoteAddr: conn.remoteAddr as Deno.NetAddr,
      defaultHost,
      onSession: (session) => {
        upgraded = true;
        adopt(session, conn);
      },
    }, limits);
    pipelines.add(pipeline);
    pipeline.finished.then(() => {
      pipelines.delete(pipeline);
      freed();
      if (!upgraded) conns.delete(conn); // a session holds the connection on
    });
    if (stopping) pipeline.shutdown();
  };

  /**
   * Completes the TLS handshake within handshakeTimeout, then serves the connection; closes it
   * when the handshake fails or takes too long. Until the handshake ends nothing else waits
   * for it: closeWrite() and reads of a TlsConn wait for the handshake with no time limit.
   */
  const handshake = async (conn: Deno.TlsConn): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const shaken = conn.handshake().then(() => true, () => false);
    const outcome = await Promise.race([
      shaken,
      new Promise<"late">((resolve) => {
        if (handshakeTimeout !== Infinity) {
          timer = setTimeout(() => resolve("late"), handshakeTimeout);
        }
      }),
    ]);
    clearTimeout(timer);
    if (outcome === true && conns.has(conn)) {
      // Not cut by a shutdown.
      // A close deferred once the server is stopping is made at once: nothing would make it
      // later (the shutdown closed the lingering ones), and its write would hold the process.
      deferClose(
        conn,
        () => stopping ? queueMicrotask(() => closeNow(conn)) : lingering.add(conn),
        () => {
          lingering.delete(conn);
          freed();
        },
      );
      return serve(conn);
    }
    conns.delete(conn);
    if (outcome === "late" && !stopping) {
      // Closing it now would stop the handshake but not free the socket: wait for its end.
      abandoned.add(conn);
      void shaken.then(() => {
        abandoned.delete(conn);
        freed();
        closeQuietly(conn);
      });
      return;
    }
    closeQuietly(conn);
  };

  const open = () =>
    pipelines.size + sessions.size + handshakes.size + abandoned.size + lingering.size;
  /** Wakes the accept loop when it waits for a place (see below). */
  let onFreed: (() => void) | null = null;
  const freed = () => {
    onFreed?.();
    onFreed = null;
  };

  const accepting = (async () => {
    let backoff = 0;
    while (!stopping) {
      // A TLS connection accepted past maxConnections could not be refused: Deno starts its
      // handshake at accept, and close() leaves the socket open until the peer closes it. So
      // with tls nothing is accepted while every place is taken: new clients wait in the
      // kernel's listen backlog, holding no descriptor of ours, until a place frees.
      while (tls && open() >= maxConnections && !stopping) {
        await new Promise<void>((resolve) => onFreed = resolve);
      }
      if (stopping) break;
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoff = 0;
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) break; // the listener closed
        // A connection the client reset before it was accepted (Deno 2.9: NotConnected): its
        // own failure, not the listener's. Waiting on it let a burst of such connections (a
        // health check's) hold new clients off for seconds each.
        if (
          error instanceof Deno.errors.NotConnected ||
          error instanceof Deno.errors.ConnectionReset ||
          error instanceof Deno.errors.ConnectionAborted
        ) continue;
        // Out of file descriptors or memory: wait and try again; the server stays up.
        backoff = Math.min(backoff === 0 ? 5 : backoff * 2, 1000);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        continue;
      }
      if (open() >= maxConnections) {
        // Each connection holds a read buffer and its requests: refuse past the limit.
        closeQuietly(conn);
        continue;
      }
      // Responses are gathered into one write each; Nagle's delay would only add latency.
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      conns.add(conn);
      if (!tls) {
        serve(conn);
        continue;
      }
      const shaking = handshake(conn as Deno.TlsConn);
      handshakes.add(shaking);
      shaking.finally(() => {
        handshakes.delete(shaking);
        freed();
      });
    }
  })();

  const finished = accepting.then(async () => {
    while (pipelines.size > 0 || sessions.size > 0 || handshakes.size > 0) {
      await Promise.all(handshakes);
      await Promise.all([...pipelines].map((p) => p.finished));
      await Promise.all([...sessions].map((s) => (s as { closed?: Promise<unknown> }).closed));
    }
  });

  const timers = new Set<ReturnType<typeof setTimeout>>();
  /**
   * The shutdown timed out: abort every pipeline (the signals of its requests not yet answered
   * abort, and it waits for none of their handlers) and close every connection, which ends
   * their reads and writes and the WebSocket sessions.
   */
  const cut = (): void => {
    const reason = new DOMException("The server shut down before the response", "AbortError");
    for (const pipeline of pipelines) pipeline.abort(reason);
    for (const conn of conns) closeNow(conn);
    conns.clear();
    for (const conn of lingering) closeNow(conn);
  };
  let done = false;
  void finished.then(() => {
    done = true;
    for (const timer of timers) clearTimeout(timer);
  });

  const stoppingController = new AbortController();
  const shutdown = (timeout = shutdownTimeout): Promise<void> => {
    try {
      checkDuration("timeout", timeout);
    } catch (error) {
      return Promise.reject(error);
    }
    if (timeout !== Infinity && !done) timers.add(setTimeout(cut, timeout));
    if (!stopping) {
      stopping = true;
      stoppingController.abort(new DOMException("The server is shutting down", "AbortError"));
      freed(); // the accept loop may wait for a place
      signal?.removeEventListener("abort", onAbort);
      closeQuietly(listener);
      for (const pipeline of pipelines) pipeline.shutdown();
      for (const session of sessions) session.close(1001, "going away");
      // Their handshakes end (their sockets stay open until their peers close them, as
      // before): a pending one would hold the process open after the server finished.
      for (const conn of abandoned) closeQuietly(conn);
      for (const conn of lingering) closeNow(conn);
    }
    return finished;
  };
  const onAbort = () => void shutdown();
  const dispose = () => shutdown();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return {
    addr,
    finished,
    stopping: stoppingController.signal,
    shutdown,
    [Symbol.asyncDispose]: dispose,
  };
}

/** The TlsConn's own close, for connections whose close() deferClose replaced. */
const realClose = new WeakMap<Deno.TlsConn, () => void>();

/** Closes a connection now, even one whose close() waits for a write (see deferClose). */
function closeNow(conn: Deno.Conn): void {
  closeQuietly({ close: realClose.get(conn as Deno.TlsConn) ?? (() => conn.close()) });
}

/**
 * Makes `conn.close()` while a write is under way end the connection for its users at once,
 * as a close does (reads and writes under way reject with Interrupted, later ones with
 * BadResource), but close the TlsConn only once that write ended: Deno 2.9 would keep the
 * socket open until then anyway (until the peer reads or leaves), and a close it made at once
 * would tell the server nothing of when the socket goes. `lingers` is called when a close is
 * deferred, `freed` when the deferred close happened.
 */
function deferClose(conn: Deno.TlsConn, lingers: () => void, freed: () => void): void {
  const read = conn.read.bind(conn), write = conn.write.bind(conn), close = conn.close.bind(conn);
  const closeWrite = conn.closeWrite.bind(conn);
  realClose.set(conn, close);
  /** The rejections of the reads and writes under way, which a close settles at once. */
  const pending = new Set<(error: unknown) => void>();
  let writing = 0, closed = false, deferred = false;
  const settled = () => {
    if (--writing === 0 && deferred) {
      deferred = false;
      closeQuietly({ close });
      freed();
    }
  };
  /** `op`'s promise, unless a close comes first. */
  const guarded = <T>(op: Promise<T>, writes: boolean): Promise<T> => {
    if (writes) writing++;
    return new Promise<T>((resolve, reject) => {
      pending.add(reject);
      op.then((value) => {
        pending.delete(reject);
        if (writes) settled();
        resolve(value);
      }, (error) => {
        pending.delete(reject);
        if (writes) settled();
        reject(error);
      });
    });
  };
  const gone = () => Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
  conn.read = (buffer) => closed ? gone() : guarded(read(buffer), false);
  conn.write = (bytes) => closed ? gone() : guarded(write(bytes), true);
  // TLS's close_notify is a write too: one a client that stopped reading holds as well.
  conn.closeWrite = () => closed ? gone() : guarded(closeWrite(), true);
  conn.close = () => {
    if (closed) throw new Deno.errors.BadResource("Bad resource ID");
    closed = true;
    if (writing === 0) return close();
    deferred = true;
    lingers();
    const interrupted = new Deno.errors.Interrupted("operation canceled");
    for (const reject of pending) reject(interrupted);
    pending.clear();
  };
}

/** Closes a connection or listener that may be closed already (by its peer, or by us). */
function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Closed already.
  }
}

/** A listening hostname as the host of a URL authority (RFC 3986 §3.2.2). */
function authorityHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]") return "localhost";
  return urlHost(hostname);
}
