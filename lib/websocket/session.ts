// Copyright 2026 the wirestream authors. MIT license.
/**
 * WebSocket sessions over any byte duplex: Ktor's `DefaultWebSocketSession` (messages, with
 * automatic pong, pinger and close handshake) and its raw session (every frame).
 *
 * @module
 */

import { checkDuration } from "../_options.ts";
import {
  type CloseInfo,
  type CoreOptions,
  coreOptions,
  type FrameHandler,
  messageLimits,
  SessionCore,
  type Transport,
  type TransportReady,
} from "./_session_core.ts";
import type { Role } from "./decoder.ts";
import { WebSocketError } from "./error.ts";
import { CloseCode, Frame, Opcode, readClosePayload } from "./frame.ts";
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeMessage,
  type Message,
  MessageDecoder,
} from "./message.ts";
import { PingLoop } from "./_ping_loop.ts";
import { registerOpen } from "./_open.ts";
import { Inbox, ITEM_OVERHEAD } from "./_inbox.ts";

export type { CloseInfo, Transport, TransportReady };

/** Options of {@linkcode RawWebSocketSession}. */
export interface RawWebSocketSessionOptions {
  /**
   * The endpoint's role: a server expects masked frames and sends unmasked ones, a client
   * the reverse (RFC 6455 §5.1).
   *
   * @default {"server"}
   */
  role?: Role;
  /**
   * Ktor's `timeout`, in milliseconds: how long a write may take, and how long to wait for the
   * peer's close frame (and, for a client, for the server to end the connection) after ours was
   * written (behind the messages sent before it: a peer that keeps reading them gets them all,
   * so `close()` may take longer than this, but not over 2 × `timeout` in all: then the
   * transport is cut, and if our close frame was not yet written `closed` is a failure, 1006
   * `"close timeout"`, or the peer's code with `wasClean` false if its close came meanwhile;
   * ws also cuts 30 s after `close()`). A write over it ends the session with 1006 (writes
   * that make no progress are caught between 1 and 1.25 × `timeout` after they began or the
   * last one finished; under 100 ms, within 2 × `timeout`). After a failure the wait is shorter:
   * the connection ends once the input was quiet for 250 ms, unless writes still wait for a peer
   * that does not read (a session failed for `maxSendQueue`, say): the close frame behind them is
   * flushed for up to `timeout`. From 1 ms; `Infinity` waits forever.
   *
   * @default {15000}
   */
  timeout?: number;
  /**
   * The largest data frame payload received, in bytes (1009 above it, checked from the header;
   * control frames are held to RFC 6455's 125 bytes); a message session also splits the messages it sends into frames of at most this size. At
   * least 1; `Infinity` lifts it.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
  /**
   * Ktor's `masking`: mask the frames a server sends. RFC 6455 §5.1 forbids masked server
   * frames, so standard clients fail such a connection; a client always masks.
   *
   * @default {false}
   */
  masking?: boolean;
  /**
   * The most bytes of sent messages that may wait for the transport, in bytes, each write
   * waiting (a frame, or a large frame's header and payload) counted with 1024 bytes more:
   * what the session holds for it besides its bytes, so that a flood of empty messages is
   * bounded too. A send made while more than this waits (frames queued and not yet accepted
   * by the transport, because the peer reads slower than the application sends and the sends
   * are not awaited) fails the session with 1011 (`"send queue full"`), and that send
   * rejects: so at most this plus one message is held, as `uWebSockets.js` does with
   * `maxBackpressure` and `closeOnBackpressureLimit`, and browsers when their send buffer is
   * full. Awaiting each send, or each write to `outgoing`, never queues more than one
   * message. Writes to `outgoing` that are not awaited wait in the stream, counted the same
   * way: one made while more than this waits there fails the session alike, and the writes
   * still waiting reject with its error. The frames the session sends by itself (a message
   * session's pongs and pinger pings, a close frame) do not count: at most 8 pongs and one
   * of the others are on their way. `Infinity` lifts it.
   *
   * @default {8388608}
   */
  maxSendQueue?: number;
  /** The subprotocol agreed in the handshake, reported as `protocol`. @default {""} */
  protocol?: string;
  /** Bytes already read from the transport past the handshake; decoded first. */
  buffered?: Uint8Array;
  /** Aborting it closes the session with 1001 (going away). */
  signal?: AbortSignal;
}

