// Copyright 2026 the wirestream authors. MIT license.
/**
 * A buffered byte reader that the HTTP parsers share: a head parser, a body decoder and then
 * the next request (or the first WebSocket frames after an upgrade) all read from one buffer,
 * so nothing read past one message is lost to the next.
 *
 * @module
 */

import { shown } from "../_options.ts";
import { ReadSize } from "../_read_size.ts";

/**
 * A source that reads straight into a caller's buffer, as `Deno.Conn.read` does: it resolves
 * with the number of bytes read, or null at the end.
 */
export interface DirectSource {
  /** Reads into `buffer`; resolves with the count, or null at the end of the input. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** The way a source is read, locked: directly, with a BYOB reader, or with its default one. */
export interface OpenedSource {
  /** The source itself, when it reads directly. */
  direct: DirectSource | null;
  /** A byte stream's BYOB reader. */
  byob: ReadableStreamBYOBReader | null;
  /** Any other stream's default reader. */
  plain: ReadableStreamDefaultReader<Uint8Array> | null;
}

/** Locks `source` with the cheapest reader it offers (shared by the readers of lib/). */
export function openSource(source: ReadableStream<Uint8Array> | DirectSource): OpenedSource {
  if (!(source instanceof ReadableStream)) return { direct: source, byob: null, plain: null };
  try {
    return { direct: null, byob: source.getReader({ mode: "byob" }), plain: null };
  } catch {
    return { direct: null, byob: null, plain: source.getReader() }; // not a byte stream
  }
}

const FALSE: Promise<boolean> = Promise.resolve(false);
/**
 * The buffer a reader starts with (or its `size`, if smaller). A connection's reader waits in
 * a read most of its life (a kept-alive client between requests) and that read holds its
 * buffer (lib/_read_size.ts): at 64 KiB each, 2000 WebSocket clients left 64 KiB each behind
 * them on the server (the buffer their upgrade request was read into).
 */
const INITIAL_SIZE = 4096;
/** Reads in a row of at most a quarter of INITIAL_SIZE after which the buffer shrinks back. */
const SMALL_READS = 8;
/** The buffer of a reader that let go of its own (see BufferedReader.discard). */
const EMPTY = new Uint8Array(0);

/** Options of {@linkcode BufferedReader}. */
export interface BufferedReaderOptions {
  /**
   * The most the read buffer grows to, in bytes: the most one read takes from the stream, and
   * the largest run of unread bytes the reader can hold (a request head must fit in it). The
   * buffer starts at 4 KiB (or this, if smaller); it grows when unread bytes fill it or a read
   * fills more than half of it, and shrinks back after a run of small reads.
   *
   * @default {65536}
   */
  size?: number;
}

/**
 * Reads a byte stream into one buffer that parsers look at in place. A byte stream (a
 * `Deno.Conn`'s readable) is read with a BYOB reader straight into the buffer's free space, and
 * the buffer is reused for as long as no view of it was handed out with {@linkcode take}; after
 * that, the next read moves the unread bytes to a fresh buffer. Any other stream is read with
 * its default reader and its chunks are copied in.
 *
 * The unread bytes are `buffer.subarray(start, end)`; {@linkcode fill} reads more,
 * {@linkcode consume} skips bytes, {@linkcode take} hands bytes out.
 *
 * @example Reading a head, then the bytes after it
 * ```ts
 * import { BufferedReader } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HEAD\r\n\r\nrest");
 * const reader = new BufferedReader(ReadableStream.from([bytes.subarray(0, 3), bytes.subarray(3)]));
 * while (reader.indexOf(Uint8Array.of(13, 10, 13, 10)) === -1) assert.ok(await reader.fill());
 * reader.consume(reader.indexOf(Uint8Array.of(13, 10, 13, 10)) + 4);
 * assert.equal(new TextDecoder().decode(reader.take(reader.end - reader.start)), "rest");
 * ```
 */
export class BufferedReader {
  /** The buffer; the unread bytes are `[start, end)`. */
  buffer: Uint8Array;
  /** Where the unread bytes begin. */
  start = 0;
  /** Where the unread bytes end. */
  end = 0;
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  readonly #size: number;
  /** The size of the next buffer (see #makeRoom), up to #size. */
  readonly #capacity: ReadSize;
  /** Whether a view of the buffer was handed out: then it is never written again. */
  #shared = false;
  #done = false;
  /** The part of a default reader's chunk that did not fit yet. */
  #leftover: Uint8Array | null = null;

