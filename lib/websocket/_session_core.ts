// Copyright 2026 the wirestream authors. MIT license.
// The engine shared by WebSocketSession and RawWebSocketSession: it reads the transport with
// a reusable buffer and drives the frame decoder directly (stream costs are paid per read,
// not per frame), writes frames in order under a write timeout, and runs the close handshake.

import type { DirectSource } from "../http/reader.ts";
import { ChunkReader } from "./_chunk_reader.ts";
import { checkDuration, checkLimit, MAX_DELAY } from "../_options.ts";
import { type Slab, writesDone } from "../_slab.ts";
import { DEFAULT_MAX_FRAME_SIZE, FrameDecoder, type Role, setMaxFrameSize } from "./decoder.ts";
import { encoderSlab, FrameEncoder } from "./encoder.ts";
import { MessageTooBigError, WebSocketError } from "./error.ts";
import { CloseCode, Frame, readClosePayload } from "./frame.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "./message.ts";

/** A byte duplex: a connection, a pair of pipes, a test double. */
export interface Transport {
  /** The bytes received. */
  readable: ReadableStream<Uint8Array>;
  /**
   * The bytes to send. Each chunk written here has a buffer of its own (or is the caller's
   * own payload, passed on uncopied), so a writable may transfer what it is given (a byte
   * stream's `enqueue` does). (Written directly, through `write`, small chunks may share one
   * buffer.)
   */
  writable: WritableStream<Uint8Array>;
  /**
   * Closes the connection at once, even with a write in flight (a `Deno.Conn` has it). Used
   * when a write exceeds the session's `timeout`: aborting a writable waits for the write in
   * flight, which a peer that stopped reading never completes.
   */
  close?(): void;
  /**
   * Reads straight into `buffer` (a `Deno.Conn` has it), resolving with the count or null at
   * the end. With `write`, the session and the HTTP pipeline use it instead of the streams,
   * which they then never touch: only `close()` can end such a transport (without one, the
   * connection stays open once they are done with it).
   */
  read?(buffer: Uint8Array): Promise<number | null>;
  /** Writes `bytes`, maybe in part, resolving with the count (a `Deno.Conn` has it). */
  write?(bytes: Uint8Array): Promise<number>;
  /**
   * Ends the sending half only (a TCP FIN; a `Deno.Conn` has it), so the peer reads the end
   * while this side still reads. The HTTP pipeline uses it for a lingering close.
   */
  closeWrite?(): Promise<void> | void;
}

/** How a session ended, like the browser's `CloseEvent`. */
export interface CloseInfo {
  /**
   * The code of the peer's close frame (1005 when it carried none); or, when the session
   * failed, the code it sent (1002, 1007, 1009, 1011) or 1006 for a connection that ended
   * without a close handshake.
   */
  code: number;
  /** The reason that came with the code; empty when none. */
  reason: string;
  /** Whether both close frames were exchanged before the transport ended. */
  wasClean: boolean;
}

/** A transport that arrives later, with the bytes already read past the handshake. */
export interface TransportReady extends Transport {
  /** Bytes read from `readable` past the handshake: the first frames. */
  buffered?: Uint8Array;
}

export interface CoreOptions {
  role: Role;
  timeout: number;
  maxFrameSize: number;
  /** A message session's maxMessageSize: its data frames are held to it too. */
  maxMessageSize?: number;
  masking: boolean;
  maxSendQueue: number;
  buffered: Uint8Array | undefined;
  signal: AbortSignal | undefined;
}

/** How many times per `timeout` the write watchdog checks for progress. */
const WATCHDOG_CHECKS = 4;

/** The default of `maxSendQueue`: 8 MiB. */
export const DEFAULT_MAX_SEND_QUEUE = 8_388_608;

/**
 * How many `timeout`s a close handshake may take in all, from `close()`: the messages sent
 * before the close frame flush for as long as the peer keeps reading them (each write is held
 * to `timeout` of no progress alone), so a peer that reads a few bytes at a time would hold a
 * closing session for what `maxSendQueue` holds at its pace. With the default `timeout`, 30 s:
 * ws's `closeTimeout`, which it also counts from `close()`.
 */
const CLOSE_CAP = 2;

/** How long a close handshake may take in all, from `close()`, in milliseconds. */
export function closeCap(timeout: number): number {
  return Math.min(CLOSE_CAP * timeout, MAX_DELAY);
}

/** Why a session whose close was cut off by {@linkcode closeCap} failed. */
export function closeCapError(timeout: number): WebSocketError {
  return new WebSocketError(
    `Cannot close: the messages sent before the close frame were not written within ${
      closeCap(timeout)
    } ms (${CLOSE_CAP} × timeout)`,
    CloseCode.AbnormalClosure,
  );
}

/**
 * What each write waiting for the transport counts toward `maxSendQueue` on top of its bytes:
 * what the session holds for it (its chunk's object, its promises; 600 to 1000 bytes measured
 * for an empty message), so that a flood of small or empty messages is bounded too. Counted
 * as bytes alone, 8 MiB let 4 million empty messages wait, holding 2.5 to 4 GB.
 */
export const WRITE_OVERHEAD = 1024;

/** What a session does with each frame; it may throw a WebSocketError to fail the session. */
export interface FrameHandler {
  /** Handles a frame; returns true when it keeps a view of the frame's payload. */
  frame(frame: Frame): boolean;
  /**
   * The peer's close arrived or our close was sent: no more data needs handing on (a raw
   * session still hands on frames until the peer's close or the session's end).
   */
  end(): void;
  /** The session failed: hand `error` on after what was already handed on. */
  fail(error: WebSocketError): void;
}