/** Options of {@linkcode WebSocketSession}. */
export interface WebSocketSessionOptions extends RawWebSocketSessionOptions {
  /**
   * The largest data frame payload received, in bytes (1009 above it, checked from the header,
   * so no more than this is allocated for a frame before its bytes come); the messages sent are
   * split into frames of at most this size. At least 1; `Infinity` lifts it. By default a
   * frame may be as large as a message: browsers, Deno's `WebSocket` and `ws` send each
   * message as one frame. So with `maxMessageSize: Infinity` and no `maxFrameSize`, a frame's
   * header alone has its whole declared payload allocated (or fails with 1009 when it cannot
   * be): set `maxFrameSize` then.
   *
   * @default {maxMessageSize, and at least 125}
   */
  maxFrameSize?: number;
  /**
   * Ktor's `pingInterval`, in milliseconds: send a ping this long after the start and after
   * each pong, and close with 1011 (`"ping timeout"`) when its pong does not come within
   * `timeout`. `null` or `Infinity` disables pings. Pongs are read with the messages, so a
   * consumer that stops reading `incoming` once 64 KiB of messages wait unread ends the session
   * too if it stays so for longer than `timeout`.
   *
   * @default {null}
   */
  pingInterval?: number | null;
  /**
   * The largest message received, in bytes, over all its fragments (1009 above it, at the
   * fragment that crosses it). `Infinity` lifts it.
   *
   * @default {4194304}
   */
  maxMessageSize?: number;
}

/**
 * A WebSocket message session, whichever engine runs it: what a handler needs to type against.
 * {@linkcode WebSocketSession} (our frame codec: the wire engine, any byte duplex) and
 * `NativeWebSocketSession` (Deno's WebSocket: `Deno.serve`, `deno serve`, Deno Deploy)
 * implement it, and `upgradeWebSocket` returns it on either engine.
 *
 * @example A handler that runs on either engine, here on an in-memory duplex
 * ```ts
 * import { Frame, FrameDecoderStream, FrameEncoderStream, type MessageSession, WebSocketSession } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * async function shout(session: MessageSession): Promise<void> {
 *   for await (const message of session.incoming) {
 *     if (typeof message === "string") await session.send(message.toUpperCase());
 *   }
 * }
 *
 * const up = new TransformStream<Uint8Array, Uint8Array>();
 * const down = new TransformStream<Uint8Array, Uint8Array>();
 * const session: MessageSession = new WebSocketSession({ readable: up.readable, writable: down.writable });
 * const done = shout(session);
 * const client = new FrameEncoderStream({ role: "client" });
 * client.readable.pipeTo(up.writable).catch(() => {}); // ends when the server hangs up
 * const writer = client.writable.getWriter();
 * const frames = down.readable.pipeThrough(new FrameDecoderStream({ role: "client" })).getReader();
 * await writer.write(Frame.text("hi"));
 * assert.equal(new TextDecoder().decode((await frames.read()).value!.payload), "HI");
 * await writer.write(Frame.close(1000));
 * await frames.read(); // the close echoed
 * await done;
 * assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
 * ```
 */
