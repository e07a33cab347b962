// Copyright 2026 the wirestream authors. MIT license.
// The `incoming` stream of both engines' sessions: a queue of unread items in front of a
// ReadableStream with no queue of its own, and an async iterator (`for await`) that takes the
// items from the queue directly. The stream's own read costs a read request, a call of pull
// and several promises per item (about 630 ns in Deno 2.9, against 150 ns for the iterator),
// and `for await` over `incoming` is the common way to read a session.

import { WebSocketError } from "./error.ts";
import { CloseCode } from "./frame.ts";

/** What an iterator of `incoming` returns once it ended. */
const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

const noop = () => {};

/**
 * What each queued message counts on top of its bytes, for a bound or a read-ahead: what the
 * queue holds for it besides them (an empty binary message, its ArrayBuffer, view and queue
 * slots, retains 218 bytes measured), so that a flood of empty messages is bounded by the
 * same bytes.
 */
export const ITEM_OVERHEAD = 256;

/** What settles a `next()` of an iterator that waits for an item. */
type NextRequest<T> = (result: IteratorResult<T> | Promise<IteratorResult<T>>) => void;

/** What differs between the engines' inboxes. */
export interface InboxOptions<T> {
  /** `incoming` was cancelled: close the session. */
  cancel: () => void;
  /**
   * For an engine with read backpressure (the wire engine): asks for more items. Called when
   * a read or a `next()` waits and nothing is queued, and when a read takes the last queued
   * item, so that the next input is read while the consumer works (what a stream with a
   * high-water mark of 1 does). The engine reads while {@linkcode Inbox.wantsMore}.
   */
  pull?: () => void;
  /**
   * For an engine without read backpressure (the native one, whose socket is read whatever we
   * do): the most bytes of unread items to hold, and what an item counts. An item that would
   * take the queue over it is refused with 1008, unless the queue is empty.
   */
  bound?: { maxQueuedBytes: number; size: (item: T) => number };
  /**
   * For an engine with read backpressure: the bytes of unread items (as `size` counts them)
   * below which it reads on. Without it, the engine stops once one item is queued.
   */
  readAhead?: { bytes: number; size: (item: T) => number };
}

/**
 * The unread items of a session: a `ReadableStream` with no queue of its own (high-water mark
 * 0), fed from a queue. An item goes straight to a read or `next()` that waits for one;
 * otherwise it waits here, and one is handed on per read. An async iterator of the stream
 * takes them from here directly, without the stream's reads (see {@linkcode IncomingIterator}).
 * A failure errors the stream only once what was queued before it was read, and the end
 * closes it after them.
 */
export class Inbox<T> {
  readonly stream: ReadableStream<T>;
  #controller!: ReadableStreamDefaultController<T>;
  readonly #pull: () => void;
  readonly #bound: { maxQueuedBytes: number; size: (item: T) => number } | undefined;
  readonly #readAhead: number;
  /** What an item counts, when the queue is bounded or reads ahead in bytes. */
  readonly #size: ((item: T) => number) | undefined;
  readonly #items: T[] = [];
  /** The size of each queued item, when the queue is counted in bytes. */
  readonly #sizes: number[] = [];
  #bytes = 0;
  /** A read of the stream waits, and nothing is queued. */
  #waiting = false;
  /** The `next()` calls of an iterator that wait, in order. */
  readonly #nexts: NextRequest<T>[] = [];
  /** The iterator that holds the stream's lock, if one does. */
  #iterator: IncomingIterator<T> | null = null;
  /** No more items will come; the stream ends once the queue is read. */
  #done = false;
  #error: unknown = undefined;
  /** The stream was closed, errored or cancelled. */
  #settled = false;

