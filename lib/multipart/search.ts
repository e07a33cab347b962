// Copyright 2026 the wirestream authors. MIT license.
/**
 * The boundary search of the multipart parser: Boyer–Moore–Horspool over each chunk, and a
 * small carry for a delimiter that straddles two chunks.
 *
 * @module
 */

/** Receives the bytes that are not part of a match. */
export type SearchEmit = (bytes: Uint8Array) => void;

/**
 * Finds a needle in a byte stream fed chunk by chunk, and hands on every byte before it. The
 * needle's first byte must not occur again in it (a multipart delimiter, `CRLF--boundary`,
 * starts with the only CR it holds), so a candidate that fails can never hide a later one
 * inside it: the search never backs up, and the bytes it holds back from one chunk (a tail of
 * it that may begin a match) are at most the needle's length minus one.
 *
 * Within a chunk the search is Horspool's: it looks at the byte under the needle's last
 * position and shifts by up to the needle's length (44 bytes for a browser's boundary), so
 * random binary content is skipped at about one byte read in forty. Nothing is allocated per
 * byte or per chunk: data goes out as views of the chunk; only held-back bytes that turn out
 * not to be a match go out as a copy.
 */
export class BoundarySearch {
  /** The bytes looked for. */
  readonly needle: Uint8Array;
  /** Horspool's shift per byte value: the distance from its last occurrence to the end. */
  readonly #skip: Uint8Array;
  /** {@linkcode #skip} but 0 for the needle's last byte: a cursor stops on a candidate. */
  readonly #stop: Uint8Array;
  /** The bytes held back: a tail of the previous chunks that is a prefix of the needle. */
  readonly #carry: Uint8Array;
  #carried = 0;
  /** How many bytes at the start of the carry were assumed (see {@linkcode prime}), not read. */
  #assumed = 0;

  /**
   * Prepares the search.
   *
   * @param needle The bytes to find: 2 to 255 of them, the first not occurring again.
   * @throws {RangeError} For a needle that breaks those rules.
   */
  constructor(needle: Uint8Array) {
    const m = needle.length;
    if (m < 2 || m > 255 || needle.indexOf(needle[0]!, 1) !== -1) {
      throw new RangeError(
        `Invalid needle: ${m} bytes, or its first byte occurs again (need 2 to 255, first byte once)`,
      );
    }
    this.needle = needle.slice();
    this.#skip = new Uint8Array(256).fill(m);
    for (let j = 0; j < m - 1; j++) this.#skip[needle[j]!] = m - 1 - j;
    this.#stop = this.#skip.slice();
    this.#stop[needle[m - 1]!] = 0;
    this.#carry = new Uint8Array(m);
  }

  /** The number of bytes held back, as a possible start of a match. */
  get carried(): number {
    return this.#carried;
  }

  /**
   * Acts as if the first `n` bytes of the needle were just seen, without them being data: a
   * multipart body may start with `--boundary`, the delimiter without its CRLF.
   *
   * @param n How many, from 1 to the needle's length minus one.
   */
  prime(n: number): void {
    for (let j = 0; j < n; j++) this.#carry[j] = this.needle[j]!; // no view: this runs per part
    this.#carried = n;
    this.#assumed = n;
  }

  /** Forgets any held-back bytes (after a match, the search starts afresh). */
  reset(): void {
    this.#carried = 0;
    this.#assumed = 0;
  }