export interface MessageSession {
  /**
   * The messages received: `string` for text, `Uint8Array` for binary. It ends when the
   * peer's close came (after the messages before it) or, at once, when we close: what the
   * peer sends after our close frame is dropped, where Ktor's session still delivers it (a
   * raw session delivers it too). It errors with a {@linkcode WebSocketError} when the
   * session failed, after the messages received before. Cancelling it closes the session
   * with 1000, and so does leaving a `for await` over it (`break`, `return`, a throw), which
   * cancels it: to read one message and go on sending, use a reader and `releaseLock()`.
   */
  readonly incoming: ReadableStream<Message>;
  /**
   * Where messages to send go; closing it closes the session with 1000, aborting it with
   * 1011. Once the session ended, a write rejects with the error a send gets, and a close
   * resolves. A pipe into it (`source.pipeTo(session.outgoing)`) learns that the session
   * ended only when it writes its source's next chunk: for a source that may stay quiet, pass
   * the session's signal, `source.pipeTo(session.outgoing, { signal: session.signal })`, so
   * that the pipe ends, and cancels its source, when the session does.
   */
  readonly outgoing: WritableStream<Message>;
  /** The subprotocol agreed in the handshake, or `""`. */
  readonly protocol: string;
  /** The role of this endpoint. */
  readonly role: Role;
  /** Resolves with how the session ended; never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** Aborts when the session ends, with a {@linkcode WebSocketError} carrying the code. */
  readonly signal: AbortSignal;
  /**
   * What the messages sent (through `send` or `outgoing`) and not yet written to the
   * connection count, as `maxSendQueue` counts them: their bytes (frame headers included on
   * the wire engine; a text still waiting in `outgoing`, or for room on the native engine,
   * at 3 bytes per UTF-16 unit) plus 1024 for each write (what the session holds besides the
   * bytes): one per frame, or two for a payload over 4096 bytes, which follows its
   * header uncopied (on a connection an engine made, a payload of up to 16380 bytes goes with
   * its header when a pooled buffer is free: one). On the native engine, also the bytes in
   * Deno's own send buffer.
   *
   * Like the browser's `WebSocket.bufferedAmount` and `ws`'s, it grows while the peer reads
   * slower than the handler sends; unlike them it counts each message's keep, so that a
   * sender that skips a peer while its amount is above a share of `maxSendQueue` (a
   * broadcast, say) never sees that session fail with 1011 ("send queue full"). The
   * session's own frames (pongs, its close) do not count. After the session ended, what was
   * never written.
   */
  readonly bufferedAmount: number;
  /**
   * Sends a message: a string as text, bytes as binary.
   *
   * @param message The message; bytes must not change until the promise resolves.
   * @returns A promise that resolves when the engine took the message, with backpressure.
   * @throws {WebSocketError} 1006 when the session is closing or closed, or the connection
   * failed; 1011 when more than the session's send queue limit waits to be written (the
   * session fails).
   */
  send(message: Message): Promise<void>;
  /**
   * Starts the close handshake (RFC 6455 §7); does nothing more once it has started.
   *
   * @param code A close code that may be sent (see `isValidCloseCode`). @default {1000}
   * @param reason A reason of at most 123 UTF-8 bytes. @default {""}
   * @returns The {@linkcode closed} promise.
   * @throws {RangeError} When the code may not be sent or the reason is too long.
   */
  close(code?: number, reason?: string): Promise<CloseInfo>;
}

const noop = () => {};

/**
 * Checks a message session's options (a RangeError for any out of range), for the session and
 * for whoever must refuse them before a handshake (connectWebSocket). Internal.
 */
export function sessionSettings(
  options: WebSocketSessionOptions,
): { core: CoreOptions; pingInterval: number | null } {
  const core = coreOptions({ ...options, maxFrameSize: messageLimits(options).maxFrameSize });
  const pingInterval = options.pingInterval ?? null;
  if (pingInterval !== null && pingInterval !== Infinity) {
    checkDuration("pingInterval", pingInterval, 1);
  }
  return { core, pingInterval };
}
// Binary messages below this size are copied out of the read buffer (bytes).
const COPY_BELOW = 16_384;
// The session reads on while less than this many bytes of messages wait unread, each counting
// ITEM_OVERHEAD more.
const READ_AHEAD = 65_536;
const readAhead = {
  bytes: READ_AHEAD,
  size: (item: Message | Frame) =>
    ITEM_OVERHEAD + (item instanceof Frame ? item.payload.length : item.length),
};
// At most this many pongs wait to be written; past it only the newest ping is answered.
const MAX_PONGS_WAITING = 8;

