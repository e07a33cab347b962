// Copyright 2026 the wirestream authors. MIT license.
/**
 * A WebSocket client over `Deno.connect` / `Deno.connectTls`, returning the same session as
 * the server side (role client).
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { markWritesDone } from "../_slab.ts";
import { latin1Bytes } from "../http/_latin1.ts";
import { HttpError } from "../http/error.ts";
import { hasToken, readResponseHead, type ResponseHead, TOKEN, trimOws } from "../http/head.ts";
import { BufferedReader } from "../http/reader.ts";
import { WebSocketError } from "./error.ts";
import { acceptKey } from "./handshake.ts";
import {
  RawWebSocketSession,
  sessionSettings,
  WebSocketSession,
  type WebSocketSessionOptions,
} from "./session.ts";

/** Options of {@linkcode connectWebSocket}. */
export interface ConnectWebSocketOptions
  extends Omit<WebSocketSessionOptions, "role" | "protocol" | "buffered"> {
  /**
   * The subprotocols to offer, in order of preference: distinct tokens (one may be given as
   * a string).
   *
   * @default {[]}
   */
  protocols?: string | readonly string[];
  /**
   * Extra request headers (`Origin`, `Authorization`, cookies; a `Host` of your own). The
   * handshake's own fields (`Upgrade`, `Connection`, `Sec-WebSocket-Key`,
   * `Sec-WebSocket-Version`) are set by the client; `Sec-WebSocket-Protocol` (use
   * `protocols`), `Sec-WebSocket-Extensions` and the body's framing fields
   * (`Content-Length`, `Transfer-Encoding`) are refused with a `TypeError`.
   */
  headers?: HeadersInit;
  /**
   * Extra CA certificates (PEM) trusted for `wss:`. Each must be a CA that signed the
   * server's certificate: Deno's TLS (rustls) refuses a server that presents the CA itself
   * (`CaUsedAsEndEntity`, a 1015), which is what `openssl req -x509` makes by default (its
   * `basicConstraints` say `CA:TRUE`). For a self-signed server certificate, make it with
   * `-addext basicConstraints=critical,CA:FALSE` (and a `subjectAltName`), or sign it with a
   * CA of your own and pass that CA here.
   */
  caCerts?: string[];
  /**
   * The largest response head accepted, in bytes.
   *
   * @default {16384}
   */
  maxHeadSize?: number;
  /**
   * Expose every frame: the session is a {@linkcode RawWebSocketSession} (Ktor's
   * `webSocketRaw`, on the client side), which answers no ping and reassembles nothing; the
   * message options (`pingInterval`, `maxMessageSize`) do not apply.
   *
   * @default {false}
   */
  raw?: boolean;
}

/** Fields of `headers` that the opening handshake cannot carry. */
const REFUSED_FIELDS: Record<string, string> = {
  "sec-websocket-protocol": "offer subprotocols with the protocols option",
  "sec-websocket-extensions": "no extension is supported, and a server that agreed to one " +
    "would fail the handshake",
  "content-length": "the opening handshake is a GET without content (RFC 9110 §9.3.1)",
  "transfer-encoding": "the opening handshake is a GET without content (RFC 9110 §9.3.1)",
};

/** The most interim (1xx) responses read before the 101; each is bounded by maxHeadSize. */
const MAX_INTERIM = 16;