  /**
   * Scans `chunk[from, end)` for the needle, continuing a match held back from before.
   *
   * @param chunk The next bytes of the stream.
   * @param from Where to start in it.
   * @param emit Receives, in order, the bytes before the match (or all that cannot begin one):
   * views of `chunk`, or a copy of bytes held back from an earlier chunk.
   * @returns The index in `chunk` just past the needle, or -1 when the chunk ended first (its
   * tail may then be held back).
   */
  push(chunk: Uint8Array, from: number, emit: SearchEmit): number {
    const needle = this.needle, m = needle.length, end = chunk.length;
    const i = from;
    if (this.#carried > 0) {
      const k = this.#carried, n = Math.min(m - k, end - i);
      let j = 0;
      while (j < n && chunk[i + j] === needle[k + j]) j++;
      if (j === n) {
        if (k + n === m) {
          this.reset();
          return i + n;
        }
        this.#carry.set(chunk.subarray(i, i + n), k); // still a prefix, and the chunk is out
        this.#carried = k + n;
        return -1;
      }
      // Not a match. As the needle's first byte occurs nowhere else in it, no match can begin
      // inside the held-back bytes: they are all data, but for any assumed ones.
      if (k > this.#assumed) emit(this.#carry.slice(this.#assumed, k));
      this.reset();
    }
    const at = this.indexOf(chunk, i, end);
    if (at !== -1) {
      if (at > i) emit(new Uint8Array(chunk.buffer, chunk.byteOffset + i, at - i));
      return at + m;
    }
    const tail = this.#prefixTail(chunk, i, end);
    if (tail > i) emit(new Uint8Array(chunk.buffer, chunk.byteOffset + i, tail - i));
    if (tail < end) {
      this.#carry.set(chunk.subarray(tail, end));
      this.#carried = end - tail;
    }
    return -1;
  }

  /**
   * Finds the needle wholly inside `bytes[from, end)` (Horspool).
   *
   * @returns The index where it starts, or -1.
   */
  indexOf(bytes: Uint8Array, from: number, end: number = bytes.length): number {
    const last = this.needle.length - 1, span = end - from - last;
    if (span < 64 * last) return this.#scan(bytes, from + last, end);
    // Four cursors over four quarters, stepped together. Each step of one cursor waits on two
    // loads (the byte, then its shift), so a single cursor runs at the latency of those loads;
    // four independent ones overlap them (1.5 times one on a 64 KiB chunk; eight gained little
    // more). Each cursor takes three steps per turn with #stop, whose shift is 0 at the
    // needle's last byte: a cursor on a candidate stays there, and one test per turn (did a
    // last step not move?) replaces a test of every byte read: a 64 KiB chunk in cache took
    // 2.3-2.5 us instead of 5.1-5.5, and parseMultipart 6 % less time on the 200 MiB body in one
    // process (BENCHMARKS.md). A cursor that finds the needle stops at the end of its quarter;
    // the quarters are then finished in order, so the first match wins.
    const stop = this.#stop, m = last + 1, q = span >> 2;
    const shift = this.#skip[this.needle[last]!]!; // past a candidate that is not a match
    const e1 = from + last + q, e2 = e1 + q, e3 = e2 + q;
    // Three steps of at most m bytes from before these limits stay inside the quarter.
    const l1 = e1 - 3 * m, l2 = e2 - 3 * m, l3 = e3 - 3 * m, l4 = end - 3 * m;
    let a = from + last, b = e1, c = e2, d = e3;
    let fa = -1, fb = -1, fc = -1, fd = -1;
    while (a < l1 && b < l2 && c < l3 && d < l4) {
      const a1 = a + stop[bytes[a]!]!, b1 = b + stop[bytes[b]!]!;
      const c1 = c + stop[bytes[c]!]!, d1 = d + stop[bytes[d]!]!;
      const a2 = a1 + stop[bytes[a1]!]!, b2 = b1 + stop[bytes[b1]!]!;
      const c2 = c1 + stop[bytes[c1]!]!, d2 = d1 + stop[bytes[d1]!]!;
      a = a2 + stop[bytes[a2]!]!;
      b = b2 + stop[bytes[b2]!]!;
      c = c2 + stop[bytes[c2]!]!;
      d = d2 + stop[bytes[d2]!]!;
      if (a !== a2 && b !== b2 && c !== c2 && d !== d2) continue;
      // A cursor whose last step did not move stands on the needle's last byte.
      if (a === a2) {
        if (this.#endsAt(bytes, a)) {
          fa = a - last;
          break;
        }
        a += shift;
      }
      if (b === b2) {
        if (this.#endsAt(bytes, b)) {
          fb = b - last;
          b = e2;
        } else b += shift;
      }
      if (c === c2) {
        if (this.#endsAt(bytes, c)) {
          fc = c - last;
          c = e3;
        } else c += shift;
      }
      if (d === d2) {
        if (this.#endsAt(bytes, d)) {
          fd = d - last;
          d = end;
        } else d += shift;
      }
    }
    if (fa !== -1) return fa;
    let at = this.#scan(bytes, a, e1);
    if (at !== -1) return at;
    if (fb !== -1) return fb;
    if ((at = this.#scan(bytes, b, e2)) !== -1) return at;
    if (fc !== -1) return fc;
    if ((at = this.#scan(bytes, c, e3)) !== -1) return at;
    if (fd !== -1) return fd;
    return this.#scan(bytes, d, end);
  }

  /** One Horspool cursor, for needle ends from `i` to before `stop`. */
  #scan(bytes: Uint8Array, i: number, stop: number): number {
    const skip = this.#skip, last = this.needle.length - 1, lastByte = this.needle[last]!;
    while (i < stop) {
      const c = bytes[i]!;
      if (c === lastByte && this.#endsAt(bytes, i)) return i - last;
      i += skip[c]!;
    }
    return -1;
  }

  /**
   * Whether the needle ends at `bytes[i]` (whose byte is known to be its last). It compares
   * forward from the needle's first byte, which occurs nowhere else in it: a candidate that
   * fails after k bytes holds no other first byte in them, so no later candidate can fail in
   * them again, and all the failed candidates of a chunk cost at most about its length. A
   * backward compare cost up to the needle's length per byte on a run of the boundary's last
   * character (a sender picks the boundary: 70 dashes, then a part of dashes), 10 times
   * busboy's time.
   */
  #endsAt(bytes: Uint8Array, i: number): boolean {
    const needle = this.needle, last = needle.length - 1;
    for (let j = 0, k = i - last; j < last; j++, k++) if (bytes[k] !== needle[j]) return false;
    return true;
  }

  /**
   * Where the longest tail of `bytes[from, end)` that is a proper prefix of the needle
   * starts, or `end` when no tail is.
   */
  #prefixTail(bytes: Uint8Array, from: number, end: number): number {
    const needle = this.needle, first = needle[0]!;
    outer: for (let p = Math.max(from, end - needle.length + 1); p < end; p++) {
      if (bytes[p] !== first) continue;
      for (let q = p + 1, j = 1; q < end; q++, j++) if (bytes[q] !== needle[j]) continue outer;
      return p;
    }
    return end;
  }
}