/**
 * A WebSocket session over a byte duplex (Ktor's `DefaultWebSocketSession`): messages in
 * `incoming`, messages out through `outgoing` or {@linkcode send}, with pongs sent
 * automatically (not once our close frame was sent: a ping that comes after it gets none, as
 * with ws and Deno, though RFC 6455 §5.5.2 asks for one until the peer's close came), the
 * pinger when `pingInterval` is set, and the close handshake of RFC 6455 §7.
 *
 * - **Backpressure**: the transport is read only while less than 64 KiB of messages wait
 *   unread in `incoming` (each message counting 256 bytes more, what the queue holds for it
 *   besides its bytes), and frames are decoded only as far as that: a consumer that stops
 *   reading stops the transport being read, with at most those bytes and one message more
 *   queued. A handler that only sends still sees the close and the end of a peer that sends it
 *   less; one that sent more sees them once `incoming` is read (or when `pingInterval` is set,
 *   through the ping timeout): read or cancel `incoming`. A write resolves when the transport
 *   accepted the bytes.
 * - **Closing**: {@linkcode close} sends a close frame after the messages sent before it and, once
 *   it is written, waits up to `timeout` for the peer's, within 2 × `timeout` of `close()` in all
 *   (then the transport is cut); a close from the peer is answered at once with the same code and
 *   reason (when ours was already queued, ours is the answer: it goes behind what was sent
 *   before it, within the same cap). A server then ends the transport; a client waits up to
 *   `timeout` for the server to. `incoming` ends normally, after the messages that came before
 *   the close: they can be read but no longer answered (a send rejects: the session is closed),
 *   also when they came in the same read as the close. (ws answers the close after its
 *   `message` listeners ran for the data before it, so a listener that replies at once gets its
 *   reply out first.)
 * - **Failures**: a protocol violation sends the close code it calls for (1002, 1007, 1009),
 *   a ping timeout 1011; a transport that ends without a close frame gives 1006. `incoming`
 *   errors with the {@linkcode WebSocketError} after the messages received before it. After
 *   sending that close code, the session processes no more data (RFC 6455 §7.1.7) and ends
 *   the transport once the input was quiet for 250 ms, or at once when the peer answers
 *   the close: a silent peer does not hold the connection for `timeout` (one that reads
 *   nothing either holds it while the writes queued before our close flush, up to `timeout`).
 *
 * @example An echo over an in-memory duplex, driven by a raw client
 * ```ts
 * import { Frame, FrameDecoderStream, FrameEncoderStream, WebSocketSession } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const up = new TransformStream<Uint8Array, Uint8Array>(); // client → server bytes
 * const down = new TransformStream<Uint8Array, Uint8Array>(); // server → client bytes
 * const server = new WebSocketSession({ readable: up.readable, writable: down.writable });
 * (async () => {
 *   for await (const message of server.incoming) await server.send(message);
 * })();
 *
 * const toServer = new FrameEncoderStream({ role: "client" });
 * toServer.readable.pipeTo(up.writable).catch(() => {}); // ends when the server hangs up
 * const writer = toServer.writable.getWriter();
 * const frames = down.readable.pipeThrough(new FrameDecoderStream({ role: "client" })).getReader();
 * await writer.write(Frame.text("hello"));
 * assert.equal(new TextDecoder().decode((await frames.read()).value!.payload), "hello");
 * await writer.write(Frame.close(1000));
 * assert.equal((await frames.read()).value!.opcode, 0x8); // the server echoes the close
 * assert.deepEqual(await server.closed, { code: 1000, reason: "", wasClean: true });
 * ```
 */
export class WebSocketSession implements MessageSession {
  /** The messages received: `string` for text, `Uint8Array` for binary. */
  readonly incoming: ReadableStream<Message>;
  /** The subprotocol agreed in the handshake, or `""`. */
  readonly protocol: string;
  readonly #core: SessionCore;
  readonly #inbox: Inbox<Message>;
  #outgoing: WritableStream<Message> | null = null;
  readonly #messages: MessageDecoder;
  readonly #encodeOptions: { maxFrameSize: number };
  /** Pongs handed to the transport and not yet written (see {@linkcode #control}). */
  #pongsWaiting = 0;
  /** The newest ping's payload, owed a pong once fewer than MAX_PONGS_WAITING wait. */
  #pongOwed: Uint8Array | null = null;
  /** Whether the message the decoder hands on next is a small binary one, to be copied. */
  #copyMessage = false;
  #pinger: PingLoop | null = null;
  #last: Promise<void> = Promise.resolve();
  readonly #frames = { enqueue: (frame: Frame) => (this.#last = this.#core.send(frame, true)) };

