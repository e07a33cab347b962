// Copyright 2026 the wirestream authors. MIT license.
// Reads a byte stream chunk by chunk, with a BYOB reader that reuses its buffer when the
// caller says no view of the last chunk escaped. A Deno.Conn's default reader allocates a
// fresh 64 KiB per read, which halves the requests per second a connection serves.

import { type DirectSource, openSource } from "../http/reader.ts";

/** Reads chunks from a byte stream, reusing one buffer while the caller lets it. */
export class ChunkReader {
  readonly #direct: DirectSource | null;
  readonly #byob: ReadableStreamBYOBReader | null;
  readonly #plain: ReadableStreamDefaultReader<Uint8Array> | null;
  readonly #size: number;
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
   * the buffer, with no stream in between.
   */
  constructor(readable: ReadableStream<Uint8Array> | DirectSource, size = 65_536) {
    this.#size = size;
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
      const whole = this.#spare ?? new Uint8Array(this.#size);
      this.#spare = null;
      this.#reading = whole;
      return this.#direct.read(whole).then(this.#directRead, this.#directFailed);
    }
    return this.#readStream();
  }

  readonly #directRead = (n: number | null): Uint8Array | null => {
    const whole = this.#reading!;
    this.#reading = null;
    if (n === null) return null;
    this.#lastWhole = whole;
    return this.#last = whole.subarray(0, n);
  };

  readonly #directFailed = (error: unknown): never => {
    this.#reading = null;
    throw error;
  };

  async #readStream(): Promise<Uint8Array | null> {
    if (this.#byob === null) {
      const { done, value } = await this.#plain!.read();
      return done ? null : value;
    }
    const whole = this.#spare ?? new Uint8Array(this.#size);
    this.#spare = null;
    const { done, value } = await this.#byob.read(whole);
    if (done) return null;
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
