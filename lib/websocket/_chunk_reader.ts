// Copyright 2026 the wirestream authors. MIT license.
// Reads a byte stream chunk by chunk, with a BYOB reader that reuses its buffer when the
// caller says no view of the last chunk escaped. A Deno.Conn's default reader allocates a
// fresh 64 KiB per read, which halves the requests per second a connection serves.
//
// A read that waits holds its buffer (lib/_read_size.ts): with 64 KiB each, 2000 idle sessions
// held 128 MiB in read buffers alone. So a connection whose recent reads were small reads into a
// small buffer (IDLE_SIZE), and one whose read fills more than half of that, into the large one.

import { type DirectSource, openSource } from "../http/reader.ts";
import { ReadSize } from "../_read_size.ts";

/** The buffer of a read while recent reads were small: what an idle session holds. */
const IDLE_SIZE = 4096;
/**
 * How many reads in a row of at most half of IDLE_SIZE send the next read to the small buffer:
 * a connection that gets large messages now and then keeps its large buffer between them.
 */
const SMALL_READS = 4;

/** Reads chunks from a byte stream, reusing one buffer while the caller lets it. */
export class ChunkReader {
  readonly #direct: DirectSource | null;
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  /** The next read's buffer: IDLE_SIZE or the large one, nothing between. */
  readonly #size: ReadSize;
  /** A whole buffer free for the next read, or null when the next read must allocate. */
  #spare: Uint8Array | null = null;
  /** The whole buffer of the direct read under way, or null when none is. */
  #reading: Uint8Array | null = null;
  /** The last chunk, and the whole buffer it is a view of. */
  #last: Uint8Array | null = null;
  #lastWhole: Uint8Array | null = null;

  /**
   * Locks `readable`. A byte stream is read with a BYOB reader into buffers of `size` bytes;
   * any other stream with its default reader; a direct source (a `Deno.Conn`) straight into
   * the buffer, with no stream in between. While its reads are small, it reads into a buffer of
   * `idleSize` bytes.
   */
  constructor(
    readable: ReadableStream<Uint8Array> | DirectSource,
    size = 65_536,
    idleSize = IDLE_SIZE,
  ) {
    const idle = Math.min(idleSize, size);
    this.#size = new ReadSize(idle, size, () => size, idle >>> 1, SMALL_READS);
    ({ direct: this.#direct, byob: this.#byob, plain: this.#plain } = openSource(readable));
  }

  /**
   * Reads the next chunk, or returns null at the end of the stream. Unless
   * {@linkcode recycle} is called, the chunk stays the caller's. One read at a time.
   *
   * @throws {TypeError} When a read is already under way.
   */
  read(): Promise<Uint8Array | null> {
    if (this.#direct !== null) {
      // Not an async function: on the hot path of every message, one promise less per read.
      if (this.#reading !== null) throw new TypeError("Cannot read: a read is under way");
      const whole = this.#buffer();
      this.#reading = whole;
      return this.#direct.read(whole).then(this.#directRead, this.#directFailed);
    }
    return this.#readStream();
  }

  readonly #directRead = (n: number | null): Uint8Array | null => {
    const whole = this.#reading!;
    this.#reading = null;
    if (n === null) return null;
    this.#size.read(n);
    this.#lastWhole = whole;
    return this.#last = whole.subarray(0, n);
  };

  /** The buffer of the next read: the spare one if it has the size wanted, else a new one. */
  #buffer(): Uint8Array {
    const size = this.#size.size;
    const spare = this.#spare;
    this.#spare = null; // one of the other size is dropped: an idle read holds no large one
    return spare !== null && spare.length === size ? spare : new Uint8Array(size);
  }

  readonly #directFailed = (error: unknown): never => {
    this.#reading = null;
    throw error;
  };

  async #readStream(): Promise<Uint8Array | null> {
    if (this.#byob === null) {
      const { done, value } = await this.#plain!.read();
      return done ? null : value;
    }
    const { done, value } = await this.#byob.read(this.#buffer());
    if (done) return null;
    this.#size.read(value.length);
    this.#lastWhole = new Uint8Array(value.buffer); // the read transferred the buffer
    this.#last = value;
    return value;
  }

  /**
   * Declares that no view of the last chunk is held any more, so its buffer is reused (also
   * when called while the next read is under way: that read's buffer stays its own).
   */
  recycle(): void {
    if (this.#last !== null) this.#spare = this.#lastWhole;
    this.#last = null;
    this.#lastWhole = null;
  }

  /** Cancels the stream; never throws. */
  async cancel(reason?: unknown): Promise<void> {
    try {
      await (this.#byob ?? this.#plain)?.cancel(reason); // a direct source is closed by its owner
    } catch {
      // Already errored or closed.
    }
  }
}