  /**
   * Starts a session on `transport`.
   *
   * @param transport The byte duplex, after the handshake (pass bytes already read past it
   * as `buffered`); or a promise of it, for a handshake still under way: messages sent before
   * it resolves wait, and a rejection ends the session with 1006.
   * @param options Ktor's WebSocket options and the role.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(
    transport: Transport | Promise<TransportReady>,
    options: WebSocketSessionOptions = {},
  ) {
    const { core, pingInterval } = sessionSettings(options);
    this.#messages = new MessageDecoder(
      options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize },
    );
    this.#encodeOptions = { maxFrameSize: core.maxFrameSize };
    this.protocol = options.protocol ?? "";
    this.#core = new SessionCore(transport, {
      ...core,
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    });
    registerOpen(this, () => this.#core.open);
    this.#inbox = new Inbox<Message>({
      pull: () => void this.#core.pump(),
      cancel: () => void this.close(),
      readAhead,
    });
    this.incoming = this.#inbox.stream;
    const messageSink = {
      enqueue: (message: Message | Frame) => {
        this.#inbox.push(this.#copyMessage ? (message as Uint8Array).slice() : message as Message);
      },
    };
    const handler: FrameHandler = {
      frame: (frame) => {
        if (this.#core.peerClosed) return false;
        if (frame.opcode >= Opcode.Close) {
          this.#control(frame);
          return false;
        }
        if (!this.#core.open) return false; // closing: data is discarded, like a browser does
        if (frame.opcode !== Opcode.Binary || !frame.fin) {
          this.#messages.push(frame, messageSink);
          return false; // fragments are copied, text decoded
        }
        // A whole binary message is its payload, a view of the read buffer. A small one is
        // copied: holding a view would pin the whole buffer (64 KiB) per message and stop the
        // transport reader from reusing it.
        const copy = frame.payload.length < COPY_BELOW;
        this.#copyMessage = copy;
        try {
          this.#messages.push(frame, messageSink);
        } finally {
          this.#copyMessage = false;
        }
        return !copy;
      },
      end: () => this.#inbox.end(),
      fail: (error) => this.#inbox.fail(error),
    };
    this.#core.attach(handler, () => this.#inbox.wantsMore);
    if (pingInterval !== null && pingInterval !== Infinity) {
      this.#startPinger(pingInterval, core.timeout);
    }
  }

  /**
   * Where messages to send go; closing it closes the session with 1000. Made on first use: an
   * idle session that never writes through it does not carry a stream (about 2.5 KB).
   */
  get outgoing(): WritableStream<Message> {
    return this.#outgoing ??= this.#core.outgoing<Message>(this);
  }

  /** The role of this endpoint. */
  get role(): Role {
    return this.#core.role;
  }

  /** Resolves with how the session ended, once the transport is ended too; never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.#core.closed;
  }

  /** Aborts when the session ends, with a {@linkcode WebSocketError} carrying the code. */
  get signal(): AbortSignal {
    return this.#core.signal;
  }

  /**
   * What the messages sent and not yet written count toward `maxSendQueue` (see
   * {@linkcode MessageSession.bufferedAmount}).
   */
  get bufferedAmount(): number {
    return this.#core.bufferedAmount;
  }