  constructor(options: InboxOptions<T>) {
    this.#pull = options.pull ?? noop;
    this.#bound = options.bound;
    this.#readAhead = options.readAhead?.bytes ?? 0;
    this.#size = options.bound?.size ?? options.readAhead?.size;
    const cancel = options.cancel;
    this.stream = new IncomingStream(this, {
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => {
        if (this.#items.length > 0) {
          this.#controller.enqueue(this.#take());
        } else if (this.#done) {
          this.#settle();
        } else {
          this.#waiting = true;
          this.#pull();
        }
      },
      cancel: () => {
        this.#done = this.#settled = true;
        this.#error = undefined; // cancelled: the stream is closed, whatever came before
        this.#items.length = this.#sizes.length = this.#bytes = 0;
        cancel();
      },
    });
  }

  /**
   * Whether the engine should read more input: more may come, and nothing is queued (a
   * consumer may wait) or, with `readAhead`, less than its bytes are. The wire engine's
   * decoder stops as soon as this turns false, so the queue holds at most one item more.
   */
  get wantsMore(): boolean {
    return !this.#done && (this.#items.length === 0 || this.#bytes < this.#readAhead);
  }

  /**
   * Hands an item on, or queues it.
   *
   * @throws {WebSocketError} 1008 when the queue is bounded and it would take it over.
   */
  push(item: T): void {
    if (this.#done) return;
    if (this.#nexts.length > 0) {
      this.#nexts.shift()!({ value: item, done: false });
      return;
    }
    if (this.#waiting) {
      this.#waiting = false;
      this.#controller.enqueue(item);
      return;
    }
    const bound = this.#bound;
    if (this.#size !== undefined) {
      const size = this.#size(item);
      if (
        bound !== undefined && this.#items.length > 0 && this.#bytes + size > bound.maxQueuedBytes
      ) {
        throw new WebSocketError(
          `Cannot queue message: unread messages of ${
            this.#bytes + size
          } bytes exceed maxQueuedBytes of ${bound.maxQueuedBytes} bytes`,
          CloseCode.PolicyViolation,
        );
      }
      this.#sizes.push(size);
      this.#bytes += size;
    }
    this.#items.push(item);
  }

  /** No more items: `incoming` ends once the queue is read. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#wake();
  }

  /** The session failed: `incoming` errors with `error` once the queue is read. */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#wake();
  }

