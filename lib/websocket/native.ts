// Copyright 2026 the wirestream authors. MIT license.
/**
 * The native engine's WebSocket: a {@linkcode MessageSession} over the socket of
 * `Deno.upgradeWebSocket` (`Deno.serve`, `deno serve`, Deno Deploy), where Deno reads and
 * writes the frames, answers pings and runs the close handshake.
 *
 * @module
 */

import { checkDuration, checkLimit } from "../_options.ts";
import { nativeUpgrades } from "../http/_upgrade.ts";
import {
  asFailure,
  closeCap,
  closeCapError,
  closedError,
  closeGoingAway,
  type CloseInfo,
  closeReason,
  coreOptions,
  messageLimits,
  type OutgoingQueue,
  outgoingStream,
  sendQueueError,
  sentCode,
  WRITE_OVERHEAD,
} from "./_session_core.ts";
import type { Role } from "./decoder.ts";
import { registerOpen } from "./_open.ts";
import { Inbox, ITEM_OVERHEAD } from "./_inbox.ts";
import { MessageTooBigError, WebSocketError } from "./error.ts";
import { CloseCode, Frame, isValidCloseCode } from "./frame.ts";
import type { Message } from "./message.ts";
import type { MessageSession } from "./session.ts";
import { checkUpgradeRequest } from "./handshake.ts";
import type { UpgradeWebSocketOptions, WebSocketUpgrade } from "./upgrade.ts";

/** The default of `maxQueuedBytes`: 8 MiB. */
const DEFAULT_MAX_QUEUED_BYTES = 8_388_608;
/** Sent bytes after which the native session reads Deno's `bufferedAmount` again. */
const UNREAD_LIMIT = 1 << 20;
/** The default of `maxBufferedAmount`: 1 MiB. */
const DEFAULT_MAX_BUFFERED_AMOUNT = 1_048_576;
/** The longest pause between two looks at `bufferedAmount`, in milliseconds. */
const MAX_PAUSE = 16;
/**
 * The message of Deno's `error` event for a peer's close frame with a code it does not accept
 * (1005, 1006, 1015, unassigned ones such as 999, 1004, 1016, 2999 and 5000, and also 1014):
 * Deno then sends close 1002 and reports the end with code 0.
 */
const INVALID_CLOSE_CODE = "Invalid close code";
/** Where the errors for what only our frame codec can do send the user. */
const WIRE_ENGINE = "the wire engine (httpServer or startConnectionPipeline)";

/**
 * What the native engine throws for what only the wire engine can do (raw frames, masking,
 * no `Deno.upgradeWebSocket`): a `TypeError`, of a class of its own so that the application
 * can answer it with 501. Internal.
 */
export class WireEngineRequiredError extends TypeError {
  /** @param what What the native engine cannot do, and why. */
  constructor(what: string) {
    super(`${what}; use ${WIRE_ENGINE}`);
    this.name = "TypeError";
  }
}

const OPEN = 0, CLOSING = 1, CLOSED = 2;
/** The most bytes a frame header takes, counted with each send into Deno's buffer. */
const FRAME_HEAD = 14;

/** Options of {@linkcode NativeWebSocketSession}. */
export interface NativeWebSocketSessionOptions {
  /**
   * Ktor's `timeout`, in milliseconds: how long the socket may take to open (the handler
   * must return the upgrade's response), how long a send may wait while Deno's send buffer
   * does not drain at all, and how long to wait for the peer's close frame once ours went to
   * Deno (behind the sends made before it). Past it the session ends with 1006, and in any
   * case 2 × `timeout` after `close()`: sends made before `close()` that still wait then (a
   * peer that reads them too slowly) are dropped, the peer is sent 1011 `"close timeout"` and
   * `closed` gives 1006 `"close timeout"`. From 1 ms; `Infinity` waits forever.
   *
   * @default {15000}
   */
  timeout?: number;
  /**
   * The largest frame payload received, in bytes. Deno assembles each message before we see
   * it, so this engine cannot see frames: it applies the limit to whole messages (1009 above
   * it), which refuses a message over it even when the peer split it into smaller frames.
   * Messages sent are not split (Deno sends each as one frame). At least 1; `Infinity` lifts
   * it. By default as large as `maxMessageSize`, as on the wire engine.
   *
   * @default {maxMessageSize, and at least 125}
   */
  maxFrameSize?: number;
  /**
   * The largest message received, in bytes (text counted in UTF-8): 1009 above it, once Deno
   * has assembled it. So it bounds what reaches `incoming`, not the memory Deno uses on the
   * way: Deno drops the connection without a close frame on a frame over 64 MiB, whatever
   * this says, but assembles a message of smaller fragments whatever its size (measured with
   * Deno 2.9: 256 MiB in 1 MiB fragments took the server from 36 to 303 MiB of RSS before
   * the message was seen, and a bare `Deno.upgradeWebSocket` does the same). On the open
   * internet, use the wire engine, which refuses at the fragment that crosses this.
   * `Infinity` lifts it.
   *
   * @default {4194304}
   */
  maxMessageSize?: number;
  /**
   * The most bytes of unread messages to hold, in bytes (text counted in UTF-8, plus 256 per
   * message). Deno's WebSocket has no read backpressure: it reads the connection as fast as
   * messages come, whether `incoming` is read or not. So a message that arrives while unread
   * ones are queued and takes the total over this limit fails the session with 1008 (policy
   * violation: the peer sends faster than the application reads); `incoming` errors after the
   * messages queued before it. A message is never refused for being alone in the queue, so
   * at most the larger of this and `maxMessageSize` is held. `Infinity` lifts it. A peer that
   * is still sending usually sees the connection reset rather than the 1008: Deno ends the
   * connection when a data frame arrives after its close frame.
   *
   * @default {8388608}
   */
  maxQueuedBytes?: number;
  /**
   * The most bytes handed to Deno and not yet written (`socket.bufferedAmount`) before a send
   * waits, in bytes. A send resolves once its message is handed to Deno; while the buffer is
   * above this, sends wait in order, looking again every 1 to 16 ms, so a peer that stops
   * reading holds at most this plus one message in Deno's buffer. `Infinity` never waits.
   * The session reads `bufferedAmount` only once what it handed to Deno since its last
   * reading could have taken it over this, so the bound holds for what is sent through the
   * session, not for what is sent on the socket directly.
   *
   * @default {1048576}
   */
  maxBufferedAmount?: number;
  /**
   * The most bytes of messages waiting their turn to be sent (while Deno's buffer is above
   * `maxBufferedAmount`), in bytes, a text counted at 3 bytes per UTF-16 unit and each send
   * waiting counted with 1024 bytes more (what it holds besides its message, so that a flood
   * of empty messages is bounded too). A send made while more than this waits fails the
   * session with 1011 (`"send queue full"`), and that send rejects: a sender that does not
   * await its sends cannot queue without bound. Writes to `outgoing` that are not awaited
   * wait in the stream, counted and refused the same way. The wire engine's option of the
   * same name, on this engine's queue.
   *
   * @default {8388608}
   */
  maxSendQueue?: number;
  /**
   * Ktor's `masking`. Deno never masks what a server sends, so only `false` is accepted:
   * `true` throws a `TypeError` that points to the wire engine.
   *
   * @default {false}
   */
  masking?: boolean;
  /** The subprotocol agreed in the handshake, reported as `protocol`. @default {""} */
  protocol?: string;
  /** Aborting it closes the session with 1001 (going away). */
  signal?: AbortSignal;
}

