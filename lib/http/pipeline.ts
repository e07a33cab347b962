// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `startConnectionPipeline`: HTTP/1.1 over any byte duplex, with keep-alive,
 * pipelining, responses in request order, timeouts and WebSocket upgrades.
 *
 * @module
 */

import { checkDuration, checkLimit, shown } from "../_options.ts";
import { markWritesDone, Slab, writesDone } from "../_slab.ts";
import type { Transport, TransportReady } from "../websocket/_session_core.ts";
import { acceptKey } from "../websocket/handshake.ts";
import {
  nativeUpgrades,
  type UpgradeTicket,
  upgradeTickets,
  type WireContext,
  wireContexts,
} from "./_upgrade.ts";
import { latin1Bytes, writeLatin1 } from "./_latin1.ts";
import { kindOf } from "../_codec_stream.ts";
import { ChunkedDecoder, sizeLine } from "./chunked.ts";
import { HttpError } from "./error.ts";
import {
  absoluteTargetParts,
  authorityProblem,
  hasToken,
  type HeadLimits,
  HOP_BY_HOP,
  HOST,
  methodCaseProblem,
  readRequestHead,
  type RequestHead,
  takeRequestHead,
  targetForm,
  trimOws,
  UNSUPPORTED_METHODS,
} from "./head.ts";
import { BufferedReader, type DirectSource } from "./reader.ts";
import { STATUS_TEXT } from "./status.ts";

/** The default `maxBodySize`, 128 MiB: the wire engine's, and the native engine's too. */
export const DEFAULT_MAX_BODY_SIZE = 134_217_728;

/** An address, as `Deno.NetAddr` has it. */
export interface PeerAddress {
  /** `"tcp"` for a TCP connection. */
  transport: string;
  /** The IP address or host name. */
  hostname: string;
  /** The port. */
  port: number;
}

/** What a handler learns about the connection, like `Deno.ServeHandlerInfo`. */
export interface HandlerInfo {
  /** The client's address, when the transport knows it. */
  remoteAddr: PeerAddress | null;
  /**
   * Resolves once the response was written (or could not be: the client left) and the
   * handler returned, as `Deno.serve`'s does. It never rejects.
   */
  completed: Promise<void>;
}

/** A web-standard fetch handler. */
export type Handler = (request: Request, info: HandlerInfo) => Response | Promise<Response>;

/** Options of {@linkcode startConnectionPipeline}. */
export interface ConnectionPipelineOptions extends HeadLimits {
  /** Aborting it shuts the connection down gracefully (see {@linkcode ConnectionPipeline.shutdown}). */
  signal?: AbortSignal;
  /**
   * How long a kept-alive connection may wait for the first byte of its next request, in
   * milliseconds, before it is closed (Node: 5 s; `Deno.serve`: none).
   *
   * @default {5000}
   */
  idleTimeout?: number;
  /**
   * How long a request head may take to arrive once its first byte came, in milliseconds;
   * then the client gets 408 and the connection closes (the slowloris defence; Node: 60 s).
   *
   * @default {10000}
   */
  headersTimeout?: number;
  /**
   * How long a handler that reads the request body may wait for its next bytes, in
   * milliseconds: a client that stops sending mid-body would otherwise hold the handler and
   * the connection forever. The body read then fails with a 408 {@linkcode HttpError} (throw
   * it on, or let it propagate, and the client gets 408), and the connection closes after the
   * response. `Infinity` waits forever. It bounds each gap, not the body: see
   * {@linkcode ConnectionPipelineOptions.minBodyRate} for a body that keeps coming too slowly.
   * For a request with `Expect: 100-continue` the clock starts when our 100 Continue goes out
   * (behind the responses to earlier pipelined requests): the client waits for it to send.
   *
   * @default {30000}
   */
  bodyTimeout?: number;
  /**
   * The slowest a request body may come, in bytes per second, once `bodyRateGrace` has
   * passed (Kestrel's `MinRequestBodyDataRate`: 240 bytes/s after 5 s; Node bounds the whole
   * request with `requestTimeout`, 300 s, instead). `bodyTimeout` restarts with every byte,
   * so without it a client that sends a byte every few seconds would hold its connection, and
   * its place under `maxConnections`, for as long as its body lasts.
   *
   * The rate is the body's bytes received so far (its data: for a chunked body, the decoded
   * bytes, so chunk sizes, extensions and trailers do not count) over the time the engine
   * spent waiting for them while the handler (or the drain of an unread body) was reading it.
   * Time when the handler is not reading — before its first read, or while it is busy between
   * reads and the body waits in the read buffer — does not count against the client, so a slow
   * handler is never mistaken for a slow client; nor does the time before our 100 Continue
   * goes out to a client that waits for it (see `bodyTimeout`). Once that waiting time exceeds
   * `bodyRateGrace` and the rate falls below this, the body read fails with a 408
   * {@linkcode HttpError}, as for `bodyTimeout`, and the connection closes after the response.
   * `0` lets a body come as slowly as `bodyTimeout` allows.
   *
   * @default {240}
   */
  minBodyRate?: number;
  /**
   * How long a request body may wait for its bytes, in milliseconds, before `minBodyRate` is
   * enforced: a slow start (a handshake, a client that opens a file) is not a slow client.
   * Counted like the rate, in time spent waiting for the body. `Infinity` never enforces it.
   *
   * @default {5000}
   */
  bodyRateGrace?: number;
  /**
   * How many requests of one connection may be handled at once when the client pipelines;
   * responses are still written in request order.
   *
   * @default {16}
   */
  maxPipelined?: number;
  /**
   * How long one write may take, in milliseconds, before the connection is closed: a client
   * that stops reading would otherwise hold its responses (and the handlers' work) forever.
   *
   * @default {30000}
   */
  writeTimeout?: number;
  /**
   * The largest request body accepted, in bytes (413 above it; checked from Content-Length
   * before reading, or as a chunked body arrives). `Infinity` lifts it.
   *
   * @default {134217728}
   */
  maxBodySize?: number;
  /**
   * How many bytes of a body the handler did not read are read and dropped to keep the
   * connection; above it the connection closes after the response, which says
   * `Connection: close` (RFC 9112 §9.6). A chunked body, whose size is not known in advance,
   * is kept only when its end (within this, and within `maxBodySize`) had already come into
   * the read buffer (`readBufferSize`) when the response is written: the response does not
   * wait for the rest of it. A body the handler was still reading when its response went out
   * (it holds a reader, or pipes the body into its response) is not held to this: that
   * response keeps the connection, so what the handler leaves of it is drained whole, within
   * `maxBodySize`, `bodyTimeout` and `minBodyRate`: the bounds of a handler that reads it.
   * The drain starts once the response was written, so a handler that reads on after that
   * (answers 202, then stores the upload) competes with it: its read fails with a
   * `TypeError` once the drain took some. Read the body before the response is written, or
   * make the body part of the response (an echo, a transform of it).
   *
   * @default {262144}
   */
  maxDrainSize?: number;
  /**
   * The most the read buffer of a connection grows to, in bytes; a request head must fit in
   * it. The buffer starts at 4 KiB and grows when a head or a body's reads need more, so an idle
   * connection holds 4 KiB, not this.
   *
   * @default {65536}
   */
  readBufferSize?: number;
  /** The URL scheme of requests: `"https"` behind TLS. @default {"http"} */
  scheme?: "http" | "https";
  /** The client's address, passed to handlers. */
  remoteAddr?: PeerAddress | null;
  /** The server's host for HTTP/1.0 requests without `Host`. @default {"localhost"} */
  defaultHost?: string;
  /**
   * Turns a handler's error into a response. By default the error is reported with
   * `console.error` and the client gets an empty 500, as it does when `onError` throws or
   * returns something other than a Response.
   */
  onError?: (error: unknown, request: Request) => Response | Promise<Response>;
  /**
   * Called with the error of a request the pipeline refused before any handler saw it (a
   * malformed head, a limit, a timeout), as it answers with the error's status. If it throws,
   * the error goes to `console.error` and the answer goes out all the same.
   */
  onBadRequest?: (error: HttpError) => void;
  /** Called with each WebSocket session started on this connection. */
  onSession?: (session: { close(code?: number, reason?: string): unknown }) => void;
}

/** A running pipeline: {@linkcode startConnectionPipeline}'s result. */
export interface ConnectionPipeline {
  /**
   * Resolves when the connection is done with HTTP: closed, or handed to a WebSocket
   * session. Never rejects.
   */
  finished: Promise<void>;
  /**
   * Stops reading requests; those already read are answered (the last with
   * `Connection: close`), then the connection closes. An idle connection closes at once.
   */
  shutdown(): void;
  /**
   * Ends the connection at once: the signals of the requests not yet answered abort with
   * `reason`, their responses are not written (a handler that never settles is not waited
   * for), and the connection closes. A server calls it when a graceful shutdown timed out.
   * Once the connection was handed to a WebSocket session it does nothing: close the session.
   *
   * @param reason Why, as the requests' `signal.reason`. @default {DOMException AbortError}
   */
  abort(reason?: unknown): void;
}

const encoder = new TextEncoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
// Bodies up to this size are read before the head is written, so the response carries
// Content-Length and head and body go out in one write.
const SMALL_BODY = 16_384;
// A body read that has not settled after this many microtask turns is streamed (chunked);
// at most READ_AHEAD reads are taken ahead to find a body's end, and none past the second
// once READ_AHEAD_BYTES are held: a body whose chunks are all ready (a generator of large
// chunks) would otherwise be held 64 chunks deep before the head goes out. The second read
// still tells a body of one large chunk (`new Response(bytes)`) that it ended: its length.
// Bodies up to 4 MiB that are all there keep their length (an echo of a 1 MiB upload ran 27 %
// slower, chunked, with a cap of 64 KiB, and 15 % with 1 MiB: its end came one read late).
const SETTLE_TICKS = 8;
const READ_AHEAD = 64;
const READ_AHEAD_BYTES = 4_194_304;
// The states of a read-ahead's read (see AheadRead).
const UNSETTLED = 0, READ = 1, FAILED = 2;
// Gathered responses are written once they reach this many bytes.
const OUT_LIMIT = 65_536;
const DIGITS = /^\d+$/;

let dateText = "";
let dateUntil = 0;

/** The Date field line, made once a second. */
function dateLine(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateText = `date: ${new Date(now).toUTCString()}\r\n`;
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateText;
}

const STATUS_LINES: string[] = [];
// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), obs-text = %x80-FF (RFC 9112 §4).
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]+$/;

/**
 * A status line (`status` is 200–599: see unsendable); with the registered phrase (or the
 * handler's same one), made once per code. A handler's phrase that is not a reason-phrase (CR
 * or LF, another control, a character above U+00FF, not a string), which only a Response
 * subclass's getter can give (the constructor refuses it), is replaced by the registered one
 * (the one Deno.serve always sends): it would add lines to the head, and a client ignores the
 * phrase anyway (RFC 9112 §4: it "SHOULD ignore the reason-phrase content").
 */
function statusLine(status: number, text: string): string {
  if (
    text !== "" && text !== STATUS_TEXT[status] && typeof text === "string" &&
    REASON_PHRASE.test(text)
  ) return `HTTP/1.1 ${status} ${text}\r\n`;
  return STATUS_LINES[status] ??= `HTTP/1.1 ${status} ${STATUS_TEXT[status] || "Unknown"}\r\n`;
}

const CONTENT_LENGTH = "content-length: ";
const CHUNKED_LINE = "transfer-encoding: chunked\r\n";
const CLOSE_LINE = "connection: close\r\n";
const KEEP_ALIVE_LINE = "connection: keep-alive\r\n";

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Whether a pipeline made `request` (and so checked its Host and target). Internal. */
export function madeByPipeline(request: Request): boolean {
  return request instanceof WireRequest;
}

/**
 * The Request handed to handlers. Its `signal` is made on first use: a Request built with an
 * init `signal` follows it through a dependent signal, which doubles the cost of building the
 * Request (about 10 µs against 5 µs here), and most handlers never look at it.
 */
class WireRequest extends Request {
  #controller: AbortController | null = null;
  #aborted = false;
  #reason: unknown = undefined;

  /** Aborts when the client goes away or the connection closes before the response. */
  override get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /**
   * A copy whose `signal` follows this request's. (`Request.prototype.clone` would follow the
   * platform's own signal, which this class replaces and which never aborts.)
   */
  override clone(): Request {
    return new Request(super.clone(), { signal: this.signal });
  }

