// Copyright 2026 the wirestream authors. MIT license.
/**
 * A WebSocket client over `Deno.connect` / `Deno.connectTls`, returning the same session as
 * the server side (role client).
 *
 * @module
 */

import { HttpError } from "../http/error.ts";
import { hasToken, readResponseHead, TOKEN } from "../http/head.ts";
import { BufferedReader } from "../http/reader.ts";
import { WebSocketError } from "./error.ts";
import { acceptKey } from "./handshake.ts";
import { sessionSettings, WebSocketSession, type WebSocketSessionOptions } from "./session.ts";

/** Options of {@linkcode connectWebSocket}. */
export interface ConnectWebSocketOptions
  extends Omit<WebSocketSessionOptions, "role" | "protocol" | "buffered"> {
  /** The subprotocols to offer, in order of preference: distinct tokens. @default {[]} */
  protocols?: readonly string[];
  /** Extra request headers (`Origin`, `Authorization`, cookies). */
  headers?: HeadersInit;
  /** Extra CA certificates (PEM) trusted for `wss:`. */
  caCerts?: string[];
  /**
   * The largest response head accepted, in bytes.
   *
   * @default {16384}
   */
  maxHeadSize?: number;
}

const encoder = new TextEncoder();

/**
 * Opens a WebSocket to `url` (`ws:` or `wss:`; `http:` and `https:` are taken as such): a TCP
 * or TLS connection, the opening handshake of RFC 6455 §4.1 with a random key, and a
 * {@linkcode WebSocketSession} with role client (every frame it sends is masked). The
 * handshake must finish within `timeout`.
 *
 * @param url Where to connect; a fragment is refused (RFC 6455 §3).
 * @param options Subprotocols, headers, TLS certificates and the session's options.
 * @returns The session; its `protocol` is the subprotocol the server agreed to.
 * @throws {HttpError} With the server's status when it answers other than 101.
 * @throws {WebSocketError} 1002 when the 101 answer is not a valid handshake (wrong accept
 * value, a subprotocol or extension not offered), 1006 when the connection fails or the
 * handshake times out.
 * @throws {TypeError} Before connecting, for a URL that is not `ws:` or `wss:` or has a
 * fragment, subprotocols that are not distinct tokens, or a `Sec-WebSocket-Extensions` in
 * `headers` (no extension is supported).
 *
 * @example Talking to an echo server
 * ```ts ignore
 * import { connectWebSocket } from "@wirestream/wirestream";
 *
 * const session = await connectWebSocket("ws://127.0.0.1:8000/");
 * await session.send("hello");
 * for await (const message of session.incoming) {
 *   console.log(message);
 *   await session.close();
 * }
 * ```
 */
export async function connectWebSocket(
  url: string | URL,
  options: ConnectWebSocketOptions = {},
): Promise<WebSocketSession> {
  const target = new URL(url);
  const secure = target.protocol === "wss:" || target.protocol === "https:";
  if (!secure && target.protocol !== "ws:" && target.protocol !== "http:") {
    throw new TypeError(`Cannot connect: ${JSON.stringify(target.protocol)} is not ws: or wss:`);
  }
  if (target.hash !== "" || String(url).includes("#")) {
    throw new TypeError("Cannot connect: a WebSocket URL has no fragment");
  }
  // Check the options before anything goes on the wire.
  const { protocols: _p, headers: _h, caCerts: _c, maxHeadSize: _m, ...sessionOptions } = options;
  sessionSettings({ ...sessionOptions, role: "client" });
  const protocols = options.protocols ?? [];
  for (const [i, protocol] of protocols.entries()) {
    if (!TOKEN.test(protocol) || protocols.indexOf(protocol) !== i) {
      throw new TypeError(
        `Cannot connect: subprotocol ${
          JSON.stringify(String(protocol).slice(0, 64))
        } is not a token or is offered twice (RFC 6455 §4.1)`,
      );
    }
  }
  if (new Headers(options.headers).has("sec-websocket-extensions")) {
    throw new TypeError(
      "Cannot connect: Sec-WebSocket-Extensions is not supported; " +
        "a server that agreed to an extension would fail the handshake",
    );
  }
  const timeout = options.timeout ?? 15_000;
  options.signal?.throwIfAborted();
  // The caller's signal or the timeout, through a controller of our own whose timer and
  // listener go once connected: Deno keeps a signal made with AbortSignal.any for as long as
  // its sources live, so a long-lived `signal` (an application's) held one per connection.
  const controller = new AbortController();
  const abort = controller.signal;
  const signal = options.signal;
  const onSignal = () => controller.abort(signal!.reason);
  signal?.addEventListener("abort", onSignal, { once: true });
  const timer = timeout === Infinity ? undefined : setTimeout(() => {
    controller.abort(new DOMException("Signal timed out.", "TimeoutError"));
  }, timeout);
  try {
    return await handshake(target, secure, options, sessionOptions, abort);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onSignal);
  }
}