/** The options of a native session, checked and with their defaults. */
interface NativeSettings {
  timeout: number;
  maxFrameSize: number;
  maxMessageSize: number;
  maxQueuedBytes: number;
  maxBufferedAmount: number;
  maxSendQueue: number;
}

/**
 * Checks the limits only the native engine has, so that both engines refuse the same bad
 * values.
 */
export function nativeLimits(
  options: { maxQueuedBytes?: number; maxBufferedAmount?: number },
): { maxQueuedBytes: number; maxBufferedAmount: number } {
  return {
    maxQueuedBytes: checkLimit(
      "maxQueuedBytes",
      options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    ),
    maxBufferedAmount: checkLimit(
      "maxBufferedAmount",
      options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED_AMOUNT,
    ),
  };
}

function nativeSettings(options: NativeWebSocketSessionOptions): NativeSettings {
  if (options.masking === true) {
    throw maskingRefused();
  }
  const { maxMessageSize, maxFrameSize } = messageLimits(options);
  const core = coreOptions({
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
    maxFrameSize,
    ...(options.maxSendQueue === undefined ? {} : { maxSendQueue: options.maxSendQueue }),
  });
  return {
    timeout: core.timeout,
    maxFrameSize: core.maxFrameSize,
    maxSendQueue: core.maxSendQueue,
    maxMessageSize,
    ...nativeLimits(options),
  };
}

/**
 * Maps Ktor's `pingInterval` and `timeout` onto `Deno.upgradeWebSocket`'s `idleTimeout`, in
 * seconds. Deno sends a ping after half of it without a data frame or pong received and
 * closes with 1001 after the other half without one: a text, binary or pong frame resets it,
 * a ping from the peer does not (Deno answers it, but a peer that pings and never answers
 * Deno's ping is closed all the same). An
 * `idleTimeout` of `pingInterval + timeout` keeps the core's bound on how long a silent peer
 * is kept. Without pings (`null`, `Infinity`), or with no timeout, Deno's is turned off
 * (0): it cannot ping without closing.
 */
export function idleTimeoutOf(pingInterval: number | null, timeout: number): number {
  if (pingInterval === null || pingInterval === Infinity) return 0;
  checkDuration("pingInterval", pingInterval, 1);
  if (timeout === Infinity) return 0;
  return (pingInterval + timeout) / 1000;
}

/** The UTF-8 size of `text`, in bytes (a lone surrogate counts 3, as its U+FFFD does). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (
      unit >= 0xd800 && unit < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 units
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/** What an unread message counts against `maxQueuedBytes`. */
function queuedSize(message: Message): number {
  return ITEM_OVERHEAD + (typeof message === "string" ? utf8Length(message) : message.length);
}