  /**
   * Locks `source` (a stream) and allocates the buffer.
   *
   * @param source The bytes to read: a stream, or a {@linkcode DirectSource} such as a
   * `Deno.Conn`, read with no stream in between (about twice the requests per second on a
   * keep-alive connection).
   * @param options The buffer size.
   * @throws {RangeError} When `size` is not a positive integer.
   */
  constructor(
    source: ReadableStream<Uint8Array> | DirectSource,
    options: BufferedReaderOptions = {},
  ) {
    const size = options.size ?? 65_536;
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Invalid size: ${shown(size)} is not a positive integer`);
    }
    this.#size = size;
    this.#capacity = new ReadSize(
      Math.min(size, INITIAL_SIZE),
      size,
      (capacity) => capacity * 4,
      INITIAL_SIZE >>> 2,
      SMALL_READS,
    );
    this.buffer = new Uint8Array(this.#capacity.size);
    ({ direct: this.#direct, byob: this.#byob, plain: this.#plain } = openSource(source));
  }

  readonly #direct: DirectSource | null;

  /** The number of unread bytes. */
  get length(): number {
    return this.end - this.start;
  }

  /**
   * Whether the unread bytes may be read and consumed while a {@linkcode fill} is under way.
   * A byte stream's BYOB read takes the buffer away until it completes; a direct source and a
   * default reader leave it in place.
   */
  get readsBeside(): boolean {
    return this.#byob === null;
  }

  /** Whether the stream has ended (no more bytes will come after the unread ones). */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Reads more bytes into the buffer, after the unread ones. When the free space at the end
   * runs out, the unread bytes move to the front (or to a fresh buffer if a view was handed
   * out).
   *
   * @returns false at the end of the stream (or when the buffer is full of unread bytes),
   * true when bytes were added. A call while a fill is under way returns that fill.
   * @throws What the read threw; once a read failed, every later fill rejects with that error
   * (but for `Deno.errors.Interrupted`, after which the source may be read on).
   */
  fill(): Promise<boolean> {
    // A read failed: every fill after it fails the same. (A failed BYOB read leaves the
    // buffer detached, which a fill would otherwise take for a full buffer, for good.)
    if (this.#failure !== null) return Promise.reject(this.#failure.error);
    // One read at a time: a caller that gave up waiting on a read (a timeout) and comes back
    // gets the same read, not a second one into the same buffer.
    if (this.#filling === null) {
      if (this.#direct !== null) return this.#fillDirect();
      this.#filling = this.#fill();
      this.#filling.then(this.#filled, this.#fillFailed);
    }
    return this.#filling;
  }

  #filling: Promise<boolean> | null = null;
  /** The error of a read that failed (boxed: a source may fail with anything). */
  #failure: { error: unknown } | null = null;
  readonly #filled = (): void => {
    this.#filling = null;
  };
  readonly #fillFailed = (error: unknown): void => {
    this.#filling = null;
    this.#failed(error);
  };

  /**
   * Keeps a read's failure for the fills after it, but for an interrupted read: closing our
   * sending half interrupts a read under way, and the connection reads on (a lingering close).
   */
  #failed(error: unknown): void {
    if (!(error instanceof Deno.errors.Interrupted)) this.#failure ??= { error };
  }

  /**
   * A direct source's fill: no async frame, callbacks bound once, and the view of the free
   * space reused while it stays the same (the whole buffer, when the last request was read
   * to its end). A keep-alive connection fills once per request.
   */
  #fillDirect(): Promise<boolean> {
    if (this.#done) return FALSE;
    this.#makeRoom();
    if (this.end === this.buffer.length) return FALSE; // full of unread bytes
    if (
      this.#free === null || this.#free.buffer !== this.buffer.buffer || this.#freeAt !== this.end
    ) {
      this.#free = new Uint8Array(
        this.buffer.buffer,
        this.buffer.byteOffset + this.end,
        this.buffer.length - this.end,
      );
      this.#freeAt = this.end;
    }
    let read: Promise<number | null>;
    try {
      read = this.#direct!.read(this.#free);
    } catch (error) {
      this.#failed(error);
      return Promise.reject(error);
    }
    return this.#filling = read.then(this.#readDirect, this.#readFailed);
  }

  #free: Uint8Array | null = null;
  #freeAt = 0;

  readonly #readDirect = (n: number | null): boolean => {
    this.#filling = null;
    if (n === null) {
      this.#done = true;
      return false;
    }
    this.end += n;
    this.#capacity.read(n);
    return true;
  };

  readonly #readFailed = (error: unknown): never => {
    this.#filling = null;
    this.#failed(error);
    throw error;
  };

  async #fill(): Promise<boolean> {
    if (this.#done && this.#leftover === null) return false;
    this.#makeRoom();
    if (this.end === this.buffer.length) return false; // full of unread bytes
    if (this.#byob !== null) {
      const { done, value } = await this.#byob.read(
        new Uint8Array(this.buffer.buffer, this.end, this.buffer.length - this.end),
      );
      if (value !== undefined) this.buffer = new Uint8Array(value.buffer); // the buffer was transferred
      if (done || value === undefined || value.length === 0) {
        this.#done = done;
        return !done;
      }
      this.end += value.length;
      this.#capacity.read(value.length);
      return true;
    }
    let chunk = this.#leftover;
    this.#leftover = null;
    while (chunk === null) {
      const { done, value } = await this.#plain!.read();
      if (done) {
        this.#done = true;
        return false;
      }
      if (value.length > 0) chunk = value;
    }
    const n = Math.min(this.buffer.length - this.end, chunk.length);
    this.buffer.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.end);
    this.end += n;
    this.#capacity.read(n);
    if (n < chunk.length) this.#leftover = chunk.subarray(n); // the rest waits for room
    return true;
  }

  #makeRoom(): void {
    if (this.start === this.end && !this.#shared) {
      this.start = this.end = 0;
      // Empty: the buffer takes the size the last reads asked for, with nothing to copy.
      const capacity = this.#capacity.size;
      if (this.buffer.length !== capacity) this.buffer = new Uint8Array(capacity);
      return;
    }
    if (this.#shared) {
      this.#moveTo(Math.max(this.#capacity.size, this.length));
      this.#shared = false;
    } else if (this.start > 0 && this.end === this.buffer.length) {
      this.buffer.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buffer.length && this.buffer.length < this.#size) {
      // Full of unread bytes (a head not ended yet, a body its reader has not taken): grow.
      this.#capacity.size = Math.min(this.#size, this.buffer.length * 4);
      this.#moveTo(this.#capacity.size);
    }
  }

  /** Moves the unread bytes to the front of a new buffer of `size` bytes. */
  #moveTo(size: number): void {
    const fresh = new Uint8Array(size);
    fresh.set(this.buffer.subarray(this.start, this.end));
    this.buffer = fresh;
    this.end -= this.start;
    this.start = 0;
  }

  /**
   * Finds `needle` in the unread bytes.
   *
   * @param needle The bytes to look for.
   * @param from Where to start, relative to `start`.
   * @returns Its offset relative to `start`, or -1.
   */
  indexOf(needle: Uint8Array, from = 0): number {
    const buffer = this.buffer, last = this.end - needle.length, first = needle[0]!;
    outer: for (let i = this.start + from; i <= last; i++) {
      if (buffer[i] !== first) continue;
      for (let j = 1; j < needle.length; j++) if (buffer[i + j] !== needle[j]) continue outer;
      return i - this.start;
    }
    return -1;
  }

  /**
   * Skips `n` unread bytes.
   *
   * @param n How many; at most {@linkcode length}.
   */
  consume(n: number): void {
    this.start += n;
  }

  /**
   * Hands out the next `n` unread bytes as a view and consumes them. The buffer is not
   * written again: the next {@linkcode fill} moves on to a fresh one.
   *
   * @param n How many; at most {@linkcode length}.
   * @returns The view.
   */
  take(n: number): Uint8Array {
    const view = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + this.start, n);
    this.start += n;
    this.#shared = true;
    return view;
  }

  /**
   * Copies the next `n` unread bytes out and consumes them.
   *
   * @param n How many; at most {@linkcode length}.
   * @returns The copy.
   */
  copy(n: number): Uint8Array {
    const out = this.buffer.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /**
   * Copies out every byte read from the stream and not consumed yet, and consumes them: the
   * unread bytes, and the part of a non-byte stream's chunk that did not fit in the buffer.
   * Call it before {@linkcode releaseLock} to hand the stream on without losing a byte.
   *
   * @returns The bytes.
   */
  rest(): Uint8Array {
    const leftover = this.#leftover;
    this.#leftover = null;
    const out = new Uint8Array(this.length + (leftover?.length ?? 0));
    out.set(this.buffer.subarray(this.start, this.end));
    if (leftover !== null) out.set(leftover, this.length);
    this.start = this.end;
    return out;
  }

  /**
   * The bytes a read under way will add, for whoever takes the source over after
   * {@linkcode rest}: a direct source's read cannot be cancelled, and what it reads lands in
   * this reader's buffer. Resolves with them (empty at the end of the input or on an error,
   * which the next owner then meets itself); null when no read is under way.
   *
   * @returns The bytes of the read under way, or null.
   */
  pendingRest(): Promise<Uint8Array> | null {
    const filling = this.#filling;
    if (filling === null) return null;
    return filling.then(() => this.rest(), () => new Uint8Array(0));
  }

  /**
   * Lets go of the buffer, for a reader whose source was handed on ({@linkcode rest},
   * {@linkcode releaseLock}) and that may stay referenced: it then holds no memory of its own.
   * Unread bytes are dropped, and a later {@linkcode fill} returns false, as at the end of the
   * stream. A fill under way (a direct source's read cannot be cancelled) keeps the buffer until
   * it ends; what it reads is dropped too, after the callbacks already waiting on it (those of
   * {@linkcode pendingRest}) have run.
   *
   * @example Handing the source on, then dropping the buffer
   * ```ts
   * import { BufferedReader } from "@wirestream/wirestream";
   * import assert from "node:assert/strict";
   *
   * const reader = new BufferedReader(ReadableStream.from([Uint8Array.of(1, 2, 3)]));
   * assert.ok(await reader.fill());
   * assert.deepEqual([...reader.rest()], [1, 2, 3]); // for the next owner
   * reader.releaseLock();
   * reader.discard();
   * assert.equal(reader.buffer.length, 0);
   * assert.equal(await reader.fill(), false);
   * ```
   */
  discard(): void {
    const filling = this.#filling;
    if (filling !== null) {
      const later = () => this.discard();
      filling.then(later, later);
      return;
    }
    this.#done = true;
    this.buffer = EMPTY;
    this.start = this.end = 0;
    this.#free = null;
    this.#leftover = null;
    this.#shared = false;
  }

  /** Releases the stream's lock, leaving the unread bytes here (see {@linkcode rest}). */
  releaseLock(): void {
    (this.#byob ?? this.#plain)?.releaseLock();
  }

  /**
   * Cancels the stream; never throws.
   *
   * @param reason Why.
   */
  async cancel(reason?: unknown): Promise<void> {
    try {
      await (this.#byob ?? this.#plain)?.cancel(reason); // a direct source is closed by its owner
    } catch {
      // Already closed or errored.
    }
  }
}