  /** Aborts `signal` (now, or when it is first read). */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * A timer that is cheap to move later, for timeouts set again on every request: it is armed
 * once, and when it fires before the current deadline it re-arms for what is left. Two
 * timers per request (idle, head) cost about a tenth of a request's time otherwise. Moving it
 * earlier than its timer (a body's rate deadline, shorter than the last one) re-arms it.
 */
class Deadline {
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  #timerAt = Infinity;
  #at = Infinity;
  #disposed = false;
  readonly #fire: () => void;

  constructor(fire: () => void) {
    this.#fire = fire;
  }

  /**
   * Fires `ms` from `now` (never for Infinity), replacing the deadline set before.
   *
   * @param now The time, when the caller has just read the clock.
   */
  set(ms: number, now: number = Date.now()): void {
    if (this.#disposed) return; // the connection ended: its reads end with it, unaided
    if (ms === Infinity) {
      this.#at = Infinity;
      return;
    }
    const at = this.#at = now + ms;
    if (this.#timer !== undefined) {
      if (at >= this.#timerAt) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(this.#check, ms);
  }

  clear(): void {
    this.#at = Infinity;
  }

  /** For good: a read that still sets it (a handler's, of its body) would leave a timer. */
  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.#at === Infinity) return;
    const left = this.#at - Date.now();
    if (left > 0) {
      this.#timerAt = this.#at;
      this.#timer = setTimeout(this.#check, left);
      return;
    }
    this.#at = Infinity;
    this.#fire();
  };
}

/**
 * The authority of an absolute-form target that may be served here (the connection's scheme:
 * a request on a plain connection cannot claim https; a valid host), else null.
 */
function absoluteAuthority(target: string, scheme: string): string | null {
  const parts = absoluteTargetParts(target);
  return parts !== null && parts[0] === scheme && HOST.test(parts[1]) ? parts[1] : null;
}

/** The body of one request, read from the connection's buffer. */
class RequestBody {
  /** Bytes still to read (Content-Length), or -1 for a chunked body. */
  remaining: number;
  readonly chunked: ChunkedDecoder | null;
  done = false;
  /** Settles when the body was read to its end, or abandoned. */
  readonly settled: Deferred = deferred();
  error: unknown = null;

  constructor(length: number, chunked: ChunkedDecoder | null) {
    this.remaining = length;
    this.chunked = chunked;
  }

  /** The bytes of the body handed out (a chunked body's data), for minBodyRate. */
  received = 0;
  /** The milliseconds spent waiting for the body's bytes, for minBodyRate. */
  waited = 0;
  /** The wait for more of the body under way: a second read shares it, and its time. */
  waiting: Promise<boolean> | null = null;
  /** When that wait began, or when it began to count (see `held`). */
  waitFrom = 0;
  /** Fails that wait with 408 (`slow`: for minBodyRate); in Pipeline.#stalls while it counts. */
  stall: (slow: boolean) => void = () => {};
  /**
   * The client waits for our 100 Continue, which has not gone out yet (it waits its turn
   * behind earlier responses): waiting for the body's bytes meanwhile is not the client's time,
   * so it counts toward neither bodyTimeout nor minBodyRate.
   */
  held = false;

  /** Wakes the read-ahead that waits for the handler to make room (see #watchBody). */
  wake: (() => void) | null = null;

  /**
   * A read of the body began (the handler's, or a drain's): its decoder has moved on from its
   * first byte, which is no longer at the read buffer's start (see Pipeline.#drainable).
   */
  started = false;
  /** The handler cancelled the body: nothing reads it but the drain. */
  cancelled = false;
  /** The drain after the response dropped some of the body's bytes (see #bodyStream). */
  dropped = false;

  finish(): void {
    this.done = true;
    this.settled.resolve();
    this.progress();
  }

  /** How many times the handler took bytes of the body. */
  taken = 0;

  /** The handler took bytes of the body, or the body ended. */
  progress(): void {
    this.taken++;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/**
 * The outcome of one read of a response body's read-ahead (see Pipeline.#readAhead), left here
 * by callbacks bound once. The pipeline reuses one for read after read while each read settles
 * within its window. A read that does not keeps its outcome to itself: it goes on with the
 * response it belongs to (streamed, or cancelled), and the next read gets a new outcome, so a
 * late callback can only ever fill in its own read's — never the next response's.
 */
class AheadRead {
  state = UNSETTLED;
  result: ReadableStreamReadResult<Uint8Array> | null = null;
  error: unknown = null;
  readonly onRead = (result: ReadableStreamReadResult<Uint8Array>): void => {
    this.state = READ;
    this.result = result;
  };
  readonly onFailed = (error: unknown): void => {
    this.state = FAILED;
    this.error = error;
  };
}

/** One request on its way through the pipeline. */
class Slot {
  request: WireRequest | null = null;
  /** The method as the client sent it: the response is framed by it (RFC 9112 §6.3). */
  readonly method: string;
  readonly version: string;
  /** The response once it is ready (a handler that answered at once, an error). */
  ready: Response | null = null;
  /** The response of a handler that answered with a promise; never rejects (see #run). */
  response: Promise<Response> | null = null;
  settled = false;
  /** Set once the client went away or the connection closed: the handler's request aborts. */
  aborted = false;
  readonly body: RequestBody | null;
  /** Expect: 100-continue is pending: the body's first read asks for it. */
  expectContinue = false;
  continueAsked: Deferred | null = null;
  /** Whether 100 Continue went out. */
  continueSent = false;
  /** Close the connection after this response. */
  close: boolean;
  /**
   * The response went out without `Connection: close` while the handler was reading the
   * body: what it leaves unread is drained whole (see Pipeline.#drain).
   */
  keptReading = false;
  context: WireContext | null = null;
  /** Made on first use: most handlers never look at `info.completed`. */
  #completed: Deferred | null = null;
  #done = false;

  constructor(method: string, version: string, keepAlive: boolean, body: RequestBody | null) {
    this.method = method;
    this.version = version;
    this.close = !keepAlive;
    this.body = body;
  }

  /**
   * Resolves once the response was written (or could not be); the handler may still run (see
   * WireInfo.completed, which waits for it too).
   */
  get completed(): Promise<void> {
    if (this.#completed === null) {
      this.#completed = deferred();
      if (this.#done) this.#completed.resolve();
    }
    return this.#completed.promise;
  }

  /** The response was written, or will not be. */
  complete(): void {
    this.#done = true;
    this.#completed?.resolve();
    if (this.context !== null) this.context.ended = true; // a later upgrade fails at once
  }

  /** The response, ready or to come. */
  get answer(): Response | Promise<Response> {
    return this.ready ?? this.response!;
  }
}

/** The `info` handed to a handler, like `Deno.ServeHandlerInfo`: `completed` made on use. */
class WireInfo implements HandlerInfo {
  readonly remoteAddr: PeerAddress | null;
  readonly #slot: Slot;
  #completed: Promise<void> | null = null;

  constructor(remoteAddr: PeerAddress | null, slot: Slot) {
    this.remoteAddr = remoteAddr;
    this.#slot = slot;
  }

  /**
   * Resolves once the response was written (or could not be: the client left) and the
   * handler returned, as `Deno.serve`'s does: cleanup chained on it never runs under a
   * handler that still uses what it frees.
   */
  get completed(): Promise<void> {
    const slot = this.#slot;
    return this.#completed ??= slot.completed.then(() => slot.answer).then(() => {}, () => {});
  }
}

/**
 * Ktor's `startConnectionPipeline`: serves HTTP/1.1 on a byte duplex (a `Deno.Conn`, a TLS
 * connection, a pipe) with a web-standard fetch handler, until the client or the pipeline
 * closes it or a WebSocket upgrade takes it over.
 *
 * The pipeline owns the transport from the call on: it locks its streams (or reads and
 * writes it directly), and when it is done with HTTP it ends both sides itself (it closes or
 * aborts the writable, cancels the readable and calls `close()`; it waits for the writable's
 * close at most `writeTimeout`, and a close that never settles cannot be aborted, so only
 * `close()` or the readable's cancel ends such a transport; a transport read and written
 * directly is ended by its `close()` alone: give it one, or the connection stays open),
 * unless an upgrade handed the connection to a WebSocket session, which then owns it (see
 * `onSession`). Do not read, write or close the transport yourself meanwhile; once
 * `finished` resolved it is closed or the session's.
 *
 * - Requests are parsed strictly (RFC 9112; see `parseRequestHead` and `findHeadEnd`) with
 *   limits; a bad head is answered with its status (400, 414, 431, 505…) and the connection
 *   closes. Bodies are framed by Content-Length or chunked coding; both at once, several
 *   differing lengths, or a Transfer-Encoding with an empty element (`chunked,`, which Node,
 *   `Deno.serve` and Go refuse too) are refused (no smuggling).
 * - `request.url` comes from `Host` and the target, or from an absolute-form target alone,
 *   whose authority then also replaces the `Host` the handler sees (RFC 9112 §3.2.2).
 * - Up to `maxPipelined` handlers run at once for a pipelining client; responses are written
 *   strictly in request order, and small ones that are ready together go out in one write.
 * - Bodies stream both ways; unread request bodies are drained (up to `maxDrainSize`; whole
 *   when the handler was reading the body as it answered) or the connection closes, and the
 *   response says which (`Connection: close`). A body read once
 *   the drain dropped some of it fails with a `TypeError` (it is not whole). `Expect:
 *   100-continue` is answered when the handler starts reading. `Expect` is a list, over all
 *   its fields, whose empty elements are ignored (RFC 9110 §5.6.1); any expectation other
 *   than `100-continue` gets 417 (ignored in HTTP/1.0).
 * - Methods are case-sensitive (RFC 9110 §9.1): `CONNECT`, `TRACE` and `TRACK` (in any case)
 *   get 501, and so does a method that is `DELETE`, `GET`, `HEAD`, `OPTIONS`, `POST` or `PUT`
 *   in another case (`head`, `Post`), which a `Request` would report upper-cased, so `head`
 *   would be framed as `HEAD`. Other methods reach the handler as sent (`PURGE`, `propfind`).
 * - The engine writes the framing and the connection's fields itself: the handler's
 *   `Connection`, `Keep-Alive`, `Transfer-Encoding`, `TE`, `Trailer` and `Proxy-Connection`,
 *   and the fields its `Connection` names, are not sent (RFC 9110 §7.6.1); its
 *   `Connection: close` closes the connection after the response. Its `Upgrade` goes out
 *   with the `upgrade` connection option (RFC 9110 §7.8; a 426 must carry one). Custom reason
 *   phrases go out as given; a `Date` is added unless the handler set one.
 * - A `Content-Length` the handler set frames the body; when the body is all there at once
 *   and has another length, the response is a handler error (an empty 500, and the
 *   connection closes: `Deno.serve` sends the body's own length, Node's http server the wrong
 *   one), and a body that streams past it or ends short of it is cut.
 * - A `HEAD` is answered with the head a `GET` would get: its `Content-Length` is the one the
 *   handler set (unchecked: the body is not read), else the body's when the body is all there
 *   at once. A 204 or 304, to `GET` or `HEAD`, carries no `Content-Length`, and one the
 *   handler set is dropped (RFC 9110 §8.6); a 205 has `Content-Length: 0` and no body.
 * - A response that cannot be written as it is — `Response.error()`, a status outside 200–599
 *   (which a `Response` subclass can report), a body already read or locked — is a handler
 *   error: `onError`'s answer, or an empty 500. So is a body that fails, or gives a chunk that
 *   is not a `Uint8Array`, before any byte of its response was written; after, the connection
 *   is cut, so that the client cannot take a partial body for a whole one.
 * - Idle connections close after `idleTimeout`; a head that takes longer than
 *   `headersTimeout` gets 408; a body that stops coming for `bodyTimeout`, or that comes
 *   slower than `minBodyRate` once `bodyRateGrace` has passed, fails its read with 408.
 * - A client that closes its side of the connection (a FIN, as a half-close sends: RFC 9112
 *   §9.6) or resets it while responses are still owed has gone away. Their signals abort, as
 *   in `Deno.serve`, Node's http server and Go's net/http, and what is not ready is not
 *   written, as in `Deno.serve` (hyper) and Node's http server by default: no more requests
 *   are read, and no handler is waited for. The responses already answered go out, in order,
 *   while their bodies are all there at once; a body that streams is cut — cancelled, and the
 *   connection ends without its last chunk, or short of its Content-Length (an HTTP/1.0 body
 *   delimited by the close cannot tell: on a stream transport the writable is aborted, with
 *   the signals' reason) — whether it was streaming when the client left or was to stream
 *   after; and the responses after it are dropped, their bodies cancelled. A client that
 *   wants its answers reads them before it closes its side.
 * - `request.signal` aborts when the client goes away, with a `DOMException` named
 *   `AbortError` ("The client went away") however it left: when a read or a write failed (a
 *   reset, a TLS connection closed without close_notify) rather than the input ended, that
 *   error is its `cause`. When the connection ends for another reason (a response body that
 *   failed once its head was written, a client that stopped reading for `writeTimeout`) the
 *   signals of the requests still open abort with an `AbortError` too, the error as its
 *   `cause`. It does not abort
 *   once a response was written: `Deno.serve` (2.9) by default does, for every request (its
 *   "legacy" behaviour, which it announces with a notice when `request.signal` is read, and
 *   which `--unstable-no-legacy-abort` turns off); to learn that a response went out, on
 *   either engine, use `info.completed`. The connection is read on while handlers run, also while
 *   `maxPipelined` requests are in flight, while a request that may become a WebSocket waits
 *   for its answer (or its 101), and while the handler holds the request body unread. What is
 *   read meanwhile waits in the read buffer for the requests after (or the WebSocket
 *   session): once the buffer is full, reading stops until they take some, and the end of
 *   the connection is seen then. (A byte stream read with a BYOB reader is read on only while
 *   the buffer holds no unread bytes.) `request.clone()` follows it too. The signal is made
 *   on first use, so `fetch(request)` does not follow it: forward a request with
 *   `fetch(request, { signal: request.signal })`.
 *
 * @param transport The connection.
 * @param handler The fetch handler.
 * @param options Timeouts, limits and the connection's details.
 * @returns The pipeline: `finished` and `shutdown()`.
 * @throws {RangeError} For a timeout or a limit out of its range (named in the message).
 *
 * @example Serving a request over an in-memory duplex
 * ```ts
 * import { startConnectionPipeline } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const up = new TransformStream<Uint8Array, Uint8Array>();
 * const down = new TransformStream<Uint8Array, Uint8Array>();
 * const pipeline = startConnectionPipeline(
 *   { readable: up.readable, writable: down.writable },
 *   (request) => new Response(`hello ${new URL(request.url).pathname}`),
 * );
 * const writer = up.writable.getWriter();
 * await writer.write(new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
 * const text = await new Response(down.readable).text();
 * assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
 * assert.match(text, /\r\n\r\nhello \/x$/);
 * await pipeline.finished; // "Connection: close": the pipeline ended both sides
 * ```
 */
export function startConnectionPipeline(
  transport: Transport,
  handler: Handler,
  options: ConnectionPipelineOptions = {},
): ConnectionPipeline {
  return startCheckedPipeline(transport, handler, options, pipelineLimits(options));
}

/**
 * {@linkcode startConnectionPipeline} with limits that {@linkcode pipelineLimits} made from
 * the same options: a server checks its options once, not per connection. Internal.
 */
export function startCheckedPipeline(
  transport: Transport,
  handler: Handler,
  options: ConnectionPipelineOptions,
  limits: PipelineLimits,
): ConnectionPipeline {
  const pipeline = new Pipeline(transport, handler, options, limits);
  return {
    finished: pipeline.finished,
    shutdown: () => pipeline.shutdown(),
    abort: (reason) => pipeline.abort(reason),
  };
}

/** A pipeline's timeouts and limits, defaults applied and checked. Internal. */
export interface PipelineLimits {
  /** See {@linkcode ConnectionPipelineOptions.idleTimeout}. */
  idleTimeout: number;
  /** See {@linkcode ConnectionPipelineOptions.headersTimeout}. */
  headersTimeout: number;
  /** See {@linkcode ConnectionPipelineOptions.bodyTimeout}. */
  bodyTimeout: number;
  /** See {@linkcode ConnectionPipelineOptions.minBodyRate}. */
  minBodyRate: number;
  /** See {@linkcode ConnectionPipelineOptions.bodyRateGrace}. */
  bodyRateGrace: number;
  /** See {@linkcode ConnectionPipelineOptions.writeTimeout}. */
  writeTimeout: number;
  /** See {@linkcode ConnectionPipelineOptions.maxPipelined}. */
  maxPipelined: number;
  /** See {@linkcode ConnectionPipelineOptions.maxBodySize}. */
  maxBodySize: number;
  /** See {@linkcode ConnectionPipelineOptions.maxDrainSize}. */
  maxDrainSize: number;
  /** See {@linkcode ConnectionPipelineOptions.readBufferSize}. */
  readBufferSize: number;
}

/**
 * Applies the defaults of a pipeline's timeouts and limits, head limits included, and checks
 * them. Internal.
 *
 * @throws {RangeError} For an option that is not a duration or a limit (a NaN would switch a
 * check off).
 */
export function pipelineLimits(options: ConnectionPipelineOptions): PipelineLimits {
  checkLimit("maxRequestLineSize", options.maxRequestLineSize ?? 8192, 1);
  checkLimit("maxHeadSize", options.maxHeadSize ?? 16_384, 1);
  checkLimit("maxHeaders", options.maxHeaders ?? 100);
  const maxPipelined = options.maxPipelined ?? 16;
  if (!Number.isInteger(maxPipelined) || maxPipelined < 1) {
    throw new RangeError(`Invalid maxPipelined: ${shown(maxPipelined)} is not a positive integer`);
  }
  const minBodyRate = options.minBodyRate ?? 240;
  if (typeof minBodyRate !== "number" || !(minBodyRate >= 0) || minBodyRate === Infinity) {
    throw new RangeError(
      `Invalid minBodyRate: ${shown(minBodyRate)} bytes/s is not a finite number from 0`,
    );
  }
  const readBufferSize = options.readBufferSize ?? 65_536;
  if (!Number.isInteger(readBufferSize) || readBufferSize < 1) {
    throw new RangeError(
      `Invalid readBufferSize: ${shown(readBufferSize)} is not a positive integer`,
    );
  }
  return {
    idleTimeout: checkDuration("idleTimeout", options.idleTimeout ?? 5000),
    headersTimeout: checkDuration("headersTimeout", options.headersTimeout ?? 10_000),
    bodyTimeout: checkDuration("bodyTimeout", options.bodyTimeout ?? 30_000),
    minBodyRate,
    bodyRateGrace: checkDuration("bodyRateGrace", options.bodyRateGrace ?? 5000),
    writeTimeout: checkDuration("writeTimeout", options.writeTimeout ?? 30_000),
    maxPipelined,
    maxBodySize: checkLimit("maxBodySize", options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE),
    maxDrainSize: checkLimit("maxDrainSize", options.maxDrainSize ?? 262_144),
    readBufferSize,
  };
}

class Pipeline {
  readonly finished: Promise<void>;
  readonly #transport: Transport;
  readonly #handler: Handler;
  readonly #options: ConnectionPipelineOptions;
  readonly #reader: BufferedReader;
  /** The stream writer, unless the transport writes directly (a Deno.Conn). */
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | null;
  readonly #idleTimeout: number;
  readonly #headersTimeout: number;
  readonly #maxPipelined: number;
  readonly #maxBodySize: number;
  readonly #maxDrainSize: number;
  readonly #scheme: string;
  /** Slots read and not yet written, in order. */
  readonly #queue: Slot[] = [];
  #wakeWriter: (() => void) | null = null;
  #wakeReader: (() => void) | null = null;
  // Executors bound once: a sleep costs its promise, not a closure as well.
  readonly #writerSleeps = (resolve: () => void): void => void (this.#wakeWriter = resolve);
  readonly #readerSleeps = (resolve: () => void): void => void (this.#wakeReader = resolve);
  /** No more requests will be read. */
  #readDone = false;
  #stopping = false;
  #closed = false;
  /** Set when a timer or shutdown cut a read short. */
  #cut: "idle" | "headers" | "shutdown" | null = null;
  #waitingIdle = false;
  readonly #idle = new Deadline(() => this.#cutRead("idle"));
  readonly #headers = new Deadline(() => this.#cutRead("headers"));
  readonly #writeDeadline = new Deadline(() => this.#writeTimedOut());
  readonly #writeTimeout: number;
  readonly #bodyDeadline = new Deadline(() => this.#bodyStalled(false));
  /**
   * When the body waited for falls below minBodyRate; apart from #bodyDeadline, which every
   * wait moves bodyTimeout later, so that each stays a timer that is rarely re-armed.
   */
  readonly #rateDeadline = new Deadline(() => this.#bodyStalled(true));
  readonly #bodyTimeout: number;
  readonly #minBodyRate: number;
  readonly #bodyRateGrace: number;
  /** Fail the body reads waiting for bytes when the body deadline passes. */
  readonly #stalls = new Set<(slow: boolean) => void>();
  /** Requests answered into #out and not yet written: they count toward maxPipelined. */
  #unflushed = 0;
  /** The reader of the response body being streamed, cancelled if the client leaves. */
  #bodyReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** Output gathered for one write. */
  #out: Uint8Array[] = [];
  #outSize = 0;
  #upgraded = false;
  /** Small output buffers; see lib/_slab.ts. */
  readonly #slab = new Slab();
  #reading: Promise<void>;

  constructor(
    transport: Transport,
    handler: Handler,
    options: ConnectionPipelineOptions,
    limits: PipelineLimits,
  ) {
    this.#transport = transport;
    this.#handler = handler;
    this.#options = options;
    this.#idleTimeout = limits.idleTimeout;
    this.#headersTimeout = limits.headersTimeout;
    this.#maxPipelined = limits.maxPipelined;
    this.#maxBodySize = limits.maxBodySize;
    this.#maxDrainSize = limits.maxDrainSize;
    this.#scheme = options.scheme ?? "http";
    this.#writeTimeout = limits.writeTimeout;
    this.#bodyTimeout = limits.bodyTimeout;
    this.#minBodyRate = limits.minBodyRate;
    this.#bodyRateGrace = limits.bodyRateGrace;
    // A transport that reads and writes directly (a Deno.Conn) is used so: no stream in
    // between, which doubles the requests per second a keep-alive connection serves.
    const direct = typeof transport.read === "function" && typeof transport.write === "function";
    this.#reader = new BufferedReader(direct ? transport as DirectSource : transport.readable, {
      size: limits.readBufferSize,
    });
    this.#writer = direct ? null : transport.writable.getWriter();
    // A writable may transfer the chunks it is given (a byte stream's enqueue): chunks that
    // share a slab's buffer with chunks queued behind them would detach those. Only direct
    // writes, which copy, get views of the slab.
    this.#slab.pooled = direct;
    // On a connection an engine accepted (whose write is done with its bytes once it
    // resolved), a large head with its body, or responses gathered into one write, borrow a
    // pooled block, given back in #sent once written or in #flush once copied (lib/_slab.ts).
    this.#slab.lending = direct && writesDone(transport);
    this.#writer?.closed.catch(() => {});
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#reading = this.#readLoop();
    this.finished = Promise.all([this.#reading, this.#writeLoop()]).then(() => this.#end());
    if (options.signal?.aborted) this.shutdown();
  }

  #onAbort = (): void => this.shutdown();

  /** Set by abort(): the write loop ends, with this as its error. */
  #abortReason: unknown = null;
  /**
   * Set when the client went away with responses owed (see #clientLeft): the write loop
   * writes what is ready and ends, with this as its error.
   */
  #gone: unknown = null;
  /** The write loop ended: the read loop's watch for the client leaving ends too. */
  #writeEnded = false;

  abort(reason?: unknown): void {
    if (this.#cutClose !== null) {
      // The end waits for the writable's close (see #end): stop waiting, and abort it.
      this.#cutClose(reason ?? new DOMException("The connection was aborted", "AbortError"));
      return;
    }
    if (this.#upgraded || this.#closed || this.#abortReason !== null) return;
    reason ??= new DOMException("The connection was aborted", "AbortError");
    this.#abortReason = reason;
    this.#stopping = true;
    this.#broken = true; // no graceful close: nothing more is written
    this.#brokenBy = reason;
    this.#failWrite(reason);
    this.#abortAll(reason, true);
    try {
      this.#transport.close?.();
    } catch {
      // Closed already.
    }
    this.#writer?.abort(reason).catch(() => {});
    this.#cutRead("shutdown");
    this.#wakeWriter?.();
    this.#wakeReader?.();
    this.#stopWatch?.();
  }

  shutdown(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#waitingIdle) this.#cutRead("shutdown");
    this.#wakeReader?.();
  }

  /** A write made no progress for writeTimeout: the client stopped reading. Close at once. */
  #writeTimedOut(): void {
    const reason = new DOMException("The client stopped reading", "TimeoutError");
    this.#failWrite(reason);
    this.#abortAll(abortError("The client stopped reading", reason)); // an AbortError, as all
    try {
      this.#transport.close?.();
    } catch {
      // Closed already.
    }
    this.#writer?.abort(reason).catch(() => {});
  }

  /**
   * Ends the current wait for input (idle, a head, a drain). The read itself goes on — the
   * only way to stop a read is to close the connection, which would lose the responses still
   * to be written — and the connection closes once they are.
   */
  #cutRead(why: "idle" | "headers" | "shutdown"): void {
    this.#cut ??= why;
    this.#endWait(CUT);
  }

  /**
   * Waits for `promise` unless a cut comes first: then CUT, and `promise` is left to run.
   * One wait at a time (the read loop's); a settled wait leaves nothing behind, where a race
   * against one long-lived "cut" promise would pile up a reaction per request. The wait's
   * functions live in fields and its callbacks are bound once: a keep-alive connection waits
   * once per request. (A callback of a wait that a cut ended finds no wait to settle: none
   * starts after a cut.)
   */
  #unlessCut<T>(promise: Promise<T>): Promise<T | typeof CUT> {
    if (this.#cut !== null) {
      promise.catch(() => {});
      return Promise.resolve(CUT);
    }
    this.#waitFor = promise;
    return new Promise(this.#startWait) as Promise<T | typeof CUT>;
  }

  #waitFor: Promise<unknown> | null = null;
  #waitDone: ((value: unknown) => void) | null = null;
  #waitFail: ((error: unknown) => void) | null = null;

  readonly #startWait = (
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ): void => {
    this.#waitDone = resolve;
    this.#waitFail = reject;
    const promise = this.#waitFor!;
    this.#waitFor = null;
    promise.then(this.#endWait, this.#failWait);
  };

  /** Ends the wait under way, if one is, with `value` (CUT, for #cutRead). */
  readonly #endWait = (value: unknown): void => {
    const done = this.#waitDone;
    this.#waitDone = this.#waitFail = null;
    done?.(value);
  };

  readonly #failWait = (error: unknown): void => {
    const fail = this.#waitFail;
    this.#waitDone = this.#waitFail = null;
    fail?.(error);
  };

  #armIdle(): void {
    this.#idle.set(this.#idleTimeout);
  }

  #disarmIdle(): void {
    this.#idle.clear();
  }

  async #end(): Promise<void> {
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    this.#idle.dispose();
    this.#headers.dispose();
    this.#writeDeadline.dispose();
    this.#bodyDeadline.dispose();
    this.#rateDeadline.dispose();
    this.#stopWatch?.();
    if (this.#upgraded) return;
    this.#closed = true;
    this.#abortAll(new DOMException("The connection closed", "AbortError"));
    const transport = this.#transport;
    if (transport.closeWrite !== undefined && !this.#reader.done && !this.#broken) {
      // Lingering close (RFC 9112 §9.6): closing with unread input makes the kernel reset the
      // connection, which can destroy the last response before the client reads it. Send FIN
      // first, then read and drop what still comes, for a bounded time.
      // Both within LINGER_TIME: on a TLS connection whose handshake never finished,
      // closeWrite() waits for that handshake, which a silent client never completes.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), LINGER_TIME);
        this.#cutClose = () => resolve(false); // abort() ends the linger at once
      });
      try {
        const closing = Promise.resolve(transport.closeWrite()).then(() => true);
        closing.catch(() => {});
        if (await Promise.race([closing, late])) await this.#linger(late);
      } catch {
        // The connection failed meanwhile; it is closed below.
      } finally {
        clearTimeout(timer);
        this.#cutClose = null;
      }
    } else if (this.#broken) {
      // A write failed or hangs, or the output was cut (the client went away with a body
      // streaming): closing would wait behind it, or pass the cut for an end. Abort with why,
      // for whoever reads the other end of a stream transport, and do not wait.
      this.#writer?.abort(this.#brokenBy).catch(() => {});
    } else if (this.#writer !== null) {
      await this.#closeWriter(this.#writer);
    }
    this.#reader.cancel();
    try {
      transport.close?.();
    } catch {
      // Closed already.
    }
  }

