// Copyright 2026 the wirestream authors. MIT license.
// The size of a connection's next read buffer, from what its reads returned. A read that waits
// holds its buffer until bytes come (a Deno.Conn's read op keeps it), and a server's connections
// mostly wait: an idle WebSocket session or kept-alive HTTP client held 64 KiB each while every
// read got one. So the buffer stays small while reads are small, grows when a read fills more
// than half of it, and goes back to its first size after a run of small reads. Used by the
// WebSocket sessions' ChunkReader and by BufferedReader, each with its own steps.

/** The size of the next read's buffer: up while reads are large, down after small ones. */
export class ReadSize {
  /** The size of the next buffer. */
  size: number;
  /** Reads in a row of at most `smallAt` bytes. */
  #smallReads = 0;

  /**
   * @param initial The first size, and the size after a run of small reads.
   * @param max The largest size.
   * @param grown The size after `size`, when a read filled more than half of it (capped at
   * `max`).
   * @param smallAt A read of at most this many bytes is small.
   * @param shrinkAfter The small reads in a row that send the size back to `initial`.
   */
  constructor(
    readonly initial: number,
    readonly max: number,
    readonly grown: (size: number) => number,
    readonly smallAt: number,
    readonly shrinkAfter: number,
  ) {
    this.size = initial;
  }

  /** Takes note of a read of `n` bytes. */
  read(n: number): void {
    if (n > this.size >>> 1) {
      this.#smallReads = 0;
      this.size = Math.min(this.max, this.grown(this.size));
    } else if (n > this.smallAt) {
      this.#smallReads = 0;
    } else if (++this.#smallReads >= this.shrinkAfter) {
      this.size = this.initial;
    }
  }
}