/** Connects and makes the opening handshake; `abort` ends the wait (see connectWebSocket). */
async function handshake(
  target: URL,
  secure: boolean,
  options: ConnectWebSocketOptions,
  sessionOptions: WebSocketSessionOptions,
  abort: AbortSignal,
): Promise<WebSocketSession> {
  const port = Number(target.port || (secure ? 443 : 80));
  const hostname = target.hostname.replace(/^\[(.*)\]$/, "$1");
  let conn: Deno.Conn;
  let tcp: Deno.TcpConn | undefined;
  try {
    tcp = await raceAbort(Deno.connect({ hostname, port, signal: abort }), abort);
    // Without it, a small write that follows another before its ACK waits for Nagle's
    // algorithm: a pong then an echo, the echo 40 ms later (a delayed ACK). The server side
    // sets it too. A TLS connection is made over this socket (Deno.startTls), so that it
    // has it as well: Deno.TlsConn has no setNoDelay.
    tcp.setNoDelay(true);
    conn = secure
      ? await raceAbort(
        Deno.startTls(tcp, {
          hostname,
          ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        }),
        abort,
      )
      : tcp;
  } catch (cause) {
    if (secure) {
      try {
        tcp?.close(); // the TCP socket, when its TLS did not start
      } catch {
        // Taken by the TLS connection, and closed with it.
      }
    }
    if (abort.aborted) {
      throw new WebSocketError(
        "Cannot connect: the connection did not open in time or was aborted",
        1006,
        {
          cause: abort.reason,
        },
      );
    }
    throw new WebSocketError(`Cannot connect: ${target.host} is unreachable`, 1006, { cause });
  }
  const onAbort = () => conn.close();
  abort.addEventListener("abort", onAbort, { once: true });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const headers = new Headers(options.headers);
    headers.set("host", target.host);
    headers.set("upgrade", "websocket");
    headers.set("connection", "Upgrade");
    headers.set("sec-websocket-key", key);
    headers.set("sec-websocket-version", "13");
    const offered = options.protocols ?? [];
    if (offered.length > 0) headers.set("sec-websocket-protocol", offered.join(", "));
    let head = `GET ${target.pathname}${target.search} HTTP/1.1\r\n`;
    headers.forEach((value, name) => (head += `${name}: ${value}\r\n`));
    const request = encoder.encode(head + "\r\n");
    for (let at = 0; at < request.length;) at += await conn.write(request.subarray(at));
    // Read with conn.read, as the session will: its readable stream is never touched, so no
    // byte can wait in a stream's queue between the two.
    const reader = new BufferedReader(conn, { size: options.maxHeadSize ?? 16_384 });
    const response = await readResponseHead(reader, { maxHeadSize: options.maxHeadSize ?? 16_384 });
    const rest = reader.rest();
    reader.releaseLock();
    if (response.status !== 101) {
      throw new HttpError(
        response.status,
        `Cannot connect: the server answered ${response.status} ${
          JSON.stringify(response.reason.slice(0, 64))
        }`,
      );
    }
    const h = new Headers(response.fields);
    if (!hasToken(h.get("upgrade"), "websocket") || !hasToken(h.get("connection"), "upgrade")) {
      throw new WebSocketError(
        "Cannot connect: the 101 answer lacks Upgrade: websocket or Connection: upgrade",
        1002,
      );
    }
    if (h.get("sec-websocket-accept") !== await acceptKey(key)) {
      throw new WebSocketError("Cannot connect: Sec-WebSocket-Accept does not match the key", 1002);
    }
    const protocol = h.get("sec-websocket-protocol") ?? "";
    if (protocol !== "" && !offered.includes(protocol)) {
      throw new WebSocketError(
        `Cannot connect: the server chose subprotocol ${
          JSON.stringify(protocol.slice(0, 64))
        }, not offered`,
        1002,
      );
    }
    if (h.has("sec-websocket-extensions")) {
      throw new WebSocketError("Cannot connect: the server chose an extension, none offered", 1002);
    }
    abort.removeEventListener("abort", onAbort);
    return new WebSocketSession(conn, {
      ...sessionOptions,
      role: "client",
      protocol,
      buffered: rest,
    });
  } catch (error) {
    abort.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // Closed by the abort.
    }
    if (error instanceof HttpError || error instanceof WebSocketError) throw error;
    if (abort.aborted) {
      throw new WebSocketError(
        "Cannot connect: the handshake did not finish in time or was aborted",
        1006,
        {
          cause: abort.reason,
        },
      );
    }
    throw new WebSocketError("Cannot connect: the handshake failed", 1006, { cause: error });
  }
}

/**
 * Settles with `promise`, or rejects when `signal` aborts first; a connection that opens after
 * the abort is closed.
 */
function raceAbort<C extends Deno.Conn>(
  promise: Promise<C>,
  signal: AbortSignal | undefined,
): Promise<C> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then((conn) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) conn.close();
      else resolve(conn);
    }, (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
  });
}