/**
 * A WebSocket message session on the native engine: the same {@linkcode MessageSession} as
 * `WebSocketSession`, over the socket that `Deno.upgradeWebSocket` returns (`Deno.serve`,
 * `deno serve`, Deno Deploy). `upgradeWebSocket` creates it for any request the wire engine
 * did not serve; construct it yourself only around a socket you upgraded, right away (messages
 * that arrive before it is constructed are not seen). Deno handles the frames: it assembles
 * messages, answers pings and closes, and sends each message as one frame. How each of Ktor's
 * options maps onto what Deno offers:
 *
 * - **`pingInterval` and `timeout`** become `Deno.upgradeWebSocket`'s `idleTimeout` of
 *   `pingInterval + timeout` (see `upgradeWebSocket`): Deno pings after half of it without a
 *   data frame or pong received and closes with 1001 (not the core's 1011) after the other
 *   half. A text, binary or pong frame resets it; a ping from the peer does not. Deno cannot
 *   ping without that timeout.
 * - **`timeout`** also bounds the open, a send whose wait sees Deno's buffer never drain, and
 *   the wait for the peer's close frame after ours; each ends the session with 1006. Deno
 *   offers no way to cut a connection, so after a timeout the socket is left to Deno, which
 *   frees it when the peer goes.
 * - **`maxFrameSize` and `maxMessageSize`** are checked on each message Deno hands over,
 *   after Deno assembled it (not as it arrives): the smaller applies, 1009 above it.
 * - **`protocols`** are chosen by `upgradeWebSocket` (`parseProtocols`, `selectProtocol`),
 *   which writes the choice into the 101's `Sec-WebSocket-Protocol` itself: the `protocol`
 *   option of `Deno.upgradeWebSocket` refuses a valid offer written without a space after
 *   its commas (`chat,superchat`). The choice is `protocol` here.
 * - **Raw frames and `masking: true`** need our own frame codec: they throw a `TypeError`
 *   that names the wire engine.
 *
 * Backpressure: Deno's WebSocket has no read backpressure, so `incoming` is pull-based only
 * from a queue bounded by `maxQueuedBytes` (1008 past it). A send waits while
 * `socket.bufferedAmount` is above `maxBufferedAmount`.
 *
 * Closing: {@linkcode close} sends its close frame after the messages sent before it and, once it
 * went to Deno, waits up to `timeout` for the peer's; a close from the peer is answered by Deno
 * with the same code. `closed` then gives the peer's code and reason, `wasClean` true. A connection
 * that drops gives 1006, except that after our close frame Deno may report a drop as a clean 1005.
 * A failure (1008, 1009) sends its code, which `closed` reports with `wasClean` false.
 *
 * A socket that `Deno.serve` closes itself is reported by Deno (2.9) exactly as a peer's close
 * frame without a code (what a browser's or ws's `close()` sends): the same close event
 * (1005, clean), no `error` event before it, and `readyState` open until then. So when the
 * server shuts down (`shutdown()`, which sends the peer its own 1001) or its `signal` aborts
 * (which drops the connection: the peer sees 1006), `closed` gives `{ code: 1005, reason: "",
 * wasClean: true }` whatever the peer saw, and the session cannot tell. Close the sessions
 * first (`close(1001)`, then wait for `closed`) and shut the server down after, as
 * `embeddedServer`'s `stop()` does: both sides then see 1001.
 * Deno's close-code check lacks 1014 (Bad Gateway): `close(1014)` throws a `RangeError` (Deno
 * would send it but take the peer's echo for an invalid close), and a peer's close 1014 is
 * answered by Deno with 1002, as below; the wire engine handles 1014.
 *
 * Invalid frames from the peer: Deno checks them itself, reports why in an `error` event, and
 * then ends the connection, reporting code 0. `closed` and the error `incoming` ends with (a
 * {@linkcode WebSocketError} whose message quotes Deno's reason, and whose `cause` is Deno's
 * error) say:
 *
 * - **A close code Deno does not accept** (1005, 1006, 1015, unassigned ones such as 999,
 *   1004, 1016, 2999, 5000, and 1014; Deno says `"Invalid close code"`): Deno sends close
 *   1002, so `closed` gives `{ code: 1002, reason: "", wasClean: false }`.
 * - **Any other violation** (a 1-byte close payload, invalid UTF-8 in a text or close reason,
 *   reserved bits set, an unknown opcode, a continuation with nothing to continue, a ping
 *   over 125 bytes or fragmented): Deno drops the connection without a close frame, so
 *   `closed` gives `{ code: 1006, reason: "", wasClean: false }`, as for a connection that
 *   ends without a close frame (whose error then quotes Deno's `"Unexpected EOF"`).
 * Deno ends the connection when a data frame arrives after its close frame, so a peer still
 * sending when we close may lose our close frame to the reset and see 1006 instead; and our
 * `closed` then gives 1006 (`wasClean` false) even when the peer's close frame follows its
 * data, as RFC 6455 §5.5.1 allows it to. The wire engine reads past such data and reports the
 * peer's close.
 *
 * Violations Deno 2.9 lets through (measured against a raw client; a bare
 * `Deno.upgradeWebSocket` server behaves the same, and the wire engine fails each with the
 * code RFC 6455 calls for): unmasked frames from the client are taken (§5.1 says fail);
 * control frames whose length is written in 16 bits are taken; a close whose reason makes
 * its payload longer than 125 bytes is taken and echoed, so Deno's own answer breaks §5.5; a
 * new data frame inside an unfinished fragmented message is ignored while both leave `fin`
 * unset, and drops the connection when the second one sets it (§5.4 says fail with 1002);
 * and a fragmented text whose last fragment ends inside a UTF-8 sequence reaches `incoming`
 * without those last bytes, and without an error (§8.1 says fail with 1007): the session is
 * handed the text, not its bytes, so it cannot tell.
 *
 * @example A session whose socket never opens ends with 1006 after `timeout`
 * ```ts
 * import { NativeWebSocketSession } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * // A request Deno.serve did not receive: Deno upgrades it, but its socket never opens.
 * const request = new Request("http://localhost/", {
 *   headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
 * });
 * const { socket } = Deno.upgradeWebSocket(request);
 * assert.throws(() => new NativeWebSocketSession(socket, { masking: true }), TypeError);
 * const session = new NativeWebSocketSession(socket, { timeout: 20 });
 * const early = session.send("waits for the open");
 * assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
 * await assert.rejects(early, { closeCode: 1006 });
 * assert.equal(session.signal.aborted, true);
 * ```
 *
 * @example An echo on Deno.serve
 * ```ts ignore
 * import { HttpError, upgradeWebSocket } from "@wirestream/wirestream";
 *
 * Deno.serve((request) => {
 *   try {
 *     // A NativeWebSocketSession here: Deno.serve created the request.
 *     const { response, session } = upgradeWebSocket(request, { maxMessageSize: 65_536 });
 *     (async () => {
 *       for await (const message of session.incoming) await session.send(message);
 *     })().catch(() => {}); // the session failed; `closed` tells how
 *     return response;
 *   } catch (error) {
 *     if (error instanceof HttpError) return error.toResponse();
 *     throw error;
 *   }
 * });
 * ```
 */