/**
 * Opens a WebSocket to `url` (`ws:` or `wss:`; `http:` and `https:` are taken as such): a TCP
 * or TLS connection, the opening handshake of RFC 6455 §4.1 with a random key, and a
 * {@linkcode WebSocketSession} with role client (every frame it sends is masked). The
 * handshake must finish within `timeout`. Credentials in the URL (`ws://user:pass@host/`)
 * are sent as `Authorization: Basic`, unless `headers` has an `Authorization`. Interim
 * responses (`100`, `103`) before the 101 are skipped (RFC 9110 §15.2).
 *
 * A `wss:` connection given up during its TLS handshake (a timeout, an abort) is closed, but
 * Deno 2.9 keeps such a socket open until the server closes it: a server that accepts and
 * never answers holds one socket per attempt on the client's side until it closes them.
 *
 * @param url Where to connect; a fragment is refused (RFC 6455 §3).
 * @param options Subprotocols, headers, TLS certificates and the session's options.
 * @returns The session; its `protocol` is the subprotocol the server agreed to.
 * @throws {HttpError} With the server's status and header fields (`Location`,
 * `WWW-Authenticate`, `Sec-WebSocket-Version`…) when it answers with a final status other
 * than 101.
 * @throws {WebSocketError} 1002 when the answer is not a valid handshake (not an HTTP/1.x
 * response head within `maxHeadSize`, told as soon as the bytes that came cannot begin one:
 * another protocol's greeting does not wait for `timeout`; a wrong accept value, an `Upgrade`
 * other than `websocket`, a subprotocol or extension not offered, more than 16 interim
 * responses before it), 1015 when the TLS handshake fails
 * (an untrusted certificate), 1006 when the connection fails or ends before the answer, the
 * handshake times out, or `signal` aborts (before or while connecting; the cause is its
 * reason).
 * @throws {TypeError} Before connecting, for a URL that is not `ws:` or `wss:` or has a
 * fragment, subprotocols that are not distinct tokens, or `headers` that are not valid or
 * hold a field the handshake cannot carry (see `headers`).
 * @throws {RangeError} Before connecting, for an option out of range.
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
export function connectWebSocket(
  url: string | URL,
  options?: ConnectWebSocketOptions & { raw?: false },
): Promise<WebSocketSession>;
/**
 * Opens a WebSocket to `url` with a raw session: every frame the server sends, and frames to
 * send (each masked with a fresh key), as Ktor's `webSocketRaw` gives a server. The same
 * connection and handshake as the overload without `raw`, which describes them.
 *
 * @param url Where to connect.
 * @param options As for a message session, with `raw: true`.
 * @returns The raw session; its `protocol` is the subprotocol the server agreed to.
 * @throws {HttpError} As the overload without `raw`.
 * @throws {WebSocketError} As the overload without `raw`.
 * @throws {TypeError} As the overload without `raw`.
 * @throws {RangeError} As the overload without `raw`.
 *
 * @example A ping of our own, and the server's pong
 * ```ts
 * import { connectWebSocket, Frame, httpServer, upgradeWebSocket } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const server = httpServer({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
 *   const { response, session } = upgradeWebSocket(request);
 *   session.closed.then(() => {}); // the server's session answers pings by itself
 *   return response;
 * });
 * const session = await connectWebSocket(`ws://127.0.0.1:${server.addr.port}/`, { raw: true });
 * const frames = session.incoming.getReader();
 * const writer = session.outgoing.getWriter();
 * await writer.write(Frame.ping(new TextEncoder().encode("are you there?")));
 * const pong = (await frames.read()).value!;
 * assert.equal(pong.opcode, 0xa);
 * assert.equal(new TextDecoder().decode(pong.payload), "are you there?");
 * await writer.write(Frame.close(1000, "bye"));
 * assert.equal((await frames.read()).value!.opcode, 0x8); // the server's answering close
 * assert.equal((await frames.read()).done, true);
 * assert.deepEqual(await session.closed, { code: 1000, reason: "bye", wasClean: true }); // echoed
 * await server.shutdown();
 * ```
 */