const OPEN: number = 0, CLOSING: number = 1, CLOSED: number = 2;
const noop = () => {};
/** No bytes: what DirectOut holds between writes. */
const NO_BYTES = new Uint8Array(0);
// After a failure, the session ends once the input was quiet this long (milliseconds).
const QUIET_TIME = 250;

/**
 * A message session's maxFrameSize when none is given: a frame may be a whole message
 * (browsers, Deno's WebSocket and ws send each message as one), and a control frame of 125
 * bytes is always taken, however small the message limit.
 */
export function defaultFrameSize(maxMessageSize: number): number {
  return Math.max(maxMessageSize, 125);
}

/**
 * A message session's `maxMessageSize`, checked, and its `maxFrameSize`: the one given (checked
 * by coreOptions), or {@linkcode defaultFrameSize}. For both engines' sessions.
 */
export function messageLimits(
  options: { maxMessageSize?: number; maxFrameSize?: number },
): { maxMessageSize: number; maxFrameSize: number } {
  const maxMessageSize = checkLimit(
    "maxMessageSize",
    options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
  );
  return { maxMessageSize, maxFrameSize: options.maxFrameSize ?? defaultFrameSize(maxMessageSize) };
}

/** Applies and checks the options both session types share. */
export function coreOptions(options: {
  role?: Role;
  timeout?: number;
  maxFrameSize?: number;
  masking?: boolean;
  maxSendQueue?: number;
  buffered?: Uint8Array;
  signal?: AbortSignal;
}): CoreOptions {
  const role = options.role ?? "server";
  if (role !== "server" && role !== "client") {
    throw new RangeError(`Invalid role: ${JSON.stringify(role)} is not "server" or "client"`);
  }
  return {
    role,
    // 0 would time out every write that must wait, and a native socket before it opens.
    timeout: checkDuration("timeout", options.timeout ?? 15_000, 1),
    maxFrameSize: checkLimit("maxFrameSize", options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE, 1),
    masking: options.masking ?? false,
    maxSendQueue: checkLimit("maxSendQueue", options.maxSendQueue ?? DEFAULT_MAX_SEND_QUEUE),
    buffered: options.buffered,
    signal: options.signal,
  };
}