export class NativeWebSocketSession implements MessageSession {
  /** The messages received: `string` for text, `Uint8Array` for binary. */
  readonly incoming: ReadableStream<Message>;
  /** The subprotocol agreed in the handshake, or `""`. */
  readonly protocol: string;
  readonly #closed: Promise<CloseInfo>;
  readonly #socket: WebSocket;
  readonly #settings: NativeSettings;
  /** The smaller of `maxFrameSize` and `maxMessageSize`, and the name of the one it is. */
  readonly #limit: number;
  readonly #limitName: string;
  readonly #signal: AbortSignal | undefined;
  readonly #abort = new AbortController();
  readonly #inbox: Inbox<Message>;
  #resolveClosed!: (info: CloseInfo) => void;
  #opened: Promise<void>;
  #resolveOpened!: () => void;
  #state = OPEN;
  /** Why the session failed, when it did: the close code it sent, and the reason. */
  #failure: WebSocketError | null = null;
  #failureReason = "";
  /** A close asked for before the socket opened: sent once it does. */
  #closeOnOpen: [number, string] | null = null;
  /** What Deno's last `error` event said (why it is about to end the connection), if any. */
  #socketError: { message: string; cause: unknown } | null = null;
  /** Sends waiting their turn; they go out in order, each after the one before. */
  #waiting = 0;
  /** The bytes of the sends waiting (as `send` counts them). */
  #waitingBytes = 0;
  /**
   * What Deno's send buffer holds, at most: the last `bufferedAmount` it reported while its
   * socket was open, plus what was sent since. It reads 0 once the socket is closed (by us or
   * by the peer), whatever it still holds.
   */
  #denoAmount = 0;
  /**
   * What was sent since `#denoAmount` was read: past UNREAD_LIMIT it is read again after a
   * send, so that the estimate stays within that of Deno's count (with `maxBufferedAmount`
   * Infinity nothing else would read it).
   */
  #unread = 0;
  /** `bufferedAmount` once the session ended: what was never written. */
  #endedAmount = 0;
  /** What waits in the `outgoing` stream's own queue. */
  readonly #outgoingQueue: OutgoingQueue = { queued: 0 };
  #outgoing: WritableStream<Message> | null = null;
  #tail: Promise<void> = Promise.resolve();
  /**
   * How many more bytes may go to Deno before `bufferedAmount` must be read again: the limit,
   * less the buffer's size when last read and what was sent since. Negative: read it.
   */
  #room = -1;
  #openTimer: ReturnType<typeof setTimeout> | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Ends a close that waited behind sends, {@linkcode closeCap} after close(). */
  #capTimer: ReturnType<typeof setTimeout> | undefined;
  /** Whether our close frame went to Deno. */
  #closeSent = false;
  #pauseTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | null = null;