  /**
   * Sends a message, split into frames of at most `maxFrameSize` bytes.
   *
   * @param message A string (text) or bytes (binary); the bytes must not change until the
   * promise resolves.
   * @returns A promise that resolves when the transport accepted the bytes.
   * @throws {WebSocketError} 1006 when the session is closing or closed, or the transport
   * failed; 1011 when more than `maxSendQueue` bytes wait to be written (the session fails).
   */
  send(message: Message): Promise<void> {
    // Not an async function: on the path of every message, one promise and frame less.
    try {
      this.#core.checkSend("send a message");
      encodeMessage(message, this.#frames, this.#encodeOptions);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#last.then(this.#checkSent);
  }

  readonly #checkSent = (): void => this.#core.checkWritten("send a message");

  /**
   * Starts the close handshake: sends a close frame and waits for the peer's (RFC 6455 §7).
   * Does nothing more once the handshake has started.
   *
   * @param code A close code that may be sent.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns The session's {@linkcode closed} promise.
   * @throws {RangeError} When the code may not be sent or the reason is too long.
   */
  close(code: number = CloseCode.NormalClosure, reason = ""): Promise<CloseInfo> {
    return this.#core.close(code, reason);
  }

  /**
   * Pongs: each ping is answered at once, so its pong goes out in order with what the session
   * writes next (an echo, the close reply), as RFC 6455 §5.5.2 asks ("as soon as is
   * practical"). Pongs do not count toward maxSendQueue, so a ping flood from a peer that
   * does not read is bounded instead by MAX_PONGS_WAITING: while that many wait to be
   * written, only the newest ping is kept, and answered as soon as one of them is written
   * (§5.5.3 allows answering only the most recent ping). When the peer's close arrives, a
   * pong still owed is written before the close reply (§5.5.2: a ping is answered unless a
   * close was received before it).
   */
  #control(frame: Frame): void {
    if (frame.opcode === Opcode.Close) {
      if (this.#pongOwed !== null && this.#core.open) this.#sendOwedPong();
      this.#core.peerClose(frame);
    } else if (frame.opcode === Opcode.Ping) {
      if (!this.#core.open) return; // our close was sent: nothing more is answered
      if (this.#pongsWaiting < MAX_PONGS_WAITING) {
        this.#pongOwed = null; // answered by this newer pong (§5.5.3)
        this.#sendPong(frame.payload); // encoded now: the payload's view may be reused after
      } else {
        this.#pongOwed = frame.payload.slice();
      }
    } else {
      // Compared at once, while the payload's view is valid: a flood of unsolicited pongs
      // costs a comparison each, and nothing is queued.
      this.#pinger?.pong(frame.payload);
    }
  }

  #sendPong(payload: Uint8Array): void {
    this.#pongsWaiting++;
    this.#core.send(Frame.pong(payload)).then(this.#pongWritten);
  }

  #sendOwedPong(): void {
    const payload = this.#pongOwed!;
    this.#pongOwed = null;
    this.#sendPong(payload);
  }

  readonly #pongWritten = (): void => {
    this.#pongsWaiting--;
    if (this.#pongOwed !== null && this.#core.open) this.#sendOwedPong();
  };

  #startPinger(period: number, timeout: number): void {
    this.#pinger = new PingLoop({ period, timeout, signal: this.#core.signal }, {
      ping: (frame) => {
        if (!this.#core.open) return false;
        this.#core.send(frame);
        return true;
      },
      timeout: () => {
        if (!this.#core.open) return; // closing: the close timer ends it, with the close's code
        this.#core.fail(
          new WebSocketError(`Ping timeout: no pong within ${timeout} ms`, CloseCode.InternalError),
          "ping timeout",
        );
      },
      end: noop,
    });
  }
}

/**
 * A session that exposes every frame (Ktor's `webSocketRaw`): `incoming` yields each frame
 * received, pings, pongs and close included, and `outgoing` takes frames. Nothing is answered
 * automatically: answer pings and the peer's close yourself (a received close ends
 * `incoming`). Frame rules (masking, reserved bits, control frame sizes, `maxFrameSize`) are
 * still enforced on receipt, up to the peer's close (what follows it is dropped undecoded);
 * message rules (fragment order, UTF-8) are yours.
 *
 * After a close frame of ours, `incoming` still yields what the peer sent before it read
 * ours, then the peer's close (as Ktor's raw session does). Those late frames are dropped
 * once 64 KiB of frames wait unread, so that an unread `incoming` never holds the peer's
 * close back; `incoming` ends without an error if the session ends first (`closed` says how).
 *
 * Once both close frames are exchanged, a server ends the transport and a client waits up to
 * `timeout` for the server to. A peer's close left unanswered for `timeout` ends the transport
 * with no close frame of ours, as does the peer hanging up first: `closed` then gives the
 * peer's code and reason with `wasClean: false`.
 *
 * @example Echoing frames, ping and close included
 * ```ts
 * import { Frame, FrameDecoderStream, FrameEncoderStream, RawWebSocketSession } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const up = new TransformStream<Uint8Array, Uint8Array>();
 * const down = new TransformStream<Uint8Array, Uint8Array>();
 * const server = new RawWebSocketSession({ readable: up.readable, writable: down.writable });
 * (async () => {
 *   const writer = server.outgoing.getWriter();
 *   for await (const frame of server.incoming) {
 *     await writer.write(frame.opcode === 0x9 ? Frame.pong(frame.payload) : frame);
 *   }
 * })();
 *
 * const client = new FrameEncoderStream({ role: "client" });
 * client.readable.pipeTo(up.writable).catch(() => {}); // ends when the server hangs up
 * const writer = client.writable.getWriter();
 * const frames = down.readable.pipeThrough(new FrameDecoderStream({ role: "client" })).getReader();
 * await writer.write(Frame.ping(Uint8Array.of(1)));
 * assert.equal((await frames.read()).value!.opcode, 0xa);
 * await writer.write(Frame.close(4000, "done"));
 * assert.equal((await frames.read()).value!.opcode, 0x8);
 * assert.deepEqual(await server.closed, { code: 4000, reason: "done", wasClean: true });
 * ```
 */