export function connectWebSocket(
  url: string | URL,
  options: ConnectWebSocketOptions & { raw: true },
): Promise<RawWebSocketSession>;
export async function connectWebSocket(
  url: string | URL,
  options: ConnectWebSocketOptions = {},
): Promise<WebSocketSession | RawWebSocketSession> {
  const target = new URL(url);
  const secure = target.protocol === "wss:" || target.protocol === "https:";
  if (!secure && target.protocol !== "ws:" && target.protocol !== "http:") {
    throw new TypeError(`Cannot connect: ${JSON.stringify(target.protocol)} is not ws: or wss:`);
  }
  if (target.hash !== "" || String(url).includes("#")) {
    throw new TypeError("Cannot connect: a WebSocket URL has no fragment");
  }
  // Check the options before anything goes on the wire.
  const {
    protocols: _p,
    headers: _h,
    caCerts: _c,
    maxHeadSize: _m,
    raw = false,
    ...sessionOptions
  } = options;
  sessionSettings({ ...sessionOptions, role: "client" });
  const maxHeadSize = checkLimit("maxHeadSize", options.maxHeadSize ?? 16_384, 1);
  const offered = typeof options.protocols === "string"
    ? [options.protocols]
    : options.protocols ?? [];
  for (const [i, protocol] of offered.entries()) {
    if (typeof protocol !== "string" || !TOKEN.test(protocol) || offered.indexOf(protocol) !== i) {
      throw new TypeError(
        `Cannot connect: subprotocol ${
          JSON.stringify(String(protocol).slice(0, 64))
        } is not a token or is offered twice (RFC 6455 §4.1)`,
      );
    }
  }
  const headers = new Headers(options.headers);
  for (const name of Object.keys(REFUSED_FIELDS)) {
    if (headers.has(name)) {
      throw new TypeError(`Cannot connect: headers has ${name}: ${REFUSED_FIELDS[name]}`);
    }
  }
  if (!headers.has("host")) headers.set("host", target.host);
  if ((target.username !== "" || target.password !== "") && !headers.has("authorization")) {
    // As browsers and ws do: the URL's credentials, percent-decoded, as Basic (RFC 7617).
    let userPass: string;
    try {
      userPass = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    } catch (cause) {
      throw new TypeError("Cannot connect: the URL's credentials are not valid percent-encoding", {
        cause,
      });
    }
    const credentials = new TextEncoder().encode(userPass);
    headers.set("authorization", `Basic ${btoa(String.fromCharCode(...credentials))}`);
  }
  if (offered.length > 0) headers.set("sec-websocket-protocol", offered.join(", "));
  headers.set("upgrade", "websocket");
  headers.set("connection", "Upgrade");
  headers.set("sec-websocket-version", "13");
  const request = { target, secure, headers, offered, maxHeadSize, raw };
  const timeout = options.timeout ?? 15_000;
  if (options.signal?.aborted) throw aborted("connection", options.signal.reason);
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
    return await handshake(request, options.caCerts, sessionOptions, abort);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onSignal);
  }
}

/** What connectWebSocket checked and built before connecting. */
interface OpeningRequest {
  target: URL;
  secure: boolean;
  /** The request's fields but the key. */
  headers: Headers;
  offered: readonly string[];
  maxHeadSize: number;
  raw: boolean;
}

/** The 1006 of a connection given up on: the timeout passed, or `signal` aborted. */
function aborted(what: string, reason: unknown): WebSocketError {
  return new WebSocketError(
    `Cannot connect: the ${what} did not open in time or was aborted`,
    1006,
    { cause: reason },
  );
}