  /**
   * Starts a session on a socket from `Deno.upgradeWebSocket`, still connecting or open.
   *
   * @param socket The socket; its `binaryType` is set to `"arraybuffer"`.
   * @param options The timeout, the limits and the agreed subprotocol.
   * @throws {TypeError} For `masking: true`, or a socket that is closing or closed.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(socket: WebSocket, options: NativeWebSocketSessionOptions = {}) {
    this.#settings = nativeSettings(options);
    if (socket.readyState !== WebSocket.CONNECTING && socket.readyState !== WebSocket.OPEN) {
      throw new TypeError("Cannot start session: the socket is closing or closed");
    }
    // Deno marks its socket closing or closed before it tells of the close (its close event
    // waits for the close op): a send fails from then on, and that is the session's own end.
    registerOpen(this, () => this.#state === OPEN && this.#socket.readyState <= WebSocket.OPEN);
    const { maxFrameSize, maxMessageSize } = this.#settings;
    this.#limit = Math.min(maxFrameSize, maxMessageSize);
    this.#limitName = maxFrameSize < maxMessageSize ? "maxFrameSize" : "maxMessageSize";
    this.#socket = socket;
    this.protocol = options.protocol ?? "";
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#opened = new Promise((resolve) => (this.#resolveOpened = resolve));
    this.#inbox = new Inbox<Message>({
      cancel: () => void this.close(),
      bound: { maxQueuedBytes: this.#settings.maxQueuedBytes, size: queuedSize },
    });
    this.incoming = this.#inbox.stream;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", this.#onOpen);
    socket.addEventListener("message", this.#onMessage);
    socket.addEventListener("close", this.#onClose);
    socket.addEventListener("error", this.#onError);
    if (socket.readyState === WebSocket.OPEN) {
      this.#resolveOpened();
    } else if (this.#settings.timeout !== Infinity) {
      this.#openTimer = setTimeout(this.#openTimedOut, this.#settings.timeout);
    }
    abandon.set(this, (reason) => {
      if (this.#socket.readyState === WebSocket.CONNECTING) this.#neverOpened(reason.message);
    });
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (this.#signal?.aborted) queueMicrotask(this.#onAbort);
  }

  /**
   * Where messages to send go; closing it closes the session with 1000. Made on first use: an
   * idle session that never writes through it does not carry a stream (about 2.5 KB).
   */
  get outgoing(): WritableStream<Message> {
    return this.#outgoing ??= outgoingStream<Message>(
      this,
      (error, reason) => this.#fail(error, reason),
      (action) => this.#checkOpen(action),
      this.#settings.maxSendQueue,
      this.#outgoingQueue,
    );
  }

  /** The role of this endpoint: always `"server"` (Deno's sockets from an upgrade). */
  get role(): Role {
    return "server";
  }

  /** Resolves with how the session ended; never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.#closed;
  }

  /** Aborts when the session ends, with a {@linkcode WebSocketError} carrying the code. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * What the messages sent and not yet written count: those waiting for room in Deno's send
   * buffer and in `outgoing`, as `maxSendQueue` counts them, and Deno's `bufferedAmount` (see
   * {@linkcode MessageSession.bufferedAmount}). Deno's socket reads 0 once it is closed (by
   * us or by the peer), so from then on its part is the last amount it reported while open,
   * plus what was sent after that reading: an upper bound, since it may have written some
   * since. After a clean close that part is 0
   * (Deno wrote it all before the close frames); after any other end it stays, with the sends
   * that never went to Deno.
   */
  get bufferedAmount(): number {
    if (this.#state === CLOSED) return this.#endedAmount;
    // Once closed, Deno's socket reads 0 however much it still holds: see #denoAmount.
    const socket = this.#socket;
    if (socket.readyState === WebSocket.OPEN) this.#readDeno();
    return this.#waitingBytes + this.#outgoingQueue.queued + this.#denoAmount;
  }

  /**
   * Sends a message, once the socket is open and Deno's send buffer holds at most
   * `maxBufferedAmount` bytes; sends go out in the order they were made.
   *
   * @param message A string (text) or bytes (binary).
   * @returns A promise that resolves when the message was handed to Deno.
   * @throws {WebSocketError} 1006 when the session is closing or closed, or when Deno's buffer
   * did not drain within `timeout`; 1011 when more than `maxSendQueue` bytes of sends wait
   * (the session fails).
   * @throws {TypeError} When the message is neither a string nor a `Uint8Array`.
   */
  async send(message: Message): Promise<void> {
    if (typeof message !== "string" && !(message instanceof Uint8Array)) {
      throw new TypeError("Cannot send message: it is neither a string nor a Uint8Array");
    }
    this.#checkOpen("send a message");
    // What it adds to Deno's buffer, at most: a string takes at most 3 UTF-8 bytes per
    // UTF-16 unit. Deno counts payloads only; FRAME_HEAD errs on the safe side.
    const size = (typeof message === "string" ? message.length * 3 : message.length) +
      FRAME_HEAD;
    if (
      this.#waiting === 0 && this.#socket.readyState === WebSocket.OPEN && this.#hasRoom(size)
    ) {
      this.#write(message, size, "send a message");
      return;
    }
    if (this.#waitingBytes > this.#settings.maxSendQueue) {
      const error = sendQueueError(
        "send a message",
        this.#waitingBytes,
        this.#settings.maxSendQueue,
      );
      this.#fail(error, "send queue full");
      throw error;
    }
    // Each send waiting holds its message and a suspended call: counted with WRITE_OVERHEAD.
    const queued = size + WRITE_OVERHEAD;
    this.#waiting++;
    this.#waitingBytes += queued;
    const turn = this.#tail;
    let done!: () => void;
    this.#tail = new Promise((resolve) => (done = resolve));
    try {
      await turn;
      const amount = await this.#drained("send a message");
      this.#write(message, size, "send a message");
      this.#room = this.#settings.maxBufferedAmount - amount - size;
    } finally {
      this.#waiting--;
      this.#waitingBytes -= queued;
      done();
    }
  }

  /**
   * Starts the close handshake: after the messages already sent, Deno sends a close frame and
   * waits for the peer's (RFC 6455 §7). `incoming` ends after the messages received so far.
   * Does nothing more once the handshake has started.
   *
   * Deno's close-code check lacks 1014 (Bad Gateway): it would send 1014 but take the peer's
   * echo for an invalid close (and answer a peer's 1014 with 1002), so 1014 is refused here.
   *
   * @param code A close code that may be sent (RFC 6455 §7.4), except 1014.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns The session's {@linkcode closed} promise.
   * @throws {RangeError} When the code may not be sent or the reason is too long, or for 1014,
   * which Deno cannot complete a close handshake with (use the wire engine).
   */
  close(code: number = CloseCode.NormalClosure, reason = ""): Promise<CloseInfo> {
    if (this.#state === OPEN) {
      Frame.close(code, reason); // the core's checks: throws RangeError before any change
      if (code === CloseCode.BadGateway) {
        // Deno sends it, but its close-code check lacks 1014: it takes the peer's echo for an
        // invalid close and reports 1005, so the handshake cannot complete (RFC 6455 §7.4.1).
        throw new RangeError(
          `Cannot close with code 1014: Deno cannot complete a close handshake with it; use ${WIRE_ENGINE}`,
        );
      }
      this.#state = CLOSING;
      this.#inbox.end();
      if (this.#waiting === 0) this.#sendClose(code, reason);
      else {
        // Behind the sends made before it, each of which fails the session when Deno's buffer
        // does not drain for `timeout` (#stalled, which sends its own code), and all of which
        // must go within closeCap (#capped). The wait for the peer's close begins once our
        // close frame is handed to Deno.
        this.#tail.then(() => {
          if (this.#state !== CLOSING) return; // ended meanwhile: #stalled sent its own code
          const failure = this.#failure; // one that came while closing (outgoing aborted)
          if (failure === null) this.#sendClose(code, reason);
          else this.#sendClose(sentCode(failure), this.#failureReason);
        });
        const { timeout } = this.#settings;
        if (timeout !== Infinity) this.#capTimer = setTimeout(this.#capped, closeCap(timeout));
      }
    }
    return this.#closed;
  }

  #checkOpen(action: string): void {
    if (this.#state !== OPEN) throw this.#closedError(action);
  }

  #closedError(action: string): WebSocketError {
    return closedError(action, this.#state === CLOSED);
  }

  /**
   * Whether Deno's send buffer holds at most `maxBufferedAmount` bytes; if so, counts `size`
   * more bytes into it. Reading `bufferedAmount` is a call into Deno (about 0.2 µs with 512
   * sockets open), so it is read only when what was handed to Deno since the last reading
   * could have taken it over the limit: only our sends make it grow.
   */
  #hasRoom(size: number): boolean {
    let room = this.#room;
    if (room < 0) {
      room = this.#settings.maxBufferedAmount - this.#readDeno();
      if (room < 0) {
        this.#room = room;
        return false;
      }
    }
    this.#room = room - size;
    return true;
  }

  /** Reads Deno's `bufferedAmount` (a call into Deno) into #denoAmount, and gives it. */
  #readDeno(): number {
    this.#unread = 0;
    return this.#denoAmount = this.#socket.bufferedAmount;
  }

  #write(message: Message, size: number, action: string): void {
    try {
      if (
        typeof message !== "string" && message.byteOffset === 0 &&
        message.buffer instanceof ArrayBuffer && message.byteLength === message.buffer.byteLength
      ) {
        // The same bytes; Deno's op for an ArrayBuffer is a fast call, the one for a view is
        // not (about 0.15 µs less per send).
        this.#socket.send(message.buffer);
      } else if (typeof message !== "string" && !(message.buffer instanceof ArrayBuffer)) {
        // Deno refuses views of a SharedArrayBuffer (a TypeError that read as a failed
        // connection); the wire engine sends them: send a copy.
        this.#socket.send(message.slice());
      } else {
        this.#socket.send(message);
      }
      // What Deno holds now, at most, until it is read again (see #denoAmount).
      this.#denoAmount += size;
      if ((this.#unread += size) >= UNREAD_LIMIT) this.#readDeno();
    } catch (cause) {
      // Deno's socket closed under us (its close event is on its way).
      throw new WebSocketError(
        `Cannot ${action}: the connection failed`,
        CloseCode.AbnormalClosure,
        {
          cause,
        },
      );
    }
  }

  /**
   * Waits until the socket is open and Deno's send buffer is at or below
   * `maxBufferedAmount`, and gives the buffer's size then. Fails the session when the buffer
   * did not shrink for `timeout`.
   */
  async #drained(action: string): Promise<number> {
    const { maxBufferedAmount, timeout } = this.#settings;
    let pause = 1, lowest = Infinity, since = Date.now();
    while (true) {
      if (this.#state === CLOSED || this.#failure !== null) throw this.#closedError(action);
      const socket = this.#socket;
      if (socket.readyState === WebSocket.CONNECTING) {
        await this.#opened;
        continue;
      }
      if (socket.readyState !== WebSocket.OPEN) throw this.#closedError(action);
      const amount = this.#readDeno();
      if (amount <= maxBufferedAmount) return amount;
      if (amount < lowest) {
        lowest = amount;
        since = Date.now();
      } else if (Date.now() - since >= timeout) {
        const error = new WebSocketError(
          `Cannot ${action}: Deno's send buffer of ${amount} bytes did not drain within the timeout of ${timeout} ms`,
          CloseCode.AbnormalClosure,
        );
        this.#stalled(error);
        throw error;
      } else {
        pause = Math.min(pause * 2, MAX_PAUSE); // no progress: look less often
      }
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#pauseTimer = setTimeout(resolve, pause);
      });
      this.#wake = null;
    }
  }

  /** Our close frame goes to Deno: the wait for the peer's begins. */
  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    this.#closeSocket(code, reason);
    this.#armCloseTimer();
  }

  /** Closes the socket, or has it closed once it opens. */
  #closeSocket(code: number, reason: string): void {
    const socket = this.#socket;
    if (socket.readyState === WebSocket.CONNECTING) {
      this.#closeOnOpen = [code, reason];
    } else if (socket.readyState === WebSocket.OPEN) {
      // Deno reads 0 from then on, with what it still holds unwritten (see bufferedAmount).
      this.#readDeno();
      socket.close(code, reason);
    }
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.#settings.timeout === Infinity) return;
    // The peer did not answer our close in time: give up on it (Deno keeps the socket).
    this.#closeTimer = setTimeout(() => this.#finish(), this.#settings.timeout);
  }

  /** Fails the session: send the error's close code, then wait for the peer's close. */
  #fail(error: unknown, reason?: string): void {
    if (this.#state === CLOSED) return;
    const failure = asFailure(error);
    if (this.#failure === null) {
      this.#failure = failure;
      this.#failureReason = reason ?? closeReason(failure.message);
    }
    this.#inbox.fail(failure);
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#sendClose(sentCode(failure), this.#failureReason);
  }

  /** A send saw Deno's buffer stuck for `timeout`: the peer does not read. End the session. */
  #stalled(error: WebSocketError): void {
    if (this.#failure === null) {
      this.#failure = error;
      this.#failureReason = "write timeout"; // reported locally; the close frame waits behind
    }
    this.#inbox.fail(error);
    // Also when our close waits behind the sends (CLOSING): the peer must not read a normal
    // close after the messages that never went out.
    if (this.#state !== CLOSED) this.#closeSocket(CloseCode.InternalError, "write timeout");
    this.#finish();
  }

  /**
   * closeCap after a close() that waited behind sends. If our close went to Deno, the peer did
   * not answer it in time (as the close timer). If sends still wait, the peer reads too slowly:
   * as #stalled, those never go, so the peer is sent 1011, not the close asked for.
   */
  #capped = (): void => {
    if (this.#state !== CLOSING) return;
    if (this.#closeSent) {
      this.#finish();
      return;
    }
    if (this.#failure === null) {
      this.#failure = closeCapError(this.#settings.timeout);
      this.#failureReason = "close timeout"; // reported locally; the peer is sent 1011
    }
    this.#closeSocket(CloseCode.InternalError, "close timeout");
    this.#finish();
  };

  #openTimedOut = (): void => {
    this.#neverOpened(
      `Cannot open: the socket did not open within the timeout of ${this.#settings.timeout} ms (was the upgrade's response returned as it is, for the request itself? Deno never opens the socket of a copied request, such as one a router made with new Request(request))`,
    );
  };

  /** Ends the session with 1006: its socket did not open and will not. */
  #neverOpened(message: string): void {
    clearTimeout(this.#openTimer);
    this.#openTimer = undefined;
    if (this.#failure === null) {
      this.#failure = new WebSocketError(message, CloseCode.AbnormalClosure);
    }
    this.#inbox.fail(this.#failure);
    this.#finish();
  }

  #onAbort = (): void => closeGoingAway(this);

  #onOpen = (): void => {
    clearTimeout(this.#openTimer);
    this.#resolveOpened();
    if (this.#closeOnOpen !== null) this.#socket.close(...this.#closeOnOpen);
  };

  #onMessage = (event: MessageEvent): void => {
    if (this.#state !== OPEN) return; // closing: data is discarded, like a browser does
    const data: unknown = event.data;
    try {
      let message: Message;
      if (typeof data === "string") {
        message = data;
        // Quick bounds first: UTF-8 takes 1 to 3 bytes per UTF-16 unit.
        if (message.length * 3 > this.#limit) this.#checkSize(utf8Length(message));
      } else if (data instanceof ArrayBuffer) {
        message = new Uint8Array(data);
        this.#checkSize(message.length);
      } else {
        throw new WebSocketError(
          'Cannot read message: the socket\'s binaryType is no longer "arraybuffer"',
          CloseCode.InternalError,
        );
      }
      this.#inbox.push(message);
    } catch (error) {
      this.#fail(error);
    }
  };

  #checkSize(size: number): void {
    if (size > this.#limit) {
      throw new MessageTooBigError(
        `Cannot read message: size of ${size} bytes exceeds ${this.#limitName} of ${this.#limit} bytes`,
        this.#limit,
        size,
      );
    }
  }

  #onClose = (event: CloseEvent): void => {
    if (this.#state === CLOSED) return; // Deno may report a close twice
    const code = event.code;
    if (event.wasClean && code >= 1000 && code !== CloseCode.AbnormalClosure) {
      this.#inbox.end(); // the peer's close (or its answer to ours)
      this.#finish({ code, reason: event.reason, wasClean: true });
      return;
    }
    const socketError = this.#socketError;
    if (this.#failure === null && socketError !== null && (code === 0 || code === 1006)) {
      // Deno's `error` event came first: it refused a frame of the peer (or the connection
      // ended: "Unexpected EOF"), and reports the end with code 0. For a close code it does not
      // accept it sent 1002 (RFC 6455 §7.4.1); otherwise it sent no close frame.
      const deno = JSON.stringify(socketError.message.slice(0, 64));
      const sent = socketError.message === INVALID_CLOSE_CODE;
      this.#failure = new WebSocketError(
        sent
          ? `Session failed: Deno answered the peer's close frame with code 1002 (Deno: ${deno})`
          : `Cannot read: the connection ended without a close frame (Deno: ${deno})`,
        sent ? CloseCode.ProtocolError : CloseCode.AbnormalClosure,
        { cause: socketError.cause },
      );
      this.#failureReason = "";
    } else if (this.#failure === null) {
      // Deno closed with a code itself (1001: no frame within its idleTimeout), or the
      // connection dropped (Deno reports code 0).
      const sent = isValidCloseCode(code);
      this.#failure = sent
        ? new WebSocketError(
          `Session failed: Deno closed the socket with code ${code} (${
            JSON.stringify(event.reason.slice(0, 64))
          })`,
          code,
        )
        : new WebSocketError(
          "Cannot read: the connection ended without a close frame",
          CloseCode.AbnormalClosure,
        );
      this.#failureReason = sent ? event.reason : "";
    }
    this.#inbox.fail(this.#failure);
    this.#finish();
  };

  #onError = (event: Event): void => {
    if (this.#state === CLOSED) return;
    const message = event instanceof ErrorEvent ? event.message : "";
    this.#socketError = {
      message,
      cause: event instanceof ErrorEvent && event.error !== undefined ? event.error : event,
    };
  };

  /**
   * Ends the session: resolves `closed` with `info` (or with the failure, or 1006) and aborts
   * `signal`. Stops timers and waits; what Deno still holds of the socket is Deno's.
   */
  #finish(info?: CloseInfo): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    clearTimeout(this.#openTimer);
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#capTimer);
    clearTimeout(this.#pauseTimer);
    this.#wake?.();
    this.#resolveOpened(); // a send waiting for the open sees the end
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#socket.removeEventListener("message", this.#onMessage);
    this.#socket.removeEventListener("close", this.#onClose);
    this.#socket.removeEventListener("error", this.#onError);
    this.#socket.removeEventListener("open", this.#onOpen);
    if (this.#socket.readyState === WebSocket.CONNECTING) {
      // It may still open, after we gave up on it: nobody will use it then. A listener that
      // does not hold the session: Deno keeps a socket whose client left before the 101, and
      // with #onOpen that kept the whole ended session.
      this.#socket.addEventListener("open", closeLateOpen, { once: true });
    }
    const result = this.#failure !== null
      ? { code: this.#failure.closeCode, reason: this.#failureReason, wasClean: false }
      : info ?? { code: CloseCode.AbnormalClosure, reason: "", wasClean: false };
    // The sends still waiting, and `outgoing`'s queue, will never go out; after a clean close
    // Deno wrote all it held before the close frames, else what it held may not have gone.
    this.#endedAmount = this.#waitingBytes + this.#outgoingQueue.queued +
      (result.wasClean ? 0 : this.#denoAmount);
    this.#inbox.fail(
      new WebSocketError("Cannot read: the session ended", CloseCode.AbnormalClosure),
    );
    this.#abort.abort(
      new WebSocketError(`WebSocket session closed with code ${result.code}`, result.code),
    );
    this.#resolveClosed(result);
  }
}