  /** After the end: settles a read or the `next()` calls that wait (the queue is empty). */
  #wake(): void {
    if (this.#waiting) this.#settle();
    if (this.#nexts.length > 0) this.#finishIterator();
  }

  #take(): T {
    if (this.#size !== undefined) this.#bytes -= this.#sizes.shift()!;
    const item = this.#items.shift()!;
    // Ask for more when the queue empties, or falls below readAhead again: the engine stopped
    // reading once it was above, and reads on while the consumer works.
    if (!this.#done && (this.#items.length === 0 || this.#bytes < this.#readAhead)) this.#pull();
    return item;
  }

  #settle(): void {
    this.#waiting = false;
    if (this.#settled) return;
    this.#settled = true;
    if (this.#error === undefined) this.#controller.close();
    else this.#controller.error(this.#error);
  }

  /**
   * `iterator` took the stream's lock: items go to it from now on. Returns how many items
   * wait in the stream's own queue (handed to a read of an earlier reader that was released
   * before it got them), which the iterator reads through the stream first.
   */
  attach(iterator: IncomingIterator<T>): number {
    this.#iterator = iterator;
    this.#waiting = false; // the read it waited for went with its reader
    return this.#settled ? 0 : -(this.#controller.desiredSize ?? 0);
  }

  /** `iterator` released the stream's lock. */
  detach(iterator: IncomingIterator<T>): void {
    if (this.#iterator === iterator) this.#iterator = null;
  }

  /** The next item for the attached iterator, or the end; waits for one when none is here. */
  next(): Promise<IteratorResult<T>> {
    if (this.#nexts.length === 0) {
      if (this.#items.length > 0) return Promise.resolve({ value: this.#take(), done: false });
      if (this.#done) return this.#finishIterator();
    }
    const next = new Promise<IteratorResult<T>>((resolve) => this.#nexts.push(resolve));
    this.#pull();
    return next;
  }

  /**
   * The attached iterator read everything: end the stream, release its lock, and settle the
   * `next()` calls that wait (the first with the failure, if the session failed).
   */
  #finishIterator(): Promise<IteratorResult<T>> {
    const iterator = this.#iterator;
    this.#iterator = null;
    this.#settle();
    iterator?.release();
    const nexts = this.#nexts.splice(0);
    const result = this.#error === undefined ? Promise.resolve(DONE) : Promise.reject(this.#error);
    nexts.shift()?.(result);
    for (const next of nexts) next(DONE);
    return result;
  }
}

/**
 * The `incoming` stream: a `ReadableStream` whose async iterator takes the items from the
 * inbox itself; `getReader()`, `pipeTo()` and `tee()` read through the stream.
 */
class IncomingStream<T> extends ReadableStream<T> {
  readonly #inbox: Inbox<T>;

  constructor(inbox: Inbox<T>, source: UnderlyingDefaultSource<T>) {
    super(source, { highWaterMark: 0 });
    this.#inbox = inbox;
  }

  override values(options?: ReadableStreamIteratorOptions): AsyncIterableIterator<T> {
    return new IncomingIterator(this.#inbox, this.getReader(), Boolean(options?.preventCancel));
  }

  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    return this.values(options);
  }
}

/**
 * An async iterator of `incoming` that behaves as the Streams standard's (it holds the
 * stream's lock, `return()` cancels the stream unless `preventCancel`, the lock is released
 * at the end), reading the inbox rather than the stream.
 */
class IncomingIterator<T> implements AsyncIterableIterator<T> {
  readonly #inbox: Inbox<T>;
  #reader: ReadableStreamDefaultReader<T> | null;
  readonly #preventCancel: boolean;
  /** Items in the stream's own queue, read through the stream before the inbox's. */
  #inStream: number;
  /** The promise of the last `next()`: `return()` waits for it, as the standard says. */
  #last: Promise<unknown> | null = null;

  constructor(inbox: Inbox<T>, reader: ReadableStreamDefaultReader<T>, preventCancel: boolean) {
    this.#inbox = inbox;
    this.#reader = reader;
    this.#preventCancel = preventCancel;
    this.#inStream = inbox.attach(this);
  }

  /** The next item, or the end once `incoming` ended (a rejection once it failed). */
  next(): Promise<IteratorResult<T>> {
    const reader = this.#reader;
    if (reader === null) return Promise.resolve(DONE);
    let next: Promise<IteratorResult<T>>;
    if (this.#inStream > 0) {
      this.#inStream--;
      next = reader.read() as Promise<IteratorResult<T>>;
    } else {
      next = this.#inbox.next();
    }
    this.#last = next;
    return next;
  }

  /** Ends the iteration: cancels `incoming` (which closes the session) unless `preventCancel`. */
  return(value?: unknown): Promise<IteratorResult<T>> {
    const last = this.#last;
    if (last !== null) {
      this.#last = null;
      const after = () => this.return(value);
      return last.then(after, after);
    }
    const reader = this.#reader;
    if (reader === null) return Promise.resolve({ value, done: true });
    const cancelled = this.#preventCancel ? undefined : reader.cancel(value);
    this.release();
    return (cancelled ?? Promise.resolve()).then(() => ({ value, done: true }));
  }

  /** Releases the stream's lock; `next()` gives the end from now on. */
  release(): void {
    this.#inbox.detach(this);
    this.#reader?.releaseLock();
    this.#reader = null;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
// Like the standard's iterators, it inherits %AsyncIteratorPrototype% (`Symbol.asyncDispose`).
Object.setPrototypeOf(
  IncomingIterator.prototype,
  Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype),
);