export class RawWebSocketSession {
  /** Every frame received, in order. */
  readonly incoming: ReadableStream<Frame>;
  /** The subprotocol agreed in the handshake, or `""`. */
  readonly protocol: string;
  readonly #core: SessionCore;
  #outgoing: WritableStream<Frame> | null = null;

  /**
   * Starts a raw session on `transport`.
   *
   * @param transport The byte duplex, after the handshake, or a promise of it.
   * @param options The role, timeout, frame limit and masking.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(
    transport: Transport | Promise<TransportReady>,
    options: RawWebSocketSessionOptions = {},
  ) {
    this.protocol = options.protocol ?? "";
    this.#core = new SessionCore(transport, coreOptions(options));
    registerOpen(this, () => this.#core.open);
    const inbox = new Inbox<Frame>({
      pull: () => void this.#core.pump(),
      cancel: () => void this.close(),
      readAhead,
    });
    this.incoming = inbox.stream;
    this.#core.attach({
      frame: (frame) => {
        if (this.#core.peerClosed) return false;
        if (frame.opcode === Opcode.Close) {
          readClosePayload(frame.payload); // a bad payload fails the session, not handed on
          inbox.push(frame);
          inbox.end();
          this.#core.peerClose(frame, false); // after our close, this ends the session
          return true;
        }
        // After our close the peer may still send what it sent before it read ours (RFC 6455
        // §5.5.1): handed on while incoming is read, dropped past its read-ahead, so that a
        // user who stopped reading cannot hold the peer's close back.
        if (!this.#core.open && !inbox.wantsMore) return false;
        inbox.push(frame);
        return true;
      },
      // Our close went out: incoming ends with the peer's close, or when the session ends.
      end: noop,
      fail: (error) => inbox.fail(error),
    }, () => inbox.wantsMore);
    this.#core.signal.addEventListener("abort", () => inbox.end(), { once: true });
  }

  /**
   * Where frames to send go; closing it closes the session with 1000. Made on first use: an
   * idle session that never writes through it does not carry a stream (about 2.5 KB).
   */
  get outgoing(): WritableStream<Frame> {
    return this.#outgoing ??= this.#core.outgoing<Frame>(this);
  }

  /** The role of this endpoint. */
  get role(): Role {
    return this.#core.role;
  }

  /** Resolves with how the session ended, once the transport is ended too; never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.#core.closed;
  }

  /** Aborts when the session ends, with a {@linkcode WebSocketError} carrying the code. */
  get signal(): AbortSignal {
    return this.#core.signal;
  }

  /**
   * What the frames sent (by `send` or `outgoing`) and not yet written count toward
   * `maxSendQueue`: their bytes, headers included, plus 1024 each. A close frame does not
   * count (see {@linkcode MessageSession.bufferedAmount}).
   */
  get bufferedAmount(): number {
    return this.#core.bufferedAmount;
  }

  /**
   * Sends one frame as is; a close frame starts (or completes) the close handshake.
   *
   * @param frame The frame; its payload must not change until the promise resolves.
   * @returns A promise that resolves when the transport accepted the bytes.
   * @throws {WebSocketError} 1006 once a close frame was sent, or when the transport failed;
   * 1011 when more than `maxSendQueue` bytes wait to be written (the session fails).
   * @throws {RangeError} For a frame that cannot be sent (see {@linkcode FrameEncoder}).
   */
  async send(frame: Frame): Promise<void> {
    if (frame.opcode === Opcode.Close) {
      await this.#core.sendCloseFrame(frame);
    } else {
      this.#core.checkSend("send a frame");
      await this.#core.send(frame, true);
    }
    this.#core.checkWritten("send a frame");
  }

  /**
   * Sends a close frame and waits for the peer's, or completes the handshake when the peer's
   * close came first.
   *
   * @param code A close code that may be sent.
   * @param reason A reason of at most 123 UTF-8 bytes.
   * @returns The session's {@linkcode closed} promise.
   */
  close(code: number = CloseCode.NormalClosure, reason = ""): Promise<CloseInfo> {
    return this.#core.close(code, reason);
  }
}