/**
 * `upgradeWebSocket` for a request the wire engine did not serve: validates it as the wire
 * engine does, then upgrades it with `Deno.upgradeWebSocket`.
 */
export function upgradeNative(
  request: Request,
  options: UpgradeWebSocketOptions,
): WebSocketUpgrade<NativeWebSocketSession> {
  // In this order: what the caller got wrong (a second upgrade, an option's value), what the
  // request got wrong (400, 403, 426), and what needs the wire engine (raw frames, masking).
  if (upgraded.has(request)) {
    throw new TypeError("Cannot upgrade: the request was upgraded already");
  }
  const { raw: _r, protocols: _p, checkOrigin: _c, pingInterval, ...sessionOptions } = options;
  const { masking: _m, ...checked } = sessionOptions; // refused below, after the request
  const settings = nativeSettings(checked);
  const idleTimeout = idleTimeoutOf(pingInterval ?? null, settings.timeout);
  const { protocol } = checkNativeUpgrade(request, options);
  if (typeof globalThis.Deno?.upgradeWebSocket !== "function") {
    throw new WireEngineRequiredError("Cannot upgrade: Deno.upgradeWebSocket is not available");
  }
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout });
  upgraded.add(request);
  // Not Deno's `protocol` option: Deno splits the offer on ", " only, and throws for an offer
  // such as "chat,superchat" (ws sends that), which RFC 9110 §5.6.1 allows.
  if (protocol !== "") response.headers.set("sec-websocket-protocol", protocol);
  const session = new NativeWebSocketSession(socket, { ...sessionOptions, protocol });
  nativeUpgrades.set(response, (reason) => abandon.get(session)?.(reason));
  return { response, session };
}