/** Cuts a reason to the 123 bytes a close frame can carry, on a character boundary. */
export function closeReason(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= 123) return text;
  let end = 123;
  while ((bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** What a session fails with: `error` itself when it is a WebSocketError, else a 1011 for it. */
export function asFailure(error: unknown): WebSocketError {
  return error instanceof WebSocketError
    ? error
    : new WebSocketError("Session failed: an internal error occurred", CloseCode.InternalError, {
      cause: error,
    });
}

/**
 * The close code to send for `failure`: its own, except 1006, which may not be sent (RFC 6455
 * §7.4.1): a failure that carries it (a write or open timeout) is sent as 1011.
 */
export function sentCode(failure: WebSocketError): number {
  return failure.closeCode === CloseCode.AbnormalClosure
    ? CloseCode.InternalError
    : failure.closeCode;
}

/**
 * What a send made while more than `limit` bytes wait to be written fails the session with
 * (1011): the application sends faster than the peer reads and does not await its sends.
 */
export function sendQueueError(action: string, queued: number, limit: number): WebSocketError {
  return new WebSocketError(
    `Cannot ${action}: ${queued} bytes already wait to be sent (${WRITE_OVERHEAD} counted per write on top of its bytes), more than maxSendQueue (${limit}); await each send`,
    CloseCode.InternalError,
  );
}

/** What an action on a session that is closing or closed throws (1006). */
export function closedError(action: string, closed: boolean): WebSocketError {
  return new WebSocketError(
    `Cannot ${action}: the session is ${closed ? "closed" : "closing"}`,
    CloseCode.AbnormalClosure,
  );
}

/** Closes `session` with 1001 (going away): what aborting a session's `signal` does. */
export function closeGoingAway(
  session: { close(code: number, reason: string): Promise<unknown> },
): void {
  session.close(CloseCode.GoingAway, "going away").catch(noop);
}

/** What the writes waiting in an `outgoing` stream's own queue count toward `maxSendQueue`. */
export interface OutgoingQueue {
  queued: number;
}

/**
 * The `outgoing` stream of a session: a write sends, closing closes the session with 1000,
 * aborting fails it with 1011 (while it is open: a close under way is left as it is).
 *
 * The stream hands the session one item at a time, and the writes not awaited wait in its
 * queue: they count toward `limit` as the session's own queue does (their bytes, a text at 3
 * per UTF-16 unit, plus WRITE_OVERHEAD each, counted once as they join the queue and given
 * back as they leave it), and a write made while more than `limit` waits fails the session with 1011
 * ("send queue full") and errors the stream. Nothing else bounds that queue: a million writes
 * of empty messages, not awaited, held 561 MB for a peer that stopped reading. Once the
 * session is closing, such a write is refused as a send is then (`checkOpen` throws 1006),
 * and the session's end is left as it is.
 */
export function outgoingStream<T>(
  session: { send(item: T): Promise<void>; close(): Promise<unknown> },
  fail: (error: WebSocketError, reason?: string) => void,
  checkOpen: (action: string) => void,
  limit: number,
  waiting: OutgoingQueue,
): WritableStream<T> {
  /** What each write waiting in the stream's queue counts, in order. */
  const costs: number[] = [];
  return new WritableStream<T>({
    write: (item) => {
      waiting.queued -= costs.shift()!; // out of the queue: the session counts it now
      return session.send(item);
    },
    close: () => session.close().then(noop),
    abort: (reason) => {
      try {
        checkOpen("abort outgoing");
      } catch {
        return; // closing already: its close, clean or not, stands
      }
      fail(
        new WebSocketError(
          "Session failed: its outgoing stream was aborted",
          CloseCode.InternalError,
          { cause: reason },
        ),
      );
    },
  }, {
    highWaterMark: 1,
    // Called by each write(), as the item joins the queue; a throw errors the stream with it,
    // and the writes still waiting in the queue reject with it too.
    size: (item) => {
      if (waiting.queued > limit) {
        // A closing session is not failed: its close (clean, maybe) is already under way.
        checkOpen("write to outgoing");
        const error = sendQueueError("write to outgoing", waiting.queued, limit);
        fail(error, "send queue full");
        throw error;
      }
      const cost = messageSize(item) + WRITE_OVERHEAD;
      costs.push(cost);
      waiting.queued += cost;
      return 1;
    },
  });
}

/** What a message counts toward `maxSendQueue` while it waits in `outgoing`: its bytes. */
function messageSize(message: unknown): number {
  return typeof message === "string"
    ? message.length * 3 // the most UTF-8 bytes it can take
    : message instanceof Uint8Array
    ? message.length
    : message instanceof Frame
    ? message.payload.length
    : 0;
}

export class SessionCore {
  readonly role: Role;
  readonly signal: AbortSignal;
  readonly closed: Promise<CloseInfo>;
  readonly #options: CoreOptions;
  #transport: Transport | null = null;
  #reader: ChunkReader | null = null;
  #out: Out | null = null;
  /** For a transport given as a promise: settles once it is attached (or failed). */
  #ready: Promise<void> | null = null;
  /** Chunks sent before the transport arrived, what they count, and what settles their sends. */
  #early: { chunk: Uint8Array; counted: number; settle: () => void }[] = [];
  readonly #decoder: FrameDecoder;
  readonly #messageLimit: number;
  readonly #encoder: FrameEncoder;
  readonly #abort = new AbortController();
  #handler: FrameHandler | null = null;
  #resolveClosed!: (info: CloseInfo) => void;
  #state: number = OPEN;
  /** Why the session failed, when it did: the close code it sent, and the reason. */
  #failure: WebSocketError | null = null;
  #failureReason = "";
  /** Whether the frame decoder failed, so that no more frames can be read. */
  #unreadable = false;
  /** Whether the session failed and ends once the input is quiet (see {@linkcode fail}). */
  #lingering = false;
  #peerClose: { code: number; reason: string } | null = null;
  #buffered: Uint8Array | undefined;
  #pumping: Promise<void> | null = null;
  #wantRead: () => boolean = () => false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The close timer runs for a close() made before the transport came (see #sendClose). */
  #closeTimerEarly = false;
  /** Ends a close handshake that takes longer than {@linkcode closeCap} in all. */
  #capTimer: ReturnType<typeof setTimeout> | undefined;
  /** When that is (performance.now() time), for the last flush too; Infinity without a cap. */
  #capDeadline = Infinity;
  /** Whether our close frame was written. */
  #closeWritten = false;
  #quietTimer: ReturnType<typeof setTimeout> | undefined;
  // Write timeout: writes finish in order, so if none finished for `timeout` while some
  // were pending, the oldest has been pending that long. One timer per period, not per write.
  #writesStarted = 0;
  #writesDone = 0;
  /**
   * Bytes of counted frames (see {@linkcode send}) handed to the transport (or waiting for
   * it) and not yet accepted by it, with WRITE_OVERHEAD more per write.
   */
  #queued = 0;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  /** The watchdog's checks in a row that found writes pending and none finished. */
  #stalledChecks = 0;
  #lastWrite: Promise<void> = Promise.resolve();
  /** Where the encoder's chunks go: those of a frame the application sent count. */
  readonly #sink = { enqueue: (chunk: Uint8Array) => this.#writeChunk(chunk, 0) };
  readonly #countedSink = {
    enqueue: (chunk: Uint8Array) => this.#writeChunk(chunk, chunk.length + WRITE_OVERHEAD),
  };
  /** The buffer of the chunk being decoded, and whether a frame kept a view into it. */
  #chunkBuffer: ArrayBufferLike | null = null;
  #retained = false;
  readonly #frameSink = {
    enqueue: (frame: Frame): boolean => {
      // A message-level error fails the session here, so that the decoder reads on: the
      // peer's answer to our close frame must still be found.
      try {
        if (this.#handler!.frame(frame) && frame.payload.buffer === this.#chunkBuffer) {
          this.#retained = true;
        }
      } catch (error) {
        this.fail(error);
      }
      // Once the session wants no more (its unread messages reached their bound), the
      // decoder stops after this frame and the rest of the chunk waits: one read of small
      // frames no longer becomes thousands of queued messages (10,922 empty ones, 2.3 MB of
      // heap, from 64 KiB). While closing, it reads on for the peer's close; after that
      // close, nothing more is decoded (see #runPump).
      if (this.#peerClose !== null) return false;
      return this.#state !== OPEN || this.#wantRead();
    },
  };

  constructor(transport: Transport | Promise<TransportReady>, options: CoreOptions) {
    this.#options = options;
    this.role = options.role;
    this.signal = this.#abort.signal;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // A message session's data frame over maxMessageSize fails at its header (1009), not
    // once it was buffered whole up to maxFrameSize: a session with maxMessageSize 1024 held
    // a frame of up to 1 MiB (the default maxFrameSize) and waited for all of it. Control
    // frames (at most 125 bytes) stay allowed.
    this.#messageLimit = options.maxMessageSize ?? Infinity;
    this.#decoder = new FrameDecoder({
      role: options.role,
      maxFrameSize: Math.min(options.maxFrameSize, Math.max(this.#messageLimit, 125)),
    });
    this.#encoder = new FrameEncoder({ role: options.role, masking: options.masking });
    // Small frames share a slab only on a direct transport (see #attach): until it came, what
    // is sent may be written through a stream.
    this.#encoder.pooled = false;
    this.#buffered = options.buffered?.length ? options.buffered : undefined;
    if (transport instanceof Promise) {
      this.#ready = transport.then(
        (ready) => this.#attach(ready, ready.buffered),
        (cause) => this.#transportEnded(cause),
      );
    } else {
      this.#attach(transport, undefined);
    }
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    if (options.signal?.aborted) queueMicrotask(this.#onAbort);
  }

  /** Takes the transport: locks its streams and sends what was sent before it came. */
  #attach(transport: Transport, buffered: Uint8Array | undefined): void {
    this.#transport = transport;
    // A transport that reads and writes directly (a Deno.Conn) is used so, with no stream in
    // between; its writes are chained here, as a stream writer would queue them.
    const direct = typeof transport.read === "function" && typeof transport.write === "function";
    // A writable may transfer the chunks it is given (a byte stream's enqueue): a chunk that
    // shares its buffer with chunks still queued behind it would detach them. Only direct
    // writes, which copy, get views of a shared slab.
    this.#encoder.pooled = direct;
    this.#reader = new ChunkReader(direct ? transport as DirectSource : transport.readable);
    if (direct) {
      // On a connection an engine made (whose write is done with its bytes once it resolved),
      // a frame of 1 to 16 KiB (header and payload together; a client's masked frame up to 32
      // KiB) borrows a pooled block, given back by DirectOut once written (lib/_slab.ts).
      const slab = encoderSlab(this.#encoder);
      slab.lending = writesDone(transport);
      this.#out = new DirectOut(transport, this.#written, this.#writeFailed, slab);
    } else this.#out = new StreamOut(transport.writable, this.#written, this.#writeFailed);
    if (buffered?.length) this.#buffered = buffered;
    const early = this.#early;
    this.#early = [];
    for (const { chunk, counted, settle } of early) {
      this.#out.write(chunk, counted).then(settle);
    }
    if (early.length > 0 && this.#watchdog === undefined && this.#options.timeout !== Infinity) {
      this.#armWatchdog();
    }
    if (this.#closeTimerEarly) {
      // The watchdog watches the writes from now on, our close frame's among them: the wait
      // for the peer's close starts again once that is written (see #sendClose).
      this.#closeTimerEarly = false;
      clearTimeout(this.#closeTimer);
      this.#closeTimer = undefined;
    }
    if (this.#state === CLOSED) this.#endTransport(false); // ended while it was on its way
  }

  /**
   * Connects the session's handler and tells when it wants to read more, and starts reading
   * (while `wantRead` says so). Once it said no, the session calls {@linkcode pump} again.
   */
  attach(handler: FrameHandler, wantRead: () => boolean): void {
    this.#handler = handler;
    this.#wantRead = wantRead;
    this.pump();
  }

  get open(): boolean {
    return this.#state === OPEN;
  }

  get closeSent(): boolean {
    return this.#state !== OPEN;
  }

  get peerClosed(): boolean {
    return this.#peerClose !== null;
  }

  #onAbort = (): void => closeGoingAway(this);

  /**
   * Reads while the session wants input (OPEN) or waits for the peer's close or the end of
   * the stream (CLOSING). One loop at a time: a call while it runs returns the same promise.
   */
  pump(): Promise<void> {
    return this.#pumping ??= this.#runPump();
  }

  async #runPump(): Promise<void> {
    await undefined; // #pumping is set before the loop runs, so calls from inside it join it
    if (this.#reader === null) await this.#ready;
    try {
      while (
        this.#state === CLOSING ||
        (this.#state === OPEN && (this.#peerClose !== null || this.#wantRead()))
      ) {
        let chunk: Uint8Array | null;
        if (this.#buffered !== undefined) {
          // Bytes from the upgrade, or the rest of a chunk whose decoding stopped (see
          // #frameSink): in the latter case #retained still says whether frames from its first
          // part hold views of its buffer.
          chunk = this.#buffered;
          this.#buffered = undefined;
        } else {
          try {
            chunk = await this.#reader!.read();
          } catch (cause) {
            this.#transportEnded(cause);
            return;
          }
          if (this.#state === CLOSED) return;
          this.#retained = false;
        }
        if (chunk === null) {
          this.#transportEnded();
          return;
        }
        if (this.#peerClose !== null) {
          // The peer's close came: it sends nothing after it (RFC 6455 §5.5.1), so what comes
          // is not decoded, only dropped while the end of the input is awaited. (Decoded, a
          // stray frame the decoder refuses failed a raw session whose user had still to
          // answer the close, with a code of ours.)
          if (!this.#retained) this.#reader!.recycle();
          continue;
        }
        if (this.#unreadable || this.#lingering) {
          // Failed (see fail), or the decoder failed while closing: the input only delays the
          // end. A failed decoder has no frames to find in it.
          this.#armQuietTimer();
          if (this.#unreadable) continue;
        }
        this.#chunkBuffer = chunk.buffer;
        let read: number;
        try {
          read = this.#decoder.push(chunk, this.#frameSink);
        } catch (error) {
          this.#unreadable = true;
          this.fail(this.#messageTooBig(error));
          continue;
        }
        if (read < chunk.length) {
          // The session stopped wanting messages: the rest waits, undecoded, in the buffer.
          this.#buffered = chunk.subarray(read);
          continue;
        }
        if (!this.#retained) this.#reader!.recycle();
      }
    } finally {
      this.#pumping = null;
    }
  }

  /** A frame over the decoder's limit that maxMessageSize set, said as a message's error. */
  #messageTooBig(error: unknown): unknown {
    if (!(error instanceof MessageTooBigError) || error.limit >= this.#options.maxFrameSize) {
      return error;
    }
    return new MessageTooBigError(
      `Cannot read message: size of at least ${error.size} bytes exceeds maxMessageSize of ${this.#messageLimit} bytes`,
      this.#messageLimit,
      error.size,
    );
  }

  /**
   * Handles a close frame from the peer: answer it (unless `reply` is false: a raw session's
   * user answers), then end as the role says.
   */
  peerClose(frame: Frame, reply = true): void {
    if (this.#peerClose !== null || this.#state === CLOSED) return;
    const payload = readClosePayload(frame.payload);
    this.#peerClose = payload;
    if (!reply && this.#state === OPEN) {
      // A raw session's user answers; if it does not within `timeout`, the transport ends.
      // Reading goes on, for the end of the transport (what follows a close is dropped).
      this.#armCloseTimer();
      this.pump();
      return;
    }
    if (this.#state === OPEN) {
      this.#closing();
      // Echo the code (RFC 6455 §5.5.1), and the reason, as ws and Deno's own server do: a
      // browser that closed reports the reason of the answer. A close without a code is
      // answered without one.
      this.send(
        payload.code === CloseCode.NoStatusReceived
          ? Frame.close()
          : Frame.close(payload.code, payload.reason),
      );
      this.#handler!.end();
    }
    this.#afterHandshake();
  }

  /** Both closes are exchanged: a server ends the transport, a client waits for the server to. */
  #afterHandshake(): void {
    if (this.role === "server") {
      this.#finish(this.#result(true), false);
    } else {
      this.#armCloseTimer();
      this.pump(); // reads to the end of the stream
    }
  }

  /**
   * How the session ended. `clean`: the transport ended as the handshake expects. The code is
   * the peer's once its close came (RFC 6455 §7.1.5), clean only if ours went out too: a raw
   * session's user may leave the peer's close unanswered.
   */
  #result(clean: boolean): CloseInfo {
    if (this.#failure !== null) {
      return { code: this.#failure.closeCode, reason: this.#failureReason, wasClean: false };
    }
    if (this.#peerClose !== null) {
      return { ...this.#peerClose, wasClean: clean && this.#state !== OPEN };
    }
    return { code: CloseCode.AbnormalClosure, reason: "", wasClean: false };
  }

  /**
   * Leaves OPEN for CLOSING. Data frames are discarded from now on, so they are held to
   * maxFrameSize again, not to the message limit: the peer may still send what it sent before
   * it read our close (RFC 6455 §5.5.1), and a frame over maxMessageSize then failed the
   * closing session with 1009 and made the peer's close unreadable.
   */
  #closing(): void {
    this.#state = CLOSING;
    if (this.#messageLimit < this.#options.maxFrameSize) {
      setMaxFrameSize(this.#decoder, this.#options.maxFrameSize);
    }
  }

  /** Starts the close handshake (or completes it when the peer's close came first). */
  close(code: number = CloseCode.NormalClosure, reason = ""): Promise<CloseInfo> {
    if (this.#state === OPEN) {
      const frame = Frame.close(code, reason); // throws RangeError before any state changes
      this.#sendClose(frame);
    }
    return this.closed;
  }

  /** Sends our close frame, then waits for the peer's (or ends, if it came first). */
  #sendClose(frame: Frame): Promise<void> {
    this.#closing();
    this.#handler!.end();
    const written = this.send(frame);
    if (this.#peerClose !== null) {
      this.#afterHandshake();
    } else {
      // The wait for the peer's close begins once ours is written: the writes queued before
      // it are bounded by the write watchdog (`timeout` without progress), so a peer that
      // reads them slowly but steadily gets them all, then our close, within closeCap. Before
      // the connection came (an upgrade's 101 behind other responses), nothing watches the
      // writes: the wait starts now, and again once ours is written.
      if (this.#out === null) {
        this.#armCloseTimer();
        this.#closeTimerEarly = true; // until the transport comes (see #attach)
      }
      written.then(() => {
        if (this.#state === CLOSED) return;
        this.#closeWritten = true;
        clearTimeout(this.#closeTimer);
        this.#closeTimer = undefined;
        this.#armCloseTimer();
      }, () => {});
      // However the peer reads, the handshake ends within CLOSE_CAP × `timeout` of close().
      const { timeout } = this.#options;
      if (timeout !== Infinity) {
        this.#capDeadline = performance.now() + closeCap(timeout);
        this.#capTimer = setTimeout(this.#capped, closeCap(timeout));
      }
      this.pump();
    }
    return written;
  }

  /** A raw session's outgoing close frame. */
  sendCloseFrame(frame: Frame): Promise<void> {
    this.checkOpen("send a close frame");
    try {
      readClosePayload(frame.payload);
    } catch (cause) {
      throw new RangeError("Cannot send close frame: its payload is not a valid close payload", {
        cause,
      });
    }
    return this.#sendClose(frame);
  }

  /** Ends a failed session once the input was quiet for a while. */
  #armQuietTimer(): void {
    clearTimeout(this.#quietTimer);
    this.#quietTimer = setTimeout(
      () => this.#finish(this.#result(false), false),
      Math.min(QUIET_TIME, this.#options.timeout),
    );
  }

  /**
   * The close handshake took CLOSE_CAP × `timeout`. Once our close frame was written, this is
   * what the close timer does (a client may have the server's close already: clean). Before,
   * the messages sent ahead of it did not all reach the peer: a failure (1006, "close
   * timeout"), as a write timeout is, and the transport is cut.
   */
  #capped = (): void => {
    this.#capTimer = undefined;
    if (this.#state === CLOSED) return;
    if (this.#closeWritten) {
      this.#finish(this.#result(true), false);
      return;
    }
    if (this.#failure === null) {
      this.#failure = closeCapError(this.#options.timeout);
      this.#failureReason = "close timeout"; // reported locally; the close frame never went
      this.#handler?.fail(this.#failure);
    }
    this.#finish(this.#result(false), true);
  };

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.#options.timeout === Infinity) return;
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      // The handshake did not finish in time: end the transport ourselves.
      this.#finish(this.#result(true), false);
    }, this.#options.timeout);
  }

  /**
   * Fails the session: sends the error's close code, then ends the transport once the input
   * was quiet for QUIET_TIME (or `timeout`, if shorter), or as soon as the peer's close
   * arrives. RFC 6455 §7.1.7: an endpoint that must Fail the WebSocket Connection "MUST NOT
   * continue to attempt to process data (including a responding Close frame)" and must Close
   * the WebSocket Connection. So every failure ends alike, whether the frame decoder failed
   * (RSV, opcode, masking, size) or a message did (1007 UTF-8, 1002 fragment order or close
   * payload, 1009 maxMessageSize): a peer that stays silent no longer holds the connection
   * for `timeout` (15 s by default). Input is discarded, data frames unread, until then;
   * the quiet time is kept because closing with unread bytes makes the kernel send a reset,
   * which can destroy our close frame before the peer reads it (a client still sending a
   * huge frame, say). While the input can still be split into frames, a peer that answers
   * our close at once still ends the session through its close frame.
   */
  fail(error: unknown, reason?: string): void {
    if (this.#state === CLOSED) return;
    const failure = asFailure(error);
    if (this.#failure === null) {
      this.#failure = failure;
      this.#failureReason = reason ?? closeReason(failure.message);
    }
    this.#handler!.fail(failure);
    if (this.#state !== OPEN) {
      // CLOSING: our close is out, and the peer then sent what fails the connection (a frame
      // the decoder refuses, a close payload that is not one). Its close can no longer be
      // trusted or awaited: end as a failure while OPEN does, once the input is quiet, not
      // after `timeout` (15 s by default; ws ends at once).
      if (!this.#lingering) {
        this.#lingering = true;
        this.#armQuietTimer();
        this.pump();
      }
      return;
    }
    this.#closing();
    this.send(Frame.close(sentCode(failure), this.#failureReason));
    if (this.#peerClose !== null && !this.#unreadable) {
      this.#afterHandshake(); // a raw session's peer closed first: this was the reply
    } else {
      this.#lingering = true;
      this.#armCloseTimer();
      this.#armQuietTimer();
      this.pump();
    }
  }

  /** The transport ended (or failed) on the read side. */
  #transportEnded(cause?: unknown): void {
    if (this.#state === CLOSED) return;
    if (this.#peerClose !== null) {
      // The client's expected end; or a raw session's peer that closed and hung up before
      // its user answered: the peer's code, not clean, and nothing to report.
      this.#finish(this.#result(true), false);
      return;
    }
    const error = new WebSocketError(
      cause === undefined
        ? "Cannot read: the connection ended without a close frame"
        : "Cannot read: the connection failed without a close frame",
      CloseCode.AbnormalClosure,
      cause === undefined ? undefined : { cause },
    );
    // Once closing, what was handed on has ended already (a raw session's incoming ends with
    // the session: a peer that hangs up after our close is `closed`'s 1006, not an error).
    if (this.#failure === null && this.#state === OPEN) this.#handler?.fail(error);
    this.#finish(this.#result(false), false);
  }

  /**
   * Ends the session: the signal aborts at once; `closed` resolves once the transport ended.
   * A clean end flushes what is queued (our close frame), for at most `timeout`; a hard end
   * (a write timed out) aborts the transport.
   */
  #finish(info: CloseInfo, hard: boolean): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#capTimer);
    clearTimeout(this.#quietTimer);
    clearTimeout(this.#watchdog);
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    this.#abort.abort(
      new WebSocketError(`WebSocket session closed with code ${info.code}`, info.code),
    );
    // A flush cut short with frames unwritten (our close frame, or our answer to the peer's)
    // did not complete the handshake; one whose frames all went, and only the transport's own
    // close was slow, did.
    this.#endTransport(hard).then((cut) =>
      this.#resolveClosed(cut && info.wasClean ? { ...info, wasClean: false } : info)
    );
  }

  /**
   * Ends the transport: flushes what is queued for up to `timeout` (and within the close
   * cap's deadline), or at once when `hard`. Gives whether frames were left unwritten.
   */
  async #endTransport(hard: boolean): Promise<boolean> {
    const out = this.#out, reader = this.#reader;
    if (out === null || reader === null) {
      // The transport never came; if it still does, #attach ends it. Early sends failed.
      this.#writeError ??= new Error("The connection never opened");
      for (const { settle } of this.#early) settle();
      this.#early = [];
      return false;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let unwritten = false;
    try {
      if (!hard) {
        const flushed = out.close().then(() => true, () => true);
        const wait = Math.min(this.#options.timeout, this.#capDeadline - performance.now());
        const late = wait === Infinity ? flushed : new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, wait));
        });
        hard = !(await Promise.race([flushed, late]));
      }
      unwritten = this.#writesDone < this.#writesStarted;
      if (hard) {
        try {
          this.#transport?.close?.();
        } catch {
          // Already closed.
        }
        out.abort();
      }
    } finally {
      clearTimeout(timer);
    }
    reader.cancel(); // not awaited either: a source's cancel may hang the same way
    return unwritten;
  }

  #closedError(action: string): WebSocketError {
    return closedError(action, this.#state === CLOSED);
  }

  /**
   * Sends one frame. The promise resolves when the transport accepted its bytes, and never
   * rejects: after awaiting it, {@linkcode checkWritten} tells whether the write failed.
   *
   * `counted`: whether it counts toward maxSendQueue, as what the application sends does. The
   * session's own frames (a pong, the pinger's ping, a close) do not: they are few by design
   * (at most 8 pongs and one ping at a time, one close), and counted, one on its way made a send
   * that was awaited refused under a small limit (at 0, a pong being written sufficed).
   */
  send(frame: Frame, counted = false): Promise<void> {
    if (this.#state === CLOSED) return this.#lastWrite;
    this.#encoder.encode(frame, counted ? this.#countedSink : this.#sink);
    return this.#lastWrite;
  }

  /** The session's `outgoing` stream (see {@linkcode outgoingStream}). */
  outgoing<T>(
    session: { send(item: T): Promise<void>; close(): Promise<unknown> },
  ): WritableStream<T> {
    return outgoingStream(
      session,
      (error, reason) => this.fail(error, reason),
      (action) => this.checkOpen(action),
      this.#options.maxSendQueue,
      this.#outgoingQueue,
    );
  }

  /** What waits in the `outgoing` stream's own queue (see {@linkcode outgoingStream}). */
  readonly #outgoingQueue: OutgoingQueue = { queued: 0 };

  /** Throws unless data may still be sent (no close frame sent yet). */
  checkOpen(action: string): void {
    if (this.#state !== OPEN) throw this.#closedError(action);
  }

  /**
   * {@linkcode checkOpen}, and then, when more than `maxSendQueue` bytes wait to be written
   * (each write counting WRITE_OVERHEAD more), fails the session with 1011 and throws why: a
   * sender that does not await its sends cannot queue without bound. So at most the limit
   * plus one message waits.
   */
  checkSend(action: string): void {
    if (this.#state !== OPEN) throw this.#closedError(action);
    const limit = this.#options.maxSendQueue;
    if (this.#queued <= limit) return;
    const error = sendQueueError(action, this.#queued, limit);
    this.fail(error, "send queue full");
    throw error;
  }

  /** Throws when a write failed or the session ended before the bytes were accepted. */
  checkWritten(action: string): void {
    if (this.#writeError !== null) {
      throw new WebSocketError(
        `Cannot ${action}: the connection failed`,
        CloseCode.AbnormalClosure,
        {
          cause: this.#writeError,
        },
      );
    }
  }

  #writeError: unknown = null;
  readonly #written = (counted: number): void => {
    this.#writesDone++;
    this.#queued -= counted;
  };

  /**
   * What the messages sent and not yet written count toward `maxSendQueue`: the counted
   * writes under way or waiting, and the writes waiting in `outgoing`'s queue.
   */
  get bufferedAmount(): number {
    return this.#queued + this.#outgoingQueue.queued;
  }

  readonly #writeFailed = (cause: unknown): void => {
    this.#writeError ??= cause ?? new Error("Write failed");
    this.#transportEnded(cause);
  };

  /** Writes a chunk that counts `counted` toward maxSendQueue until it is written. */
  #writeChunk(chunk: Uint8Array, counted: number): void {
    this.#writesStarted++;
    this.#queued += counted;
    if (this.#out === null) {
      // The transport is on its way: keep the chunk, in order, until it comes.
      this.#lastWrite = new Promise((settle) => this.#early.push({ chunk, counted, settle }));
      return;
    }
    if (this.#watchdog === undefined && this.#options.timeout !== Infinity) this.#armWatchdog();
    this.#lastWrite = this.#out.write(chunk, counted);
  }

  /**
   * Watches the writes while any is pending: checks every quarter of `timeout` whether one
   * finished since the last check, and ends the session once none did for four checks in a
   * row. So writes that make no progress are caught between 1 and 1.25 × `timeout` after the
   * last one finished or they began, without reading the clock per write. (One check per
   * `timeout` let a stall that began just after a check run for nearly twice that.) Under
   * 100 ms, one check per `timeout`: four chained short timers would be clamped to 4 ms each.
   */
  #armWatchdog(): void {
    const mark = this.#writesDone;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#state === CLOSED || this.#writesDone === this.#writesStarted) {
        this.#stalledChecks = 0;
        return;
      }
      if (this.#writesDone !== mark) this.#stalledChecks = 0;
      else if (++this.#stalledChecks >= this.#watchdogChecks) {
        if (this.#failure === null) {
          this.#failure = new WebSocketError(
            `Cannot send: a write took longer than the timeout of ${this.#options.timeout} ms`,
            CloseCode.AbnormalClosure,
          );
          this.#failureReason = "write timeout"; // reported locally; nothing can be sent
          this.#handler?.fail(this.#failure);
        }
        this.#finish(this.#result(false), true);
        return;
      }
      this.#armWatchdog();
    }, this.#options.timeout / this.#watchdogChecks);
  }

  get #watchdogChecks(): number {
    return this.#options.timeout < 100 ? 1 : WATCHDOG_CHECKS;
  }
}

/**
 * Where a session's bytes go: writes run in order and settle once written or failed (never
 * rejecting: the session is told through its callbacks).
 */
interface Out {
  /** Writes `chunk` after the chunks before it; `counted` is given back once it is written. */
  write(chunk: Uint8Array, counted: number): Promise<void>;
  /** Waits for the writes, then ends the transport; never rejects. */
  close(): Promise<void>;
  /** Ends the transport at once, with writes maybe in flight. */
  abort(): void;
}

/**
 * Writes that an abort may have to settle itself: the write in flight of a transport that
 * cannot interrupt it (a writable stream's sink, or a direct transport with no `close()`)
 * stays pending until the transport returns, which one whose peer stopped reading never
 * does; the send awaiting it must not wait forever once the session ended.
 */
class Abandonable {
  readonly #settles = new Set<() => void>();

  /** Resolves when `written` does, or when {@linkcode abandon} comes first. */
  track(written: Promise<void>): Promise<void> {
    return new Promise((settle) => {
      this.#settles.add(settle);
      written.then(() => {
        if (this.#settles.delete(settle)) settle();
      });
    });
  }

  /** Settles the writes still pending, after telling `failed` (once) that they were cut. */
  abandon(failed: (cause: unknown) => void): void {
    if (this.#settles.size === 0) return;
    const settles = [...this.#settles];
    this.#settles.clear();
    failed(new Error("The transport was aborted with a write in flight"));
    for (const settle of settles) settle();
  }
}

/** An {@linkcode Out} over a transport's writable stream. */
class StreamOut implements Out {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #written: (counted: number) => void;
  readonly #failed: (cause: unknown) => void;
  readonly #pending = new Abandonable();

  constructor(
    writable: WritableStream<Uint8Array>,
    written: (counted: number) => void,
    failed: (cause: unknown) => void,
  ) {
    this.#writer = writable.getWriter();
    this.#writer.closed.catch(noop);
    this.#written = written;
    this.#failed = failed;
  }

  write(chunk: Uint8Array, counted: number): Promise<void> {
    return this.#pending.track(
      this.#writer.write(chunk).then(() => this.#written(counted), this.#failed),
    );
  }

  close(): Promise<void> {
    return this.#writer.close().then(noop, noop);
  }

  abort(): void {
    // Not awaited: aborting waits for the write in flight, which may never finish.
    this.#writer.abort().catch(noop);
    this.#pending.abandon(this.#failed);
  }
}

/**
 * An {@linkcode Out} over a transport's direct `write` (a partial write is continued). A
 * write costs two promises when no other is under way (the transport's and one `then`): this
 * is on the path of every message.
 */
class DirectOut implements Out {
  readonly #transport: Transport;
  readonly #written: (counted: number) => void;
  readonly #failedCallback: (cause: unknown) => void;
  #failure: unknown = null;
  /** Writes accepted and not yet settled. */
  #pending = 0;
  /** The latest write, while any is pending: the next one starts after it settles. */
  #tail: Promise<void> = Promise.resolve();
  /** The bytes of the write under way (one at a time), and how many of them went. */
  #bytes: Uint8Array = NO_BYTES;
  #at = 0;
  /** What the write under way counts toward maxSendQueue. */
  #counted = 0;
  /**
   * For a transport with no `close()` to interrupt a write in flight: its writes, which an
   * abort settles itself (a `Deno.Conn` has one, and pays nothing for this).
   */
  readonly #uninterruptible: Abandonable | null;
  /** Where each chunk goes once written, in case it is a lent block (see lib/_slab.ts). */
  readonly #slab: Slab;

  constructor(
    transport: Transport,
    written: (counted: number) => void,
    failed: (cause: unknown) => void,
    slab: Slab,
  ) {
    this.#slab = slab;
    this.#transport = transport;
    this.#written = written;
    this.#failedCallback = failed;
    this.#uninterruptible = typeof transport.close === "function" ? null : new Abandonable();
  }

  write(chunk: Uint8Array, counted: number): Promise<void> {
    if (this.#pending++ === 0) this.#tail = this.#start(chunk, counted);
    else this.#tail = this.#tail.then(() => this.#start(chunk, counted));
    return this.#uninterruptible === null ? this.#tail : this.#uninterruptible.track(this.#tail);
  }

  #start(chunk: Uint8Array, counted: number): Promise<void> {
    // After a failure or an abort, a write is not made, and fails like the one that failed.
    if (this.#failure !== null) return Promise.reject(this.#failure).then(noop, this.#failed);
    this.#bytes = chunk;
    this.#at = 0;
    this.#counted = counted;
    return this.#send(chunk);
  }

  #send(bytes: Uint8Array): Promise<void> {
    let written: Promise<number>;
    try {
      written = this.#transport.write!(bytes);
    } catch (error) {
      // A transport that throws instead of rejecting: the failure is still reported later,
      // never from inside the session's own call to send.
      written = Promise.reject(error);
    }
    return written.then(this.#wrote, this.#failed);
  }

  readonly #wrote = (n: number): Promise<void> | undefined => {
    this.#at += n;
    if (this.#at < this.#bytes.length) return this.#send(this.#bytes.subarray(this.#at));
    this.#slab.giveBack(this.#bytes);
    this.#bytes = NO_BYTES; // nothing of a block lent elsewhere now
    this.#pending--;
    this.#written(this.#counted);
  };

  readonly #failed = (cause: unknown): void => {
    this.#failure ??= cause ?? new Error("Write failed");
    this.#pending--;
    this.#failedCallback(cause);
  };

  async close(): Promise<void> {
    if (this.#pending > 0) await this.#tail;
    this.abort();
  }

  abort(): void {
    this.#failure ??= new Error("Aborted");
    try {
      this.#transport.close?.();
    } catch {
      // Closed already.
    }
    this.#uninterruptible?.abandon(this.#failedCallback);
  }
}