/** Connects and makes the opening handshake; `abort` ends the wait (see connectWebSocket). */
async function handshake(
  request: OpeningRequest,
  caCerts: string[] | undefined,
  sessionOptions: WebSocketSessionOptions,
  abort: AbortSignal,
): Promise<WebSocketSession | RawWebSocketSession> {
  const { target, secure, headers, offered, maxHeadSize, raw } = request;
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
      ? await raceAbort(Deno.startTls(tcp, { hostname, ...(caCerts ? { caCerts } : {}) }), abort)
      : tcp;
  } catch (cause) {
    if (secure) {
      try {
        tcp?.close(); // the TCP socket, when its TLS did not start
      } catch {
        // Taken by the TLS connection, and closed with it.
      }
    }
    if (abort.aborted) throw aborted("connection", abort.reason);
    throw new WebSocketError(`Cannot connect: ${target.host} is unreachable`, 1006, { cause });
  }
  const onAbort = () => conn.close();
  abort.addEventListener("abort", onAbort, { once: true });
  try {
    if (secure) {
      // Deno makes the TLS handshake on the first read or write: make it here, so that its
      // failure is told from the server's (RFC 6455 §7.4.1: 1015, e.g. a certificate that
      // cannot be verified).
      try {
        await (conn as Deno.TlsConn).handshake();
      } catch (cause) {
        if (abort.aborted) throw cause;
        throw new WebSocketError(
          `Cannot connect: the TLS handshake with ${target.host} failed`,
          1015,
          { cause },
        );
      }
    }
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const expected = acceptKey(key); // worked out while the server answers
    expected.catch(() => {}); // awaited below, unless the answer fails first
    headers.set("sec-websocket-key", key);
    let head = `GET ${target.pathname}${target.search} HTTP/1.1\r\n`;
    headers.forEach((value, name) => (head += `${name}: ${value}\r\n`));
    // Field values are byte strings (RFC 9110 §5.5): one byte per character, not UTF-8.
    const bytes = latin1Bytes(head + "\r\n");
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    // Read with conn.read, as the session will: its readable stream is never touched, so no
    // byte can wait in a stream's queue between the two.
    const reader = new BufferedReader(conn, { size: maxHeadSize });
    const response = await readAnswer(reader, maxHeadSize);
    const rest = reader.rest();
    reader.releaseLock();
    if (response.status !== 101) {
      throw new HttpError(
        response.status,
        `Cannot connect: the server answered ${response.status} ${
          JSON.stringify(response.reason.slice(0, 64))
        }`,
        { headers: response.fields },
      );
    }
    const h = new Headers(response.fields);
    // RFC 6455 §4.1: Upgrade is "websocket" (not a list that holds it), Connection holds
    // "Upgrade".
    if (
      trimOws(h.get("upgrade") ?? "").toLowerCase() !== "websocket" ||
      !hasToken(h.get("connection"), "upgrade")
    ) {
      throw new WebSocketError(
        "Cannot connect: the 101 answer lacks Upgrade: websocket or Connection: upgrade",
        1002,
      );
    }
    if (h.get("sec-websocket-accept") !== await expected) {
      throw new WebSocketError("Cannot connect: Sec-WebSocket-Accept does not match the key", 1002);
    }
    const protocol = h.get("sec-websocket-protocol");
    if (protocol !== null && !offered.includes(protocol)) {
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
    // Given up on while the answer was checked: onAbort closed the connection.
    if (abort.aborted) throw abort.reason;
    abort.removeEventListener("abort", onAbort);
    const init: WebSocketSessionOptions = {
      ...sessionOptions,
      role: "client",
      protocol: protocol ?? "",
      buffered: rest,
    };
    markWritesDone(conn); // a Deno.Conn's write is done with its bytes (lib/_slab.ts)
    return raw ? new RawWebSocketSession(conn, init) : new WebSocketSession(conn, init);
  } catch (error) {
    abort.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // Closed by the abort.
    }
    if (abort.aborted) throw aborted("handshake", abort.reason);
    if (error instanceof HttpError || error instanceof WebSocketError) throw error;
    throw new WebSocketError("Cannot connect: the handshake failed", 1006, { cause: error });
  }
}

/**
 * Reads the server's answer to the opening handshake: the first response head that is not
 * an interim one (1xx but 101; RFC 9110 §15.2).
 */
async function readAnswer(reader: BufferedReader, maxHeadSize: number): Promise<ResponseHead> {
  for (let interim = 0;; interim++) {
    let head: ResponseHead;
    try {
      // The field count is bounded by maxHeadSize alone (a server's default, 100, is not
      // the client's business: ws takes more).
      head = await readResponseHead(reader, { maxHeadSize, maxHeaders: maxHeadSize });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error; // a failed read: 1006
      // Its status is ours to answer with, had we been the server: not the server's.
      if (reader.done) {
        throw new WebSocketError(
          "Cannot connect: the connection ended before the server's answer",
          1006,
          { cause: error },
        );
      }
      throw new WebSocketError(
        `Cannot connect: the server's answer is not an HTTP/1.1 response head of at most ${maxHeadSize} bytes (${error.message})`,
        1002,
        { cause: error },
      );
    }
    if (!head.version.startsWith("HTTP/1.")) {
      throw new WebSocketError(
        `Cannot connect: the server answered with ${head.version}, not HTTP/1.1`,
        1002,
      );
    }
    if (head.status < 100 || head.status > 199 || head.status === 101) return head;
    if (interim === MAX_INTERIM) {
      throw new WebSocketError(
        `Cannot connect: the server sent more than ${MAX_INTERIM} interim responses`,
        1002,
      );
    }
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