/**
 * The refusals of {@linkcode upgradeNative} that depend on the request, in its order: the
 * handshake's (400, 403, 426), then what needs the wire engine (raw frames, masking: a
 * {@linkcode WireEngineRequiredError}). Nothing is upgraded.
 */
export function checkNativeUpgrade(
  request: Request,
  options: UpgradeWebSocketOptions,
): { protocol: string } {
  const checked = checkUpgradeRequest(
    { method: request.method, headers: request.headers },
    options,
  );
  if (options.raw === true) {
    throw new WireEngineRequiredError(
      "Cannot upgrade with raw: true on the native engine: Deno reads and answers the frames itself",
    );
  }
  if (options.masking === true) {
    throw maskingRefused();
  }
  return checked;
}

/** The refusal of `masking: true`, which the native engine cannot do. */
function maskingRefused(): WireEngineRequiredError {
  return new WireEngineRequiredError(
    "Cannot use masking: true on the native engine: Deno never masks what a server sends",
  );
}

/** Closes a socket that opened after its session ended (see #finish). */
function closeLateOpen(event: Event): void {
  (event.target as WebSocket).close(CloseCode.InternalError, "open timeout");
}

/** Ends a session whose socket will never open (see `nativeUpgrades`). */
const abandon = new WeakMap<NativeWebSocketSession, (reason: Error) => void>();

/** Requests upgraded by {@linkcode upgradeNative}. */
const upgraded = new WeakSet<Request>();