  /**
   * Set while #end waits for the writable's close, or lingers: abort() ends the wait (with its
   * reason, which the writable is aborted with).
   */
  #cutClose: ((reason: unknown) => void) | null = null;

  /**
   * Closes the writable, flushing what it holds, for at most `writeTimeout` (or until
   * abort()); then aborts it, which reaches a sink still writing but not one whose own close
   * is under way (the streams spec waits for that). A writable's close may never settle (a
   * Node socket's, through `Duplex.toWeb`, waits for the peer to end its side too), and
   * `finished` waits for this.
   */
  async #closeWriter(writer: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    const closing = writer.close().then(() => null, () => null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cut = new Promise<unknown>((resolve) => {
      this.#cutClose = resolve;
      if (this.#writeTimeout !== Infinity) {
        timer = setTimeout(
          () => resolve(new DOMException("The connection did not close in time", "TimeoutError")),
          this.#writeTimeout,
        );
      }
    });
    const reason = await Promise.race([closing, cut]);
    clearTimeout(timer);
    this.#cutClose = null;
    if (reason !== null) writer.abort(reason).catch(() => {});
  }

  /** The lingering close began: what is read from now on is dropped (see #bodyStream). */
  #lingering = false;

  /** Reads and drops input until it ends, or until `late` resolves (see #end). */
  async #linger(late: Promise<false>): Promise<void> {
    this.#lingering = true;
    let retried = false;
    while (true) {
      this.#reader.consume(this.#reader.length); // a full buffer would end the loop
      const filling = this.#reader.fill();
      filling.catch(() => {});
      try {
        if (!(await Promise.race([filling, late]))) return;
      } catch (error) {
        // Closing our side interrupts a read under way (a request body's read-ahead): read on.
        if (error instanceof Deno.errors.Interrupted && !retried) {
          retried = true;
          continue;
        }
        throw error;
      }
    }
  }

  // ---- Reading ------------------------------------------------------------------------

  async #readLoop(): Promise<void> {
    let watch: Slot | null = null; // the last request: keep watching for the client leaving
    let upgrading = false; // the last request's answer is an upgrade: the session reads on
    try {
      while (!this.#stopping) {
        // In flight: requests read and not yet written out (queued, or gathered unflushed).
        while (this.#queue.length + this.#unflushed >= this.#maxPipelined && !this.#stopping) {
          this.#pause(); // their handlers run: the client may leave meanwhile
          await new Promise<void>(this.#readerSleeps);
          this.#wakeReader = null;
        }
        this.#paused = false;
        if (this.#stopping) break;
        let slot = this.#takeRequest();
        if (slot === undefined && this.#reader.length === 0) {
          // Idle until the next request's first bytes (here, not in #nextRequest: a kept-alive
          // connection waits so once per request, and an async call costs a frame).
          this.#waitingIdle = true;
          // Idle only once every response is written: a slow handler is not an idle client.
          if (this.#queue.length === 0) this.#armIdle();
          let more: boolean | typeof CUT = false;
          try {
            more = await this.#unlessCut(this.#reader.fill());
          } catch (error) {
            this.#clientLeft(error); // the connection failed
          } finally {
            this.#disarmIdle();
            this.#waitingIdle = false;
          }
          slot = more === CUT || !more ? null : this.#takeRequest();
        }
        if (slot === undefined) slot = await this.#nextRequest();
        if (slot === null) {
          // The input ended: a client that leaves with requests unanswered went away.
          if (this.#cut === null) this.#clientLeft();
          break;
        }
        if (!this.#enqueue(slot)) break;
        if (slot.close) {
          watch = slot;
          break;
        }
        if (slot.body !== null && !slot.body.done) {
          // The body's bytes come before the next head: wait until it was read, or until
          // the response was written and the rest can be drained.
          if (slot.context === null && this.#reader.readsBeside) this.#watchBody(slot.body);
          await Promise.race([slot.body.settled.promise, slot.completed]);
          if (!slot.body.done && !(await this.#drain(slot))) slot.close = true;
          // The body failed or could not be drained, or its response said close (see
          // #writeResponse) even if it was read to its end since: nothing more is read.
          if (slot.close) break;
        }
        if (slot.context !== null) {
          // Nothing may be parsed past a request that may turn into a WebSocket: what comes
          // is read (see #pause) and handed to the session with the rest of the buffer. (Its
          // slot completes without an answer when the pipeline is aborted.)
          this.#pause(true);
          const response = await Promise.race([slot.answer, slot.completed]);
          this.#paused = false;
          if (response === undefined || upgradeTickets.has(response)) {
            upgrading = response !== undefined;
            break;
          }
        }
      }
    } catch (error) {
      if (this.#cut === null && !this.#closed) this.#abortAll(asAbort(error));
    } finally {
      this.#paused = false;
      this.#readDone = true;
      this.#wakeWriter?.();
    }
    if (this.#closed) return;
    if (upgrading) {
      // The answer is an upgrade, whose 101 may wait behind earlier responses: the client may
      // still leave before it. The watch reads on until the 101 is written (what it read then
      // goes to the session: see #writeUpgrade) or the write loop ends.
      return this.#pause(true);
    }
    const body = watch === null ? null : watch.body;
    if (body !== null && !body.done) {
      // The last request was read (Connection: close, HTTP/1.0) and its handler reads its body
      // from the buffer. One read beside its reads sees the end of the input if it comes
      // first; the reads after it are the handler's (see #watchBody). A BYOB read takes the
      // buffer away until it completes: the handler's reads would meet a detached buffer.
      if (this.#reader.readsBeside) {
        try {
          const more = await this.#fillUntilAnswered();
          if (more === CUT) return;
          if (more === false && this.#reader.done) return this.#clientLeft();
        } catch (error) {
          return this.#clientLeft(error);
        }
      }
      await Promise.race([body.settled.promise, watch!.completed]);
    }
    await this.#watchEnd();
  }

  /**
   * Reads more, for a watch after the read loop; CUT once the write loop ended or the
   * connection was upgraded, now or while it waits. Not #unlessCut: the shutdown that cut the
   * idle wait does not end this one; the end of the write loop does (see #writeLoop's
   * #cutRead), and so does an upgrade (see #writeUpgrade).
   */
  #fillUntilAnswered(): Promise<unknown> {
    if (this.#writeEnded || this.#upgraded) return Promise.resolve(CUT);
    this.#waitFor = this.#reader.fill();
    return new Promise(this.#startWait);
  }

  /**
   * The read loop waits with requests in flight, or ended at one whose answer is an upgrade
   * still to be written: the watch reads on (see #watchInput).
   */
  #paused = false;
  /** A read of #watchInput is under way. */
  #watching = false;

  /**
   * Pauses the read loop (see #paused) and starts watching its input; not for a request that
   * may `upgrade` on a BYOB source: a BYOB read takes the buffer away until it completes, and
   * the session it would be handed to cannot take it over (its client may wait for the
   * server to speak first, so the read may never complete).
   */
  #pause(upgrade = false): void {
    this.#paused = true;
    if (upgrade && !this.#reader.readsBeside) return;
    this.#watchInput();
  }

  /**
   * Reads on while the read loop waits with requests in flight (for a place under
   * maxPipelined, for the answer to a request that may turn into a WebSocket, or for the 101
   * of one that does, behind the responses before it), so that the end of the input or its
   * failure aborts their signals: a handler that waits on `request.signal` would otherwise
   * hold the connection, and its place under maxConnections, forever. The bytes land in the
   * read buffer after the unread ones, where the read loop's own reads would put them: they
   * belong to the requests after (or to the WebSocket session, which is handed the buffer),
   * and nothing parses them until the loop goes on. It reads only into the buffer's free
   * space and stops once the buffer is full, so a client that sends more than it is answered
   * is held back as before. A BYOB read takes the buffer away until it completes: with one,
   * the input is watched only while the buffer holds no unread bytes (the requests in them
   * would wait for that read). One read at a time, never awaited: the read loop's next read
   * is the same one (see BufferedReader.fill).
   */
  #watchInput(): void {
    const reader = this.#reader;
    if (this.#watching || !this.#paused || this.#writeEnded) return;
    if (reader.done) return this.#clientLeft(); // requests read before the end of the input
    if (!reader.readsBeside && reader.length > 0) return;
    this.#watching = true;
    reader.fill().then(this.#watched, this.#watchFailed);
  }

  readonly #watched = (more: boolean): void => {
    this.#watching = false;
    if (this.#upgraded || this.#closed) return;
    if (more) this.#watchInput(); // read on while the loop still waits
    else if (this.#reader.done) this.#clientLeft();
    // Else the buffer is full: the loop's own reads go on once it takes some of it.
  };

  readonly #watchFailed = (error: unknown): void => {
    this.#watching = false;
    if (!this.#upgraded && !this.#closed) this.#clientLeft(error); // the connection failed
  };

  /**
   * The read loop stopped with requests still to answer (a shutdown, a last request, a
   * refused one): reads on until the write loop ends, so that a client that leaves meanwhile,
   * or a connection that fails (a timed-out shutdown closes it), aborts their signals: a
   * handler that waits on `request.signal` must not wait forever. No more requests are read,
   * so what comes is dropped — unless a request may still hand the bytes to a WebSocket
   * session, or a handler still reads its body from the buffer: then it is kept, and the watch
   * ends once the buffer is full.
   */
  async #watchEnd(): Promise<void> {
    const reader = this.#reader;
    while (!this.#writeEnded && !this.#upgraded && this.#queue.length > 0) {
      const keep = this.#queue.some((slot) =>
        slot.context !== null || (slot.body !== null && !slot.body.done)
      );
      if (!keep && reader.length > 0 && reader.readsBeside) reader.consume(reader.length);
      let more: unknown;
      try {
        more = await this.#fillUntilAnswered();
      } catch (error) {
        if (!this.#writeEnded) this.#clientLeft(error); // the connection failed or was closed
        return;
      }
      if (more === CUT) return;
      if (more === false) {
        if (reader.done && !this.#writeEnded) this.#clientLeft();
        return;
      }
    }
  }

  /**
   * Reads ahead into the buffer's free space while a handler holds its request body, until
   * the body settles: the bytes wait there for the handler, and the end of the input (the
   * client went away) is seen even while the handler is busy elsewhere, so `request.signal`
   * aborts. Bytes already waiting are left to a handler that is reading them (its own reads
   * then fill the whole buffer, not what is left of it); it reads ahead only after a pause
   * in which the handler took nothing. It never waits for the read it started, so the read
   * loop does not wait for it either.
   */
  async #watchBody(body: RequestBody): Promise<void> {
    const reader = this.#reader;
    let open = true;
    body.settled.promise.then(() => {
      open = false;
      body.progress(); // a wait under way ends
    });
    let idle = false; // the handler took nothing for WATCH_PAUSE: read ahead without pausing
    try {
      while (open && !body.done && !this.#readDone) {
        if (reader.length > 0 && !idle) {
          if (await this.#progress(body, WATCH_PAUSE)) continue;
          idle = true;
        }
        const taken = body.taken;
        if (await reader.fill()) {
          if (body.taken !== taken) idle = false; // reading again: leave the bytes to it
          continue;
        }
        if (reader.done) return this.#clientLeft();
        await this.#progress(body, Infinity); // full: the handler must take some first
      }
    } catch (error) {
      if (!this.#readDone) this.#clientLeft(error); // the connection failed
    }
  }

  /**
   * Whether the handler took bytes of `body` (or it settled) within `ms`. The wait ends early
   * (true) when the body settles or the pipeline ends.
   */
  #progress(body: RequestBody, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(() => {
        body.wake = null;
        this.#stopWatch = null;
        resolve(false);
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        body.wake = null;
        this.#stopWatch = null;
        resolve(true);
      };
      body.wake = wake;
      this.#stopWatch = wake;
    });
  }

  /** Ends the read-ahead's wait, when one is under way (see #progress). */
  #stopWatch: (() => void) | null = null;

  /**
   * The input ended (the client closed its side, or reset the connection) or failed while
   * responses were still owed: the client went away, as Deno.serve (hyper), Node's http server
   * and Go's net/http take it (RFC 9112 §9.6 lets a client half-close, but a server cannot tell
   * that from a client that left). The signals of the requests abort, no more requests are
   * read, and the write loop waits for nothing: it writes the responses that are ready, in
   * order, as long as their bodies are there at once, and stops at the first that is not (a
   * handler that has not answered, a body that streams: cut, see #stream). With nothing owed,
   * the input just ended, and the connection closes as usual.
   *
   * A read that failed is the client leaving as much as an end is: the reason is the same
   * AbortError, with the read error as its `cause`. The two are often one event seen through
   * different transports: a client that closes its socket (curl killed, a tab closed) ends the
   * input of a TCP connection, but fails the read of a TLS one when no close_notify came
   * first (Deno's UnexpectedEof); a client that resets fails it on both. A handler that checks
   * `reason.name` gets one answer on every transport, and the cause tells a failure apart.
   *
   * @param cause The read error, when the input failed rather than ended.
   */
  #clientLeft(cause?: unknown): void {
    const reason = clientGone(cause);
    if (this.#queue.length === 0 || this.#upgraded || this.#closed) return this.#abortAll(reason);
    this.#gone ??= reason;
    this.#stopping = true;
    this.#abortAll(reason, true);
    this.#wakeWriter?.();
    this.#wakeReader?.();
    this.#stopWatch?.();
  }

  /**
   * The next request when its head is already buffered (pipelined requests), with no async
   * frame; undefined when #nextRequest must read (or skip empty lines: its timers apply).
   */
  #takeRequest(): Slot | null | undefined {
    const reader = this.#reader;
    if (reader.length === 0 || reader.buffer[reader.start] === 0x0d) return undefined;
    try {
      const ready = takeRequestHead(reader, this.#options);
      if (ready === undefined) return undefined;
      // No handler runs for a request that nothing will answer (see #enqueue).
      return this.#answerable ? this.#prepare(ready) : null;
    } catch (error) {
      if (error instanceof HttpError) return this.#answerable ? this.#errorSlot(error) : null;
      this.#abortAll(asAbort(error));
      return null;
    }
  }

  /**
   * Reads the rest of a request head whose first bytes came (the read loop waited for them),
   * within headersTimeout, and prepares its slot; null at the end of the input.
   */
  async #nextRequest(): Promise<Slot | null> {
    const reader = this.#reader;
    try {
      const ready = takeRequestHead(reader, this.#options);
      // No wait, no timer; and no handler for a request that nothing will answer.
      if (ready !== undefined) return this.#answerable ? this.#prepare(ready) : null;
      this.#headers.set(this.#headersTimeout);
      const head = await this.#unlessCut(readRequestHead(reader, this.#options));
      this.#headers.clear();
      // abort() (or the end of the write loop) may have come after the head settled: its
      // handler would run for a request that nothing answers (see #enqueue).
      if (!this.#answerable) return null;
      if (head === CUT) {
        return this.#cut === "headers"
          ? this.#errorSlot(new HttpError(408, "Cannot read request: the head took too long"))
          : null;
      }
      if (head === null) return null;
      return this.#prepare(head);
    } catch (error) {
      this.#headers.clear();
      if (error instanceof HttpError) return this.#answerable ? this.#errorSlot(error) : null;
      this.#clientLeft(error); // the connection failed
      return null;
    }
  }

  /** A slot that answers a bad request with its status and closes the connection. */
  #errorSlot(error: HttpError): Slot {
    try {
      this.#options.onBadRequest?.(error);
    } catch (failure) {
      // The refusal is answered all the same: a failing callback must not cost the client its
      // status, nor the requests before it on the connection theirs.
      console.error("onBadRequest failed:", failure);
    }
    const slot = new Slot("GET", "HTTP/1.1", false, null);
    slot.ready = error.toResponse();
    slot.settled = true;
    return slot;
  }

  /** Refuses a request with `status` (see #errorSlot). */
  #refuse(status: number, message: string): Slot {
    return this.#errorSlot(new HttpError(status, message));
  }

  /** Marks the slot settled when its response is ready, waking the writer if it waits on it. */
  #watch(slot: Slot): void {
    slot.response!.then((response) => {
      slot.ready = response;
      slot.settled = true;
      if (this.#queue[0] === slot) this.#wakeWriter?.();
    });
  }

  /** Checks the head, builds the Request and starts the handler. */
  #prepare(head: RequestHead): Slot {
    const fields = head.fields;
    let host: string | null = null, hosts = 0;
    let connection: string | null = null, transferEncoding: string | null = null;
    let expect: string | null = null;
    let upgrade = false, contentLength: string | null = null, cookies = 0;
    for (let k = 0; k < fields.length; k++) {
      const field = fields[k]!, name = field[0], value = field[1];
      switch (name) {
        case "host":
          host = value;
          hosts++;
          break;
        case "connection":
          connection = connection === null ? value : `${connection}, ${value}`;
          break;
        case "transfer-encoding":
          transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
          break;
        case "content-length": // several fields are one list (RFC 9110 §5.3)
          contentLength = contentLength === null ? value : `${contentLength},${value}`;
          break;
        case "expect": // a list, like Connection: every field counts (RFC 9110 §5.3)
          expect = expect === null ? value : `${expect}, ${value}`;
          break;
        case "upgrade":
          upgrade = true;
          break;
        case "cookie":
          cookies++;
          break;
      }
    }
    const http11 = head.version === "HTTP/1.1";
    // RFC 9112 §9.3: "If the "close" connection option is present, the connection will not
    // persist after the current response; else, …" (close beats keep-alive in HTTP/1.0 too).
    const keepAlive = !hasToken(connection, "close") &&
      (http11 || hasToken(connection, "keep-alive"));
    // Host (RFC 9112 §3.2): exactly one in HTTP/1.1, and a valid authority.
    if (hosts > 1) return this.#refuse(400, "Cannot serve request: it has more than one Host");
    if (host === null && http11) {
      return this.#refuse(400, "Cannot serve request: HTTP/1.1 requires Host");
    }
    const hostProblem = host === null ? null : authorityProblem("Host", host);
    if (hostProblem !== null) return this.#refuse(400, hostProblem);
    const upper = head.method.toUpperCase();
    if (UNSUPPORTED_METHODS.has(upper)) {
      return this.#refuse(501, `Cannot serve request: method ${head.method} is not supported`);
    }
    const caseProblem = methodCaseProblem(head.method, upper);
    if (caseProblem !== null) return this.#refuse(501, caseProblem);
    // Body framing (RFC 9112 §6).
    let length = 0;
    let chunked: ChunkedDecoder | null = null;
    if (transferEncoding !== null) {
      if (contentLength !== null) {
        return this.#refuse(
          400,
          "Cannot serve request: it has both Transfer-Encoding and Content-Length",
        );
      }
      if (!http11) {
        return this.#refuse(400, "Cannot serve request: Transfer-Encoding in an HTTP/1.0 request");
      }
      const codings = transferEncoding.split(",").map((c) => trimOws(c).toLowerCase());
      if (codings.includes("")) {
        // RFC 9110 §5.6.1 asks a recipient to ignore empty list elements, but a proxy in
        // front that does not (Node's llhttp, hyper under Deno.serve and Go's net/http all
        // refuse them) may frame `chunked,` otherwise, and a body framed two ways is a
        // smuggled request. No client sends one.
        return this.#refuse(400, "Cannot serve request: Transfer-Encoding has an empty element");
      }
      if (codings.at(-1) !== "chunked") {
        return this.#refuse(400, "Cannot serve request: chunked is not the last transfer coding");
      }
      if (codings.length > 1) {
        return codings.slice(0, -1).includes("chunked")
          ? this.#refuse(400, "Cannot serve request: chunked is applied twice")
          : this.#refuse(
            501,
            `Cannot serve request: transfer coding ${
              JSON.stringify(codings[0]!.slice(0, 32))
            } is not supported`,
          );
      }
      chunked = new ChunkedDecoder({ maxSize: this.#maxBodySize });
      length = -1;
    } else if (contentLength !== null) {
      let value = contentLength; // one field of one value, as a rule
      if (!DIGITS.test(value)) {
        const values = value.split(",").map(trimOws);
        if (!values.every((v) => DIGITS.test(v)) || values.some((v) => v !== values[0])) {
          return this.#refuse(
            400,
            "Cannot serve request: Content-Length is invalid or its values differ",
          );
        }
        value = values[0]!;
      }
      length = Number(value);
      if (!Number.isSafeInteger(length)) {
        return this.#refuse(400, "Cannot serve request: Content-Length is too large");
      }
      if (length > this.#maxBodySize) {
        return this.#refuse(
          413,
          `Cannot serve request: a body of ${length} bytes exceeds ${this.#maxBodySize} bytes`,
        );
      }
    }
    let expectContinue = false;
    if (expect !== null && http11) {
      // Expect = #expectation (RFC 9110 §10.1.1): empty elements are ignored (§5.6.1), and any
      // expectation but 100-continue gets 417, wherever it stands in the list.
      let asked = false;
      for (const element of expect.split(",")) {
        const expectation = trimOws(element);
        if (expectation === "") continue;
        if (expectation.toLowerCase() !== "100-continue") {
          return this.#refuse(
            417,
            `Cannot serve request: expectation ${
              JSON.stringify(expectation.slice(0, 64))
            } is not supported`,
          );
        }
        asked = true;
      }
      expectContinue = asked && length !== 0;
    }
    // The URL: from an absolute-form target, else from Host (RFC 9112 §3.3). The Request
    // parses it; a target it cannot take is a 400.
    const authority = host ?? this.#options.defaultHost ?? "localhost";
    const target = head.target;
    const form = targetForm(target);
    const absolute = form === "origin" || form === "asterisk"
      ? null
      : absoluteAuthority(target, this.#scheme);
    const url = form === "origin"
      ? `${this.#scheme}://${authority}${target}`
      : form === "asterisk"
      ? `${this.#scheme}://${authority}/*`
      : absolute !== null
      ? target
      : null;
    const body = length !== 0 ? new RequestBody(length, chunked) : null;
    const slot = new Slot(head.method, head.version, keepAlive, body);
    slot.expectContinue = expectContinue;
    const method = head.method;
    let request: WireRequest;
    try {
      if (url === null) throw new TypeError("Not an http(s) URL");
      if (method === "GET" && body === null) {
        request = new WireRequest(url); // no init to convert: the common case is the fast one
      } else if (method === "GET" || method === "HEAD") {
        // A GET or HEAD cannot carry a body in a Request: it is read and dropped.
        request = new WireRequest(url, { method });
      } else {
        // Any other method has a body, empty when none came, as Deno.serve gives it (a
        // handler may read request.body!); a BufferSource adds no Content-Type.
        request = new WireRequest(url, {
          method,
          body: body !== null ? this.#bodyStream(slot, body) : new Uint8Array(0),
          duplex: "half",
        } as RequestInit);
      }
      const headers = request.headers;
      if (cookies < 2) {
        for (let k = 0; k < fields.length; k++) headers.append(fields[k]![0], fields[k]![1]);
      } else {
        // Several Cookie fields are one cookie-string, joined with "; " (RFC 6265 §5.4 sends
        // one; HTTP/2's split ones are joined so, RFC 9113 §8.2.3), as Deno.serve joins them
        // (but for empty fields, which Deno keeps as "; b=2" and this drops); Headers would
        // join them with ", ", and a cookie parser would read "1, b=2" for a.
        let cookie = "";
        for (let k = 0; k < fields.length; k++) {
          const field = fields[k]!;
          if (field[0] !== "cookie") headers.append(field[0], field[1]);
          else if (field[1] !== "") cookie = cookie === "" ? field[1] : `${cookie}; ${field[1]}`;
        }
        headers.set("cookie", cookie);
      }
      // RFC 9112 §3.2.2: with an absolute-form target the server "MUST ignore the received
      // Host header field (if any) and instead use the host information of the
      // request-target": the handler sees that host in Host too, as in the URL.
      if (absolute !== null) headers.set("host", absolute);
    } catch (cause) {
      return this.#errorSlot(
        new HttpError(
          400,
          `Cannot serve request: ${
            JSON.stringify(target.slice(0, 64))
          } does not make a valid Request`,
          { cause },
        ),
      );
    }
    // Only a request that asks to upgrade needs to be found by upgradeWebSocket.
    let context: WireContext | null = null;
    if (upgrade) {
      context = {
        httpVersion: head.version,
        ticket: null,
        ended: false,
        onSession: this.#options.onSession,
        hasBody: body !== null,
      };
      wireContexts.set(request, context);
    }
    slot.request = request;
    slot.context = context;
    this.#run(request, slot);
    return slot;
  }

  /**
   * Runs the handler; its errors become a 500 (or `onError`'s response). A Response returned
   * at once is ready at once: no promise, no reaction.
   */
  #run(request: Request, slot: Slot): void {
    try {
      const result = this.#handler(request, new WireInfo(this.#options.remoteAddr ?? null, slot));
      if (result instanceof Response) {
        slot.ready = result;
        slot.settled = true;
        return;
      }
      slot.response = this.#settle(request, slot, result);
    } catch (error) {
      slot.response = this.#failed(request, slot, error);
    }
    this.#watch(slot);
  }

  async #settle(request: Request, slot: Slot, result: Promise<Response>): Promise<Response> {
    try {
      const response = await result;
      if (!(response instanceof Response)) throw new TypeError("Handler did not return a Response");
      return response;
    } catch (error) {
      return this.#failed(request, slot, error);
    }
  }

  /** A handler's error as a response: its own status for an HttpError, else onError or 500. */
  async #failed(request: Request, slot: Slot, error: unknown): Promise<Response> {
    // An HttpError (the body's framing failed, or the handler chose a status) answers with
    // its own status — one a Response can carry: toResponse() throws a RangeError for a
    // status outside 200–599, which would reject this promise, that nothing awaits with a
    // handler (see #watch), and end the process on an unhandled rejection.
    if (error instanceof HttpError) {
      try {
        const response = error.toResponse();
        if (response instanceof Response) return response;
      } catch {
        // Answered below, as any other handler error.
      }
      const status = String(error.status);
      error = new TypeError(
        `Cannot answer with the handler's HttpError: status ${status} is outside 200-599`,
        { cause: error },
      );
    }
    let failure = error;
    try {
      if (this.#options.onError) {
        const response = await this.#options.onError(error, request);
        // Like a handler's: anything else is a 500, not a response the write loop trips on.
        if (response instanceof Response) return response;
        failure = new TypeError("onError did not return a Response", { cause: error });
      }
    } catch (again) {
      failure = again;
    }
    if (!slot.aborted) console.error("Handler failed:", failure);
    return new Response(null, { status: 500 });
  }

  /** The request body as a stream that reads from the connection's buffer. */
  #bodyStream(slot: Slot, body: RequestBody): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (slot.expectContinue) {
          slot.expectContinue = false;
          body.held = true; // until the 100 goes out (#released)
          slot.continueAsked ??= deferred();
          slot.continueAsked.resolve();
        }
        // A handler that reads its body once it answered: the drain after the response, or
        // the connection's lingering close, may have taken some of it. A short body must not
        // pass for whole; if the drain took only the end (a chunked body's last chunk), the
        // body ends here.
        if (body.dropped || (this.#lingering && !body.done)) {
          controller.error(
            new TypeError("Cannot read request body: it was dropped after the response"),
          );
          return;
        }
        if (body.done) {
          controller.close();
          return;
        }
        try {
          const chunk = await this.#readBody(body);
          if (body.dropped) {
            // The drain took bytes while this read waited (see #drain): what it got, or the
            // end it saw, would pass a body with a hole in it for whole.
            controller.error(
              new TypeError("Cannot read request body: it was dropped after the response"),
            );
            return;
          }
          if (chunk !== null) controller.enqueue(chunk);
          if (body.done) controller.close();
        } catch (error) {
          body.error = error;
          slot.close = true;
          body.finish();
          controller.error(error);
        }
      },
      cancel: () => {
        // Not read to the end: the pipeline drains it or closes the connection.
        body.cancelled = true;
        body.settled.resolve();
      },
    }, { highWaterMark: 0 });
  }

  /** Reads the next piece of a body from the buffer; null when nothing came yet. */
  async #readBody(body: RequestBody): Promise<Uint8Array | null> {
    const reader = this.#reader;
    body.started = true;
    while (true) {
      // The other read of a shared wait (the handler's, or the drain's: see #fillBody) may
      // have taken the body's end: nothing more is the body's to wait for.
      if (body.done) return null;
      if (reader.length > 0) {
        if (body.chunked !== null) {
          const { consumed, data } = body.chunked.compact(reader.buffer, reader.start, reader.end);
          const chunk = data === 0
            ? null
            : data >= reader.buffer.length / 2
            ? reader.take(data)
            : reader.copy(data);
          reader.consume(consumed - data);
          body.received += data;
          if (body.chunked.done) body.finish();
          else body.progress();
          if (chunk !== null || body.done) return chunk;
        } else {
          const n = Math.min(reader.length, body.remaining);
          // A view pins the whole read buffer: hand one out only for most of a buffer.
          const chunk = n >= reader.buffer.length / 2 ? reader.take(n) : reader.copy(n);
          body.received += n;
          if ((body.remaining -= n) === 0) body.finish();
          else body.progress();
          return chunk;
        }
      }
      if (!(await this.#fillBody(body))) {
        throw new HttpError(400, "Cannot read request body: the connection ended inside it");
      }
    }
  }

  /**
   * Reads more of a body, failing with 408 when nothing comes for bodyTimeout, or when the
   * body falls below minBodyRate. Only this wait counts toward the rate (the handler, or a
   * drain, is reading and the buffer holds none of the body), and only once any 100 Continue
   * the client waits for went out: its time comes from two clock readings, and the deadlines
   * (a timer each per connection, moved) do the rest: the rate can only fall while a wait
   * goes on, so its deadline alone enforces it.
   */
  #fillBody(body: RequestBody): Promise<boolean> {
    if (this.#bodyTimeout === Infinity && this.#minBodyRate === 0) return this.#reader.fill();
    if (body.waiting !== null) return body.waiting; // a drain behind the handler's read
    const filling = this.#reader.fill();
    return body.waiting = new Promise<boolean>((resolve, reject) => {
      body.waitFrom = Date.now();
      body.stall = (slow) =>
        reject(
          slow ? this.#slowBody(body, body.waited + Date.now() - body.waitFrom) : new HttpError(
            408,
            `Cannot read request body: no bytes came for ${this.#bodyTimeout} ms`,
          ),
        );
      if (!body.held) this.#armBody(body);
      filling.then(resolve, reject).finally(() => {
        if (!body.held) body.waited += Date.now() - body.waitFrom;
        body.waiting = null;
        this.#stalls.delete(body.stall);
        if (this.#stalls.size === 0) {
          this.#bodyDeadline.clear();
          this.#rateDeadline.clear();
        }
      });
    });
  }

  /** Starts counting the body's wait under way (from `waitFrom`) against the client. */
  #armBody(body: RequestBody): void {
    const timeout = this.#bodyTimeout, rate = this.#minBodyRate, from = body.waitFrom;
    // The rate holds while the time waited is at most the grace, or at most the time the
    // bytes received would take at minBodyRate.
    const left = rate === 0
      ? Infinity
      : Math.max(this.#bodyRateGrace, body.received * 1000 / rate) - body.waited;
    // Only when a late timer let the last wait overrun its deadline.
    if (left < 0) return body.stall(true);
    this.#stalls.add(body.stall);
    this.#bodyDeadline.set(timeout, from);
    if (left < timeout) this.#rateDeadline.set(left, from); // else bodyTimeout comes first
  }

  /** 100 Continue went out: from now on, waiting for the body counts against the client. */
  #released(slot: Slot): void {
    const body = slot.body;
    if (body === null || !body.held) return;
    body.held = false;
    if (body.waiting === null) return;
    body.waitFrom = Date.now();
    this.#armBody(body);
  }

  /** The 408 of a body that came slower than minBodyRate. */
  #slowBody(body: RequestBody, waited: number): HttpError {
    return new HttpError(
      408,
      `Cannot read request body: ${body.received} bytes came in ${
        Math.round(waited)
      } ms, below minBodyRate of ${this.#minBodyRate} bytes/s`,
    );
  }

  /**
   * A body deadline passed (`slow`: the rate's): the reads waiting for bytes fail with 408.
   */
  #bodyStalled(slow: boolean): void {
    for (const stall of this.#stalls) stall(slow);
    this.#stalls.clear();
    this.#bodyDeadline.clear();
    this.#rateDeadline.clear();
  }

  /**
   * Whether all that is left of a chunked body that nothing reads is in the read buffer
   * already, up to its end, within maxDrainSize (and maxBodySize): the drain after the
   * response (see #readLoop) then keeps the connection without waiting for the client. Go's
   * net/http reads up to 256 KiB of such a body before it writes the head, waiting for the
   * client; this looks only at what came. It decodes those bytes with a decoder of its own
   * and leaves them where they are: a handler may still read the body (a response body
   * stream may take it up on its first read), and the drain starts only once the response
   * was written. A body of which some was read already cannot be decoded again from the
   * buffer's start: false. So is a body over maxBodySize, which the drain does not discard:
   * its decoder fails (413), as a Content-Length over it is refused before any handler runs.
   */
  #drainable(body: RequestBody): boolean {
    if (body.started) return false;
    const reader = this.#reader;
    // No BYOB read is under way, which would have taken the buffer away: no read goes past a
    // body before it is read or drained, and only a source read beside the buffer is read
    // ahead (see #watchBody).
    const decoder = new ChunkedDecoder({
      maxSize: Math.min(this.#maxBodySize, this.#maxDrainSize),
    });
    try {
      decoder.push(reader.buffer.subarray(reader.start, reader.end), DROP);
    } catch {
      return false; // malformed, or over a limit: the drain would fail there too
    }
    return decoder.done;
  }

  /**
   * Reads and drops what is left of a body; false when it is too big to drain. A body that
   * the handler was reading when its response went out without `Connection: close` (see
   * #writeResponse), and then left, is drained whole, within maxBodySize: that response told
   * the client the connection stays (RFC 9110 §10.1.1), as Node's http server does.
   */
  async #drain(slot: Slot): Promise<boolean> {
    const body = slot.body!;
    // Not after a response that said close (see #writeResponse): the client expects the close.
    if (slot.close || body.error !== null || this.#cut !== null) return false;
    if (slot.expectContinue) return false; // 100 Continue never went out: the body may not come
    const limit = slot.keptReading ? Infinity : this.#maxDrainSize;
    if (body.chunked === null && body.remaining > limit) return false;
    let drained = 0;
    // A small drain gets headersTimeout in all; a whole one the body's own bounds, as if the
    // handler read on (bodyTimeout, minBodyRate).
    if (!slot.keptReading) this.#headers.set(this.#headersTimeout);
    try {
      while (!body.done) {
        const chunk = await this.#unlessCut(this.#readBody(body));
        if (chunk === CUT) return false;
        // Over the limit only while more is to come: a body that ended within what was
        // read is drained. (Only a body the handler cancelled is drained before its response
        // is written, which may find it done: a failure now would close a connection that the
        // response said it would keep.)
        drained += chunk === null ? 0 : chunk.length;
        if (chunk !== null && chunk.length > 0) body.dropped = true;
        if (drained > limit && !body.done) return false;
      }
      return true;
    } catch {
      return false;
    } finally {
      this.#headers.clear();
    }
  }

  /**
   * Whether a request read now can still be answered: not once the write loop ended or abort()
   * came, which can happen in the turns between a read settling and the read loop going on.
   */
  get #answerable(): boolean {
    return !this.#writeEnded && this.#abortReason === null && this.#gone === null;
  }

  /**
   * Queues the slot for the write loop; false (and the slot given up) when nothing will write
   * it: the write loop ended, abort() came or the client left, while #nextRequest returned it.
   * Queued there, it would wait forever, and so would the read loop that waits for its body
   * or answer.
   */
  #enqueue(slot: Slot): boolean {
    if (!this.#answerable) {
      this.#giveUp(
        slot,
        this.#abortReason ?? this.#gone ??
          new DOMException("The connection closed before the response", "AbortError"),
      );
      return false;
    }
    this.#queue.push(slot);
    if (this.#queue.length === 1) this.#wakeWriter?.();
    return true;
  }

  /**
   * Ends a request whose response will not be written: its signal aborts, its upgrade (if
   * any) fails, and its body's source (a file, a timer) is let go, now or once the handler
   * answers.
   */
  #giveUp(slot: Slot, reason: unknown): void {
    if (!slot.aborted) {
      slot.aborted = true;
      slot.request?.abort(reason);
    }
    slot.complete();
    slot.context?.ticket?.fail(new Error("The connection closed before the upgrade"));
    if (slot.settled) discardBody(slot.ready!);
    else slot.response?.then(discardBody);
  }

  /**
   * Aborts the requests' signals and stops streaming a response body; with `releaseContinue`
   * (the pipeline gives up: abort(), the client gone), the write loop's waits for a handler to
   * ask for 100 Continue end too.
   */
  #abortAll(reason?: unknown, releaseContinue = false): void {
    this.#bodyReader?.cancel(reason).catch(() => {});
    this.#bodyReader = null;
    for (const slot of this.#queue) {
      if (releaseContinue) slot.continueAsked?.resolve();
      if (slot.aborted) continue;
      slot.aborted = true;
      slot.request?.abort(reason);
    }
  }

  // ---- Writing ------------------------------------------------------------------------

  async #writeLoop(): Promise<void> {
    try {
      while (true) {
        if (this.#abortReason !== null) throw this.#abortReason;
        const slot = this.#queue[0];
        if (slot === undefined) {
          if (this.#readDone) break;
          await this.#flush();
          // Look again before sleeping: the reader may have queued a request during the flush.
          if (this.#queue.length > 0 || this.#readDone) continue;
          await new Promise<void>(this.#writerSleeps);
          this.#wakeWriter = null;
          continue;
        }
        if (!slot.settled) {
          await this.#flush();
          if (slot.expectContinue || slot.continueAsked !== null) {
            // Answer Expect: 100-continue once the handler reads the body, if it does first.
            slot.continueAsked ??= deferred();
            const asked = await Promise.race([
              slot.response!.then(() => false),
              slot.continueAsked.promise.then(() => true),
            ]);
            if (
              asked && !slot.settled && !slot.continueSent && this.#abortReason === null &&
              this.#gone === null
            ) {
              slot.continueSent = true;
              await this.#write(CONTINUE);
              this.#released(slot);
            }
          }
        }
        while (!slot.settled) {
          // Woken when the response is ready (see #watch), or by abort() or the client
          // leaving: a handler that never settles is not waited for then.
          if (this.#abortReason !== null) throw this.#abortReason;
          if (this.#gone !== null) throw this.#gone;
          await new Promise<void>(this.#writerSleeps);
          this.#wakeWriter = null;
        }
        let response = slot.ready!;
        const ticket = upgradeTickets.get(response);
        if (ticket !== undefined && ticket.request === slot.request) {
          await this.#upgrade(slot, response, ticket);
          return;
        }
        // The status is read once: a subclass's getter need not give the same one twice.
        let status = response.status;
        let failure = unsendable(response, status);
        if (failure !== null) {
          // A handler error (500, or onError's response), not a reason to drop the connection
          // and the requests pipelined behind this one.
          nativeUpgrades.get(response)?.(failure);
          response.body?.cancel().catch(() => {});
          response = await this.#failed(
            slot.request ?? new Request("http://localhost/"),
            slot,
            failure,
          );
          status = response.status;
          failure = unsendable(response, status);
          if (failure !== null) {
            // onError's answer cannot be sent either.
            nativeUpgrades.get(response)?.(failure);
            response.body?.cancel().catch(() => {});
            if (!slot.aborted) {
              console.error(
                "Handler failed:",
                new TypeError("onError did not return a Response that can be sent", {
                  cause: failure,
                }),
              );
            }
            response = new Response(null, { status: 500 });
            status = 500;
          }
        }
        slot.context?.ticket?.fail(
          new Error("The handler answered the upgrade request with another response"),
        );
        let writing: boolean | Promise<boolean> | typeof READ_BODY = this.#writeResponse(
          slot,
          response,
          status,
        );
        if (writing === READ_BODY) {
          // The body's read-ahead, waited for here (see #readAhead).
          for (let reads = 1;; reads++) {
            this.#readAhead();
            for (let i = 0; i < SETTLE_TICKS && this.#ahead.state === UNSETTLED; i++) await null;
            if (!this.#tookAhead(reads)) break;
          }
          writing = this.#writeBody(slot);
        }
        const keepGoing = typeof writing === "boolean" ? writing : await writing;
        this.#queue.shift();
        this.#unflushed++; // counts toward maxPipelined until its bytes are written
        slot.complete();
        // Gathered responses go out together, but never more than OUT_LIMIT bytes at once.
        if (this.#outSize >= OUT_LIMIT) await this.#flush();
        if (!keepGoing) break;
        if (this.#queue.length === 0 && this.#waitingIdle) this.#armIdle(); // idle from now on
      }
      await this.#flush();
    } catch (error) {
      // The connection failed while writing, a response could not be written whole, or the
      // client left (see #clientLeft): the responses finished before go out, if writes can.
      this.#broken = true;
      this.#brokenBy ??= error;
      this.#abortAll(asAbort(error));
      if (this.#writeFailure === null) await this.#flush().catch(() => {});
    } finally {
      // Requests read after the last response written will not be answered: end them, fail
      // any upgrade among them, and stop the reader wherever it waits.
      this.#stopping = true;
      this.#writeEnded = true;
      if (!this.#upgraded) {
        const reason = new DOMException("The connection closed before the response", "AbortError");
        this.#abortAll(reason);
        for (const slot of this.#queue) this.#giveUp(slot, reason);
        this.#queue.length = 0;
        this.#cutRead("shutdown");
      }
      this.#readDone = true;
      this.#wakeReader?.();
    }
  }

  /**
   * Writes one response; returns false when the connection must close after it. Synchronous;
   * READ_BODY when the body has to be read first: the write loop reads it ahead (see
   * #readAhead), then calls #writeBody.
   */
  #writeResponse(slot: Slot, response: Response, status: number): boolean | typeof READ_BODY {
    const noBody = slot.method === "HEAD" || status === 204 || status === 304;
    this.#collectHead(response, status);
    const connection = this.#headConnection, userLength = this.#headLength;
    let close = slot.close || (this.#stopping && this.#queue.length === 1) ||
      hasToken(connection, "close");
    const body = slot.body;
    if (body !== null && !body.done) {
      // A body left unread is drained after the response, or the connection closes then (see
      // #readLoop), and a server that closes must say so in its response (RFC 9112 §9.6): so
      // the choice is made now, for a body the handler is not reading (an echo is; a body it
      // cancelled is not). The connection closes for a 100-continue never asked for, a
      // Content-Length body over maxDrainSize, and a chunked body whose end is not in the read
      // buffer already (see #drainable): its size is unknown, and the response is not held
      // back for a client that may be slow to send the rest, or send too much. A body being
      // read whose 100-continue was not asked for yet may ask during the read-ahead of the
      // response's body (an echo reads it only then): #writeBody decides after that.
      const request = slot.request;
      const reading = !body.cancelled && request !== null &&
        (request.bodyUsed || request.body?.locked === true || response.body === request.body);
      close ||= (slot.expectContinue &&
        (!reading || noBody || status === 205 || response.body === null)) ||
        (!reading &&
          (body.chunked === null ? body.remaining > this.#maxDrainSize : !this.#drainable(body)));
      if (close) slot.close = true; // nothing is drained after it (see #drain)
      else if (reading) slot.keptReading = true;
    }
    // Content-Length = 1*DIGIT (RFC 9110 §8.6), of a value a double holds exactly (else it
    // would be written back as 1e+23, or one off). Any other value ("abc", "5, 7") is not
    // taken: the body's own length frames the response.
    let declared = userLength !== null && DIGITS.test(userLength) ? Number(userLength) : -1;
    if (declared > Number.MAX_SAFE_INTEGER) declared = -1;
    const content = response.body;
    if (status === 205) {
      // A 205 has no content (RFC 9110 §15.3.6; a Response refuses a body with it, but a
      // subclass may report 205 over one): its body is dropped, its length is 0, for a HEAD too.
      content?.cancel().catch(() => {});
      this.#pushHead(close, slot.version, 0);
      return !close;
    }
    if (noBody) {
      // 204 and 304 go out with no Content-Length, to GET and HEAD alike, and the handler's
      // is dropped (a 1xx never gets here: see unsendable): "A server MUST NOT send a
      // Content-Length header field in any response with a status code of 1xx (Informational)
      // or 204 (No Content)", and on a 304 it may only be the length a 200 would have had
      // (RFC 9110 §8.6), which the engine cannot check. A HEAD gets the fields a GET would get
      // (§9.3.2).
      const sized = slot.method === "HEAD" && status !== 204 && status !== 304;
      if (sized && content !== null && declared < 0) {
        // The length a GET would get: that of a body that is all there at once.
        return this.#bodyToRead(content.getReader(), close, declared);
      }
      content?.cancel().catch(() => {});
      // A HEAD gets the length the handler declared, or the one a GET would get.
      const length = content === null && declared < 0 ? 0 : declared;
      this.#pushHead(close, slot.version, sized ? length : -1);
      return !close;
    }
    if (content === null) {
      this.#pushHead(close, slot.version, 0);
      return !close;
    }
    return this.#bodyToRead(content.getReader(), close, declared);
  }

  /** Sets the read-ahead of a response body up (see #readAhead). */
  #bodyToRead(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    close: boolean,
    declared: number,
  ): typeof READ_BODY {
    this.#aheadReader = reader;
    this.#aheadClose = close;
    this.#aheadDeclared = declared;
    this.#aheadFirst = this.#aheadPending = null;
    this.#aheadParts = null;
    this.#aheadSize = 0;
    this.#aheadEnded = false;
    return READ_BODY;
  }

  // The read-ahead of a response body: the write loop reads what the body has ready (at
  // most READ_AHEAD chunks or about READ_AHEAD_BYTES, stopping at a read that does not settle within SETTLE_TICKS
  // microtask turns: a body whose bytes are all there, a string, bytes, a Blob, ends at once).
  // The loop waits in its own frame: an async call per response would cost a suspended frame
  // of its own (about 0.4 kB). Each read's callbacks are bound once and leave the outcome in
  // #ahead. One read at a time; one left unsettled by its window stays with its response
  // (#aheadPending: streamed from, or cancelled) with its outcome object, and #ahead is a new
  // one from then on. (Cancelling a reader settles its pending read only a microtask later:
  // a shared outcome was once filled in by a HEAD's cancelled read during the next
  // response's window, which then sent that HEAD's body, or nothing, as its own.)
  #aheadReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #aheadClose = false;
  #aheadDeclared = -1;
  #aheadFirst: Uint8Array | null = null;
  #aheadParts: Uint8Array[] | null = null;
  #aheadSize = 0;
  #aheadEnded = false;
  /** The read under way, or the one that did not settle in its window. */
  #aheadPending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  /** The outcome of the read under way (see AheadRead). */
  #ahead = new AheadRead();

  /** Starts the read-ahead's next read. */
  #readAhead(): void {
    const ahead = this.#ahead;
    ahead.state = UNSETTLED;
    let read: Promise<ReadableStreamReadResult<Uint8Array>>;
    try {
      read = this.#aheadReader!.read();
    } catch (error) {
      return ahead.onFailed(error);
    }
    this.#aheadPending = read;
    read.then(ahead.onRead, ahead.onFailed);
  }

  /** Takes the read's outcome; whether to read on (a chunk came, and not too many yet). */
  #tookAhead(reads: number): boolean {
    const ahead = this.#ahead;
    if (ahead.state === UNSETTLED) {
      // To be streamed from #aheadPending on, or cancelled: its callbacks fill in the outcome
      // they were given, and the reads of the responses after this one get a new one.
      this.#ahead = new AheadRead();
      return false;
    }
    this.#aheadPending = null;
    if (ahead.state === FAILED) return false;
    const result = ahead.result!;
    ahead.result = null;
    if (result.done) {
      this.#aheadEnded = true;
      return false;
    }
    const chunk = result.value;
    if (!(chunk instanceof Uint8Array)) {
      // Failed like a body whose read fails: a 500, since nothing of it was written yet.
      ahead.state = FAILED;
      ahead.error = notBytes(chunk);
      return false;
    }
    if (this.#aheadFirst === null) this.#aheadFirst = chunk;
    else (this.#aheadParts ??= [this.#aheadFirst]).push(chunk);
    this.#aheadSize += chunk.length;
    return reads < READ_AHEAD && (reads === 1 || this.#aheadSize < READ_AHEAD_BYTES);
  }

  /**
   * Writes the response whose body was read ahead: with its length when the body ended, else
   * streamed (see #stream); a 500 when it failed first. For a HEAD, only the length counts.
   */
  #writeBody(slot: Slot): boolean | Promise<boolean> {
    const reader = this.#aheadReader!, declared = this.#aheadDeclared;
    let close = this.#aheadClose;
    const first = this.#aheadFirst, parts = this.#aheadParts, size = this.#aheadSize;
    const ended = this.#aheadEnded, pending = this.#aheadPending;
    this.#aheadReader = this.#aheadFirst = this.#aheadPending = null;
    this.#aheadParts = null;
    this.#sendContinue(slot); // the read-ahead may have asked for the request body
    // A body still waiting for its 100 will get none (see #writeLoop): the client may never
    // send it, so the connection cannot wait for it to be drained (RFC 9110 §10.1.1).
    if (slot.expectContinue && !close) close = slot.close = true;
    if (this.#ahead.state === FAILED) {
      const error = this.#ahead.error;
      this.#ahead.error = null;
      if (slot.method === "HEAD") {
        // A body that fails says nothing of its length, and a HEAD sends none of it anyway.
        reader.cancel().catch(() => {});
        this.#pushHead(close, slot.version, -1);
        return !close;
      }
      // The body failed before any of the response was written: it can still be a 500.
      reader.cancel(error).catch(() => {});
      console.error("Handler failed: the response body failed before it was sent:", error);
      this.#push500(close, slot.version);
      return !close;
    }
    if (slot.method === "HEAD") {
      reader.cancel().catch(() => {});
      this.#pushHead(close, slot.version, ended ? size : -1);
      return !close;
    }
    if (ended && declared >= 0 && declared !== size) {
      // The handler declared a length its body does not have: the response cannot go out as
      // it is, and nothing of it has been written yet.
      console.error(`Handler failed: a body of ${size} bytes declared Content-Length: ${declared}`);
      this.#push500(true, slot.version);
      return false;
    }
    if (ended) {
      if (size <= SMALL_BODY) this.#pushHead(close, slot.version, size, false, parts ?? first);
      else {
        this.#pushHead(close, slot.version, size);
        for (const part of parts ?? [first!]) this.#push(part);
      }
      return !close;
    }
    const chunks = parts ?? (first === null ? [] : [first]);
    return this.#stream(slot, close, declared, reader, chunks, pending);
  }

  /** Writes a response whose body did not end at once: its head, then its chunks as they come. */
  async #stream(
    slot: Slot,
    close: boolean,
    declared: number,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    parts: Uint8Array[],
    pending: Promise<ReadableStreamReadResult<Uint8Array>> | null,
  ): Promise<boolean> {
    if (this.#gone !== null) {
      // The client left: a body that is not all there is not waited for (see #clientLeft).
      reader.cancel(this.#gone).catch(() => {});
      throw this.#gone;
    }
    // With its declared length, chunked in HTTP/1.1, or up to the close in HTTP/1.0.
    const mode = declared >= 0 ? "length" : slot.version === "HTTP/1.1" ? "chunked" : "close";
    if (mode === "close") close = true;
    this.#pushHead(close, slot.version, mode === "length" ? declared : -1, mode === "chunked");
    // Cancelled by #abortAll from here on (the client left), and below if a write fails.
    this.#bodyReader = reader;
    let written = 0;
    /** The handler's body failed (not a write): reported, as Deno.serve reports it. */
    let bodyFailed = false;
    const report = (error: unknown) => {
      if (!slot.aborted) {
        console.error("Handler failed: the response body failed after its head was sent:", error);
      }
    };
    const send = async (chunk: Uint8Array) => {
      if (chunk.length === 0) return;
      written += chunk.length;
      if (mode === "length" && written > declared) {
        bodyFailed = true;
        throw new TypeError("The body is longer than its Content-Length");
      }
      // Each chunk goes out closed by its CRLF: a client of a stream sees it whole at once.
      if (mode === "chunked") this.#push(sizeLine(this.#slab, chunk.length, true));
      this.#push(chunk);
      if (mode === "chunked") this.#push(CRLF);
      if (this.#outSize >= SMALL_BODY) await this.#flush();
    };
    try {
      for (const part of parts) await send(part);
      // The head, and what the read-ahead took, go out now, before the wait for more: a
      // stream's next chunk may take its time (an event stream after its greeting).
      await this.#flush();
      while (true) {
        const result = pending ?? reader.read();
        pending = null;
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await result;
        } catch (error) {
          bodyFailed = true;
          throw error;
        }
        // #abortAll (the client left, the connection failed) cancelled the body: its read
        // settles as done, which is a cut, not the body's end. The client must not get the
        // last chunk (or the full length) of a body cut short.
        if (this.#bodyReader !== reader) {
          throw this.#gone ?? this.#abortReason ?? new Error("The response body was cancelled");
        }
        const { done, value } = read;
        if (done) break;
        if (!(value instanceof Uint8Array)) {
          bodyFailed = true;
          throw notBytes(value);
        }
        await send(value);
        if (this.#outSize > 0) await this.#flush(); // a streaming body goes out as it comes
      }
    } catch (error) {
      // The body failed (or ran over its length), or a write did: the client must not take a
      // cut body for a whole one, so the connection ends without a proper end of body, and
      // the body's source is cancelled (its read under way, if any, settles with that).
      this.#bodyReader = null;
      reader.cancel(error).catch(() => {});
      if (bodyFailed) report(error);
      await this.#flush().catch(() => {});
      throw error;
    }
    this.#bodyReader = null;
    if (mode === "length" && written !== declared) {
      const error = new TypeError("The body is shorter than its Content-Length");
      report(error);
      throw error;
    }
    if (mode === "chunked") this.#push(LAST_CHUNK);
    return !close;
  }

  // The head of the response being written, collected by #collectHead: its status line, and
  // its fields in two arrays kept from one response to the next (no pair per field), of which
  // the first #fields entries are this response's. (Truncating an array drops its storage.)
  #headLine = "";
  readonly #names: string[] = [];
  readonly #values: string[] = [];
  #fields = 0;
  #headDate = false;
  #headConnection: string | null = null;
  #headLength: string | null = null;
  /** The handler's Upgrade field, written with an `upgrade` connection option (see #pushHead). */
  #headUpgrade: string | null = null;

  /**
   * Collects a response's status line and fields for #pushHead. `forEach` reads the header
   * list once; Deno 2.9's iterator sorts and copies the whole list again for every entry.
   */
  #collectHead(response: Response, status: number): void {
    this.#headLine = statusLine(status, response.statusText);
    this.#fields = 0;
    this.#headDate = false;
    this.#headConnection = this.#headLength = this.#headUpgrade = null;
    response.headers.forEach(this.#collectField);
    const connection = this.#headConnection;
    if (connection !== null) {
      // Fields that Connection names are hop-by-hop too (RFC 9110 §7.6.1).
      const names = this.#names, values = this.#values;
      let kept = 0;
      for (let i = 0; i < this.#fields; i++) {
        if (hasToken(connection, names[i]!)) {
          if (names[i] === "date") this.#headDate = false; // ours goes out instead
          continue;
        }
        names[kept] = names[i]!;
        values[kept++] = values[i]!;
      }
      this.#fields = kept;
    }
  }

  readonly #collectField = (value: string, name: string): void => {
    if (HOP_BY_HOP.has(name)) {
      if (name === "connection") this.#headConnection = value;
      else if (name === "content-length") this.#headLength = value;
      else if (name === "upgrade") this.#headUpgrade = value;
      return;
    }
    if (name === "date") this.#headDate = true;
    this.#names[this.#fields] = name;
    this.#values[this.#fields++] = value;
  };

  /**
   * Queues an empty 500 in place of a response whose head was collected but nothing of it
   * written (its body failed, or does not match its length). None of the handler's fields go
   * with it, as none go with the 500 for a handler that throws: they describe the content that
   * failed. A Cache-Control max-age would let a cache store the empty 500 (RFC 9111 §3), an
   * ETag or Last-Modified would validate it later, and a Set-Cookie or Content-Encoding would
   * apply to it.
   */
  #push500(close: boolean, version: string): void {
    this.#headLine = "HTTP/1.1 500 Internal Server Error\r\n";
    const names = this.#names, values = this.#values;
    for (let i = 0; i < this.#fields; i++) names[i] = values[i] = "";
    this.#fields = 0;
    this.#headDate = false; // so that our own Date goes out
    this.#headUpgrade = null;
    this.#pushHead(close, version, 0);
  }

  /** Queues 100 Continue when the handler asked for the request body and none went out. */
  #sendContinue(slot: Slot): void {
    if (slot.continueAsked !== null && !slot.expectContinue && !slot.continueSent) {
      slot.continueSent = true;
      this.#push(CONTINUE);
      this.#released(slot);
    }
  }

  /**
   * Queues the collected head (and a small body) as one buffer, written straight from the
   * status line and field strings: no string is built for the head. After the fields come
   * Date (unless the handler set one), the framing (`content-length` when `length` is not
   * negative, or `transfer-encoding: chunked`) and Connection.
   */
  #pushHead(
    close: boolean,
    version: string,
    length: number,
    chunked = false,
    body: Uint8Array | Uint8Array[] | null = null,
  ): void {
    const line = this.#headLine, names = this.#names, values = this.#values, fields = this.#fields;
    const date = this.#headDate ? "" : dateLine();
    const digits = length >= 0 ? String(length) : "";
    let connection = close ? CLOSE_LINE : version === "HTTP/1.0" ? KEEP_ALIVE_LINE : "";
    const upgrade = this.#headUpgrade;
    if (upgrade !== null) {
      // The handler's Upgrade (a 426 must send one, any response may: RFC 9110 §7.8, §15.5.22),
      // with the `upgrade` connection option its sender must add.
      this.#headUpgrade = null;
      connection = `${
        connection === "" ? "connection: " : connection.slice(0, -2) + ", "
      }upgrade\r\nupgrade: ${upgrade}\r\n`;
    }
    let size = line.length + date.length + connection.length + 2;
    for (let i = 0; i < fields; i++) size += names[i]!.length + values[i]!.length + 4;
    if (length >= 0) size += CONTENT_LENGTH.length + digits.length + 2;
    else if (chunked) size += CHUNKED_LINE.length;
    const bodySize = body === null ? 0 : body instanceof Uint8Array ? body.length : length;
    const out = this.#slab.allocate(size + bodySize);
    let at = writeLatin1(out, 0, line);
    for (let i = 0; i < fields; i++) {
      at = writeLatin1(out, at, names[i]!);
      out[at++] = 0x3a; // ":"
      out[at++] = 0x20;
      at = writeLatin1(out, at, values[i]!);
      out[at++] = 0x0d;
      out[at++] = 0x0a;
    }
    at = writeLatin1(out, at, date);
    if (length >= 0) {
      at = writeLatin1(out, writeLatin1(out, at, CONTENT_LENGTH), digits);
      out[at++] = 0x0d;
      out[at++] = 0x0a;
    } else if (chunked) at = writeLatin1(out, at, CHUNKED_LINE);
    at = writeLatin1(out, at, connection);
    out[at++] = 0x0d;
    out[at++] = 0x0a;
    if (body instanceof Uint8Array) out.set(body, at);
    else if (body !== null) {
      for (const part of body) {
        out.set(part, at);
        at += part.length;
      }
    }
    for (let i = 0; i < fields; i++) names[i] = values[i] = ""; // hold no strings of a response written
    this.#fields = 0;
    this.#push(out);
  }

  #push(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outSize += bytes.length;
  }

  /**
   * Writes what was gathered, as one chunk when it is small. Not async, and nothing to write
   * costs nothing: a request written alone would otherwise pay for two async frames and a
   * promise per write (see #write).
   */
  #flush(): Promise<void> {
    const out = this.#out;
    if (out.length === 0) {
      this.#flushed();
      return DONE;
    }
    const size = this.#outSize;
    this.#outSize = 0;
    if (out.length > 1 && size > SMALL_BODY * 4) return this.#flushEach(out.splice(0));
    let bytes: Uint8Array;
    if (out.length === 1) bytes = out[0]!;
    else {
      bytes = this.#slab.allocate(size);
      let at = 0;
      for (const part of out) {
        bytes.set(part, at);
        at += part.length;
        this.#slab.giveBack(part); // copied: a lent block goes back
      }
    }
    out.length = 0; // the array is kept for the next gathering
    this.#flushing = true; // #sent calls #flushed: no reaction of our own on the write
    return this.#write(bytes);
  }

  /** Whether the write under way ends a flush (see #flushed). */
  #flushing = false;

  /** Writes large gathered output part by part, with no copy. */
  async #flushEach(parts: Uint8Array[]): Promise<void> {
    for (const part of parts) await this.#write(part);
    this.#flushed();
  }

  /** What was answered is written: those requests no longer count toward maxPipelined. */
  readonly #flushed = (): void => {
    if (this.#unflushed > 0) {
      this.#unflushed = 0;
      this.#wakeReader?.();
    }
  };

  /**
   * Writes `bytes` whole. A client that stops reading would hold the write, and what waits
   * behind it, forever: past writeTimeout the wait fails (see #writeTimedOut), and the
   * connection is closed. One write at a time; its state lives in fields and its callbacks are
   * bound once, so a write costs one promise and the transport's own.
   */
  #write(bytes: Uint8Array): Promise<void> {
    if (this.#writeFailure !== null) return Promise.reject(this.#writeFailure);
    this.#writeDeadline.set(this.#writeTimeout);
    this.#writing = bytes;
    this.#writingAt = 0;
    return new Promise<void>(this.#startWrite);
  }

  /** Whether writing failed: the connection is aborted, not closed gracefully. */
  #broken = false;
  /** Why (see #broken): a stream transport's writable is aborted with it. */
  #brokenBy: unknown = undefined;
  /** Why a write failed or timed out: no write starts after one did. */
  #writeFailure: unknown = null;
  /** The write under way: its bytes, how many went, and its promise's functions. */
  #writing: Uint8Array = NOTHING;
  #writingAt = 0;
  #writeDone: (() => void) | null = null;
  #writeFail: ((reason: unknown) => void) | null = null;

  readonly #startWrite = (resolve: () => void, reject: (reason: unknown) => void): void => {
    this.#writeDone = resolve;
    this.#writeFail = reject;
    this.#send(this.#writing);
  };

  #send(bytes: Uint8Array): void {
    let sent: Promise<unknown>;
    try {
      sent = this.#writer === null
        ? this.#transport.write!(bytes) // a direct write may take part of the bytes (it copies)
        : this.#writer.write(owned(bytes)); // never a view of the slab (see the constructor)
    } catch (error) {
      return this.#writeRejected(error); // a transport that throws instead of rejecting
    }
    sent.then(this.#sent, this.#writeRejected);
  }

  /**
   * The transport refused a write: the client is gone (a reset, a broken pipe), which the
   * requests' signals tell as a failed read does (see #clientLeft).
   */
  readonly #writeRejected = (error: unknown): void => this.#failWrite(clientGone(error));

  readonly #sent = (n: unknown): void => {
    if (this.#writeDone === null) return; // it timed out meanwhile
    this.#writingAt += this.#writer === null ? n as number : this.#writing.length;
    if (this.#writingAt < this.#writing.length) {
      return this.#send(this.#writing.subarray(this.#writingAt));
    }
    const done = this.#writeDone;
    this.#writeDone = this.#writeFail = null;
    this.#slab.giveBack(this.#writing); // written: a lent block goes back (see lib/_slab.ts)
    this.#writing = NOTHING; // a kept-alive connection holds no bytes of its last response
    this.#writeDeadline.clear();
    if (this.#flushing) {
      this.#flushing = false;
      this.#flushed();
    }
    done();
  };

  /** Fails the write under way (an error, or writeTimeout); later writes fail at once. */
  readonly #failWrite = (reason: unknown): void => {
    this.#writeFailure ??= reason ?? new Error("Write failed");
    const fail = this.#writeFail;
    this.#writeDone = this.#writeFail = null;
    this.#writing = NOTHING;
    this.#flushing = false;
    this.#writeDeadline.clear();
    fail?.(reason);
  };

  /** Writes 101 and hands the connection to the session. */
  async #upgrade(slot: Slot, response: Response, ticket: UpgradeTicket): Promise<void> {
    try {
      await this.#writeUpgrade(slot, response, ticket);
    } catch (error) {
      ticket.fail(error); // the session must not wait for a connection it will not get
      throw error;
    }
  }

  async #writeUpgrade(slot: Slot, response: Response, ticket: UpgradeTicket): Promise<void> {
    let head = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
      `sec-websocket-accept: ${await acceptKey(ticket.key)}\r\n`;
    if (this.#gone !== null) throw this.#gone; // the client left meanwhile
    if (ticket.protocol !== "") head += `sec-websocket-protocol: ${ticket.protocol}\r\n`;
    for (const [name, value] of response.headers) {
      if (HOP_BY_HOP.has(name) || name.startsWith("sec-websocket-")) continue;
      head += `${name}: ${value}\r\n`;
    }
    this.#push(latin1Bytes(head + "\r\n"));
    await this.#flush();
    // The read loop stopped at this request; what it read past it belongs to the session.
    this.#upgraded = true;
    this.#queue.shift();
    slot.complete();
    this.#endWait(CUT); // a watch for the client leaving (see #watchEnd) ends: its read goes on
    await this.#reading; // it stops at a request that may upgrade
    const reader = this.#reader;
    let buffered = reader.rest();
    // A body's read-ahead (see #watchBody) may have a read of the connection under way: its
    // bytes are the first frames, and come before any read of the session's own.
    let pending = reader.pendingRest();
    reader.releaseLock();
    this.#writer?.releaseLock();
    const transport = this.#transport;
    const direct = typeof transport.read === "function" && typeof transport.write === "function";
    if (pending !== null && !direct) {
      // A stream's read: releasing the lock rejected it if it was still waiting, but one that
      // already took a chunk from the stream delivers it to us, not to the session's reader.
      const more = await pending;
      pending = null;
      if (more.length > 0) {
        const joined = new Uint8Array(buffered.length + more.length);
        joined.set(buffered);
        joined.set(more, buffered.length);
        buffered = joined;
      }
    }
    const handed: TransportReady = {
      // Got only when used: a session over a direct transport never touches them (and a
      // Deno.Conn builds each stream object on first use).
      get readable() {
        return transport.readable;
      },
      get writable() {
        return transport.writable;
      },
      ...(transport.close ? { close: () => transport.close!() } : {}),
      ...(direct
        ? {
          read: pending === null
            ? (p: Uint8Array) => transport.read!(p)
            : readAfter(pending, (p: Uint8Array) => transport.read!(p)),
          write: (p: Uint8Array) => transport.write!(p),
        }
        : {}),
      buffered,
    };
    if (writesDone(transport)) markWritesDone(handed); // its writes are the connection's
    // The session reads on its own from here; this pipeline may stay referenced (its timers,
    // a server's bookkeeping) as long as the session lives: it keeps none of its buffers (64
    // KiB of reads, a slab). A read still under way lets go of its buffer once it ends.
    reader.discard();
    this.#slab.drop();
    ticket.settle(handed);
  }
}

/**
 * Why the requests' signals abort when the client went away: an AbortError, with the read or
 * write error that told it as its `cause` (see Pipeline.#clientLeft).
 */
function clientGone(cause?: unknown): DOMException {
  return abortError("The client went away", cause);
}

/**
 * An error as the reason of the requests' signals: an `AbortError` as it is, anything else
 * (a response body that failed, a read that failed) as the `cause` of one, so that a handler
 * always sees an `AbortError`, as on `Deno.serve`.
 */
function asAbort(error: unknown): DOMException {
  if (error instanceof DOMException && error.name === "AbortError") return error;
  return abortError("The connection failed", error);
}

/** A `DOMException` named `AbortError` with `message`, and `cause` when there is one. */
function abortError(message: string, cause?: unknown): DOMException {
  const reason = new DOMException(message, "AbortError");
  // DOMException takes { name, cause } in Deno, but not in its TypeScript declarations.
  if (cause !== undefined) {
    Object.defineProperty(reason, "cause", { value: cause, writable: true, configurable: true });
  }
  return reason;
}

/** A data sink that drops what it is given (see Pipeline.#drainable). */
const DROP = { enqueue(): void {} };
/** What #unlessCut gives when a cut came first. */
const CUT: unique symbol = Symbol("cut");
// How long a body's read-ahead waits for a handler to take the bytes already read (ms).
const WATCH_PAUSE = 50;
// How long a closing connection reads and drops input after its FIN (milliseconds).
const LINGER_TIME = 2000;
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/**
 * `bytes`, or a copy when it is one of the module's constant byte strings: a writable may
 * transfer what it is given (a byte stream's enqueue does), which would detach a constant for
 * every connection in the process. Only a stream writer needs this: a direct write copies.
 */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes === CRLF || bytes === LAST_CHUNK || bytes === CONTINUE ? bytes.slice() : bytes;
}
const CRLF = Uint8Array.of(13, 10);
const DONE: Promise<void> = Promise.resolve();
const NOTHING = new Uint8Array(0);
/** What #writeResponse gives for a body to read ahead first. */
const READ_BODY: unique symbol = Symbol("read body");

/**
 * Why a handler's response cannot be written as it is, or null; `status` is its status, read
 * once. Only a final status (200–599) is written, as by Deno.serve: `Response.error()` (a
 * network error, status 0) is no HTTP response, and a status that a subclass's getter made up
 * could be anything — a 1xx goes out as an interim response, and on a kept-alive connection
 * the client takes the next response for this request's final one (RFC 9110 §15.2); a
 * string could carry CR LF into the head. 101 is written only by this engine's own upgrades
 * (see Pipeline.#upgrade). A body the handler read, or holds a reader of, cannot be sent.
 */
function unsendable(response: Response, status: number): TypeError | null {
  if (status === 101 || nativeUpgrades.has(response)) {
    // Deno.upgradeWebSocket's response (upgradeWebSocket was given a request this engine did
    // not make, such as a copy): only Deno.serve can complete it.
    return new TypeError(
      "Cannot answer with 101: the upgrade was made by Deno.upgradeWebSocket, which only Deno.serve completes; pass upgradeWebSocket the request the wire engine gave the handler, not a copy",
    );
  }
  if (response.type === "error") {
    return new TypeError(
      "Cannot send the response: Response.error() is a network error, not an HTTP response",
    );
  }
  if (!(Number.isInteger(status) && status >= 200 && status <= 599)) {
    const shown = typeof status === "number"
      ? String(status)
      : typeof status === "string"
      ? JSON.stringify((status as string).slice(0, 64))
      : typeof status;
    return new TypeError(
      `Cannot send the response: its status ${shown} is not a final status (200-599)`,
    );
  }
  const body = response.body;
  if (body !== null && (response.bodyUsed || body.locked)) {
    return new TypeError("Cannot send the response: its body was already read or is locked");
  }
  return null;
}

/**
 * The error of a response body chunk that is not a Uint8Array, the only chunk a body stream
 * may give (the Fetch standard fails the body with a TypeError then, and so does Deno.serve).
 * A string, an array or a Uint16Array would otherwise go out as that many zero bytes.
 */
function notBytes(chunk: unknown): TypeError {
  return new TypeError(
    `Cannot send the response body: a chunk of type ${kindOf(chunk)} is not a Uint8Array`,
  );
}

/** Cancels the body of a response that will not be written (one locked already is left). */
function discardBody(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/**
 * A direct read that first hands out the bytes `first` resolves with (as many as each read's
 * buffer takes), then reads with `read`.
 */
function readAfter(
  first: Promise<Uint8Array>,
  read: (p: Uint8Array) => Promise<number | null>,
): (p: Uint8Array) => Promise<number | null> {
  let pending: Promise<Uint8Array> | null = first;
  let left: Uint8Array | null = null;
  return async (p) => {
    if (pending !== null) {
      left = await pending;
      pending = null;
    }
    if (left !== null && left.length > 0) {
      const n = Math.min(p.length, left.length);
      p.set(left.subarray(0, n));
      left = n === left.length ? null : left.subarray(n);
      return n;
    }
    return read(p);
  };
}
