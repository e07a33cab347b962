// Copyright 2026 the wirestream authors. MIT license.
/**
 * The `Range` request header of RFC 9110 §14: byte ranges, their satisfiability against a
 * representation's length, and the guard against the multi-range denial of service.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { TOKEN, trimOws } from "../http/head.ts";

/**
 * A range of bytes with both ends inclusive, as `Content-Range` writes it (Ktor's
 * `LongRange`): `{ first: 0, last: 499 }` is the first 500 bytes.
 */
export interface ByteRange {
  /** The offset of the first byte. */
  readonly first: number;
  /** The offset of the last byte: at least {@linkcode ByteRange.first}. */
  readonly last: number;
}

/**
 * Why {@linkcode parseRange} ignored a `Range` header, so that the whole representation is
 * served with 200:
 *
 * - `"absent"`: there was none;
 * - `"malformed"`: it breaks the grammar of RFC 9110 §14.1.1 (a range whose last position is
 *   below its first among them), which §14.2 says to ignore;
 * - `"unit"`: it asks for a unit other than `bytes`;
 * - `"tooMany"`: it lists more ranges than `maxRanges`, the denial-of-service guard;
 * - `"empty"`: the representation has no bytes and the header has a suffix-range of non-zero
 *   length, which RFC 9110 §14.1.1 calls satisfiable ("the only satisfiable form of range-spec"
 *   for zero length) although a 206 cannot send zero bytes (`Content-Range` names a first and
 *   a last byte): the empty 200 answers it. (Go's `ServeContent` goes further and ignores any
 *   range on an empty file, `bytes=0-0` included; here those stay unsatisfiable, 416.)
 */
export type RangeIgnoredReason = "absent" | "malformed" | "unit" | "tooMany" | "empty";

/**
 * What a `Range` header asks of a representation: {@linkcode parseRange}'s result.
 *
 * - `"ignore"`: serve the whole representation with 200;
 * - `"unsatisfiable"`: answer 416 with Content-Range: bytes &#42;/size;
 * - `"ranges"`: answer 206 with these ranges, coalesced and clamped to the representation,
 *   in the order the header first named them: one range is a single-part 206 with
 *   `Content-Range`, several are a `multipart/byteranges` body.
 */
export type RangeResult =
  | { readonly type: "ignore"; readonly reason: RangeIgnoredReason }
  | { readonly type: "unsatisfiable" }
  | { readonly type: "ranges"; readonly ranges: readonly ByteRange[] };

/** Options of {@linkcode parseRange}. */
export interface ParseRangeOptions {
  /**
   * The most range-specs a header may list. A header with more is ignored (200 with the whole
   * representation, as Apache's `MaxRanges` and nginx's `max_ranges` do): RFC 9110 §14.2
   * names many small or overlapping ranges as a sign of a denial-of-service attempt, since
   * each part costs a seek and a part header. `Infinity` lifts the limit; overlapping and
   * adjacent ranges are coalesced either way, so the body never exceeds the representation
   * plus one part header per listed range.
   *
   * @default {32}
   */
  maxRanges?: number;
}

/** The default of {@linkcode ParseRangeOptions.maxRanges}. */
export const DEFAULT_MAX_RANGES = 32;

// A range-spec of the bytes unit: int-range (first-last, first-) or suffix-range (-length).
const BYTE_RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Parses a `Range` header against a representation of `size` bytes (RFC 9110 §14.1.1–14.2).
 *
 * - The unit is `bytes` (case-insensitive), followed by `=` with no whitespace before it; the
 *   range set lists int-ranges (`0-499`, `500-`) and suffix-ranges (`-500`, the last 500
 *   bytes), separated by commas with optional whitespace (SP, HTAB) around them, also before
 *   the first (`bytes= 0-5` is taken: a leniency); empty list items are skipped (§5.6.1).
 *   Any other syntax, whitespace inside a range-spec included, makes the header malformed,
 *   and RFC 9110 says to ignore it: the result is `"ignore"` and the caller serves 200.
 * - An int-range is satisfiable when its first position is below `size`, its last position
 *   is clamped to `size - 1`; a suffix-range is satisfiable when its length is not zero, and
 *   a suffix longer than the representation is all of it. When none is satisfiable, the
 *   result is `"unsatisfiable"` (416). When `size` is zero, a suffix-range of non-zero length
 *   is the one satisfiable form (§14.1.1), but no 206 can hold zero bytes: the result is
 *   `"ignore"` with the reason `"empty"`, and the caller serves the empty 200.
 * - Satisfiable ranges that overlap or touch are coalesced into one (§14.2 allows it), kept
 *   in the order the header first named them; more than `maxRanges` range-specs make the
 *   header ignored. Together they bound the body a header can ask for.
 *
 * @param header The `Range` header's value, or null when the request has none.
 * @param size The representation's length in bytes.
 * @param options The limit on listed ranges.
 * @returns What to answer: ignore the header, 416, or 206 with these ranges.
 * @throws {RangeError} When `size` is not a safe integer from 0, or `maxRanges` is not an
 * integer from 1 or `Infinity`.
 *
 * @example Single, suffix and open-ended ranges
 * ```ts
 * import { parseRange } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseRange("bytes=0-499", 10_000), { type: "ranges", ranges: [{ first: 0, last: 499 }] });
 * assert.deepEqual(parseRange("bytes=-500", 10_000), { type: "ranges", ranges: [{ first: 9500, last: 9999 }] });
 * assert.deepEqual(parseRange("bytes=9500-", 10_000), { type: "ranges", ranges: [{ first: 9500, last: 9999 }] });
 * ```
 *
 * @example Coalescing, 416 and ignored headers
 * ```ts
 * import { parseRange } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * // Overlapping and adjacent ranges become one; the others keep the order of the header.
 * assert.deepEqual(parseRange("bytes=500-600, 0-99, 601-999, 50-120", 10_000), {
 *   type: "ranges",
 *   ranges: [{ first: 500, last: 999 }, { first: 0, last: 120 }],
 * });
 * assert.deepEqual(parseRange("bytes=10000-", 10_000), { type: "unsatisfiable" });
 * assert.deepEqual(parseRange("bytes=5-2", 10_000), { type: "ignore", reason: "malformed" });
 * assert.deepEqual(parseRange("bytes=0-0,2-2,4-4", 10_000, { maxRanges: 2 }), { type: "ignore", reason: "tooMany" });
 * assert.deepEqual(parseRange("bytes=-5", 0), { type: "ignore", reason: "empty" }); // no bytes to send
 * ```
 */
export function parseRange(
  header: string | null,
  size: number,
  options: ParseRangeOptions = {},
): RangeResult {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Invalid size: ${size} is not a safe integer from 0`);
  }
  const maxRanges = checkLimit("maxRanges", options.maxRanges ?? DEFAULT_MAX_RANGES, 1);
  if (header === null) return IGNORE_ABSENT;
  header = trimOws(header);
  const equals = header.indexOf("=");
  if (equals < 0) return IGNORE_MALFORMED;
  const unit = header.slice(0, equals); // no whitespace around "=" (range-unit "=" range-set)
  if (!TOKEN.test(unit)) return IGNORE_MALFORMED;
  if (unit.toLowerCase() !== "bytes") return IGNORE_UNIT;
  const satisfiable: Indexed[] = [];
  let specs = 0, emptySuffix = false;
  // One pass over the list with indexOf: no array of items (a header may hold 64 KiB of commas).
  for (let at = equals + 1; at <= header.length;) {
    let comma = header.indexOf(",", at);
    if (comma < 0) comma = header.length;
    const item = trimOws(header.slice(at, comma));
    at = comma + 1;
    if (item === "") continue; // an empty list item (RFC 9110 §5.6.1.2)
    if (++specs > maxRanges) return IGNORE_TOO_MANY;
    const match = BYTE_RANGE_SPEC.exec(item);
    if (match === null) return IGNORE_MALFORMED;
    const firstDigits = match[1]!, lastDigits = match[2]!;
    if (firstDigits === "") {
      if (lastDigits === "") return IGNORE_MALFORMED; // "-" alone
      const suffix = Number(lastDigits); // rounding is harmless: only its order against size counts
      if (suffix > 0 && size > 0) {
        satisfiable.push({ first: Math.max(0, size - suffix), last: size - 1, index: specs });
      } else if (suffix > 0) emptySuffix = true; // satisfiable, but as zero bytes
      continue;
    }
    // last-pos below first-pos makes the whole header invalid (§14.1.1), not just this item;
    // compared as digit strings, which stay exact beyond 2^53.
    if (lastDigits !== "" && compareDigits(lastDigits, firstDigits) < 0) return IGNORE_MALFORMED;
    const first = Number(firstDigits); // below size (≤ 2^53) only when it is exact
    if (first >= size) continue;
    const last = lastDigits === "" ? size - 1 : Math.min(Number(lastDigits), size - 1);
    satisfiable.push({ first, last, index: specs });
  }
  if (specs === 0) return IGNORE_MALFORMED; // "bytes=" or "bytes=,": the set is 1#range-spec
  if (satisfiable.length === 0) return emptySuffix ? IGNORE_EMPTY : UNSATISFIABLE;
  return { type: "ranges", ranges: coalesce(satisfiable) };
}

interface Indexed {
  first: number;
  last: number;
  /** Where the header named it first. */
  index: number;
}

const IGNORE_ABSENT: RangeResult = Object.freeze({ type: "ignore", reason: "absent" });
const IGNORE_MALFORMED: RangeResult = Object.freeze({ type: "ignore", reason: "malformed" });
const IGNORE_UNIT: RangeResult = Object.freeze({ type: "ignore", reason: "unit" });
const IGNORE_TOO_MANY: RangeResult = Object.freeze({ type: "ignore", reason: "tooMany" });
const IGNORE_EMPTY: RangeResult = Object.freeze({ type: "ignore", reason: "empty" });
const UNSATISFIABLE: RangeResult = Object.freeze({ type: "unsatisfiable" });

/** Merges ranges that overlap or touch, then orders them by the header's first mention. */
function coalesce(ranges: Indexed[]): ByteRange[] {
  if (ranges.length === 1) return [{ first: ranges[0]!.first, last: ranges[0]!.last }];
  ranges.sort((a, b) => a.first - b.first);
  let current = ranges[0]!;
  const merged = [current];
  for (let i = 1; i < ranges.length; i++) {
    const next = ranges[i]!;
    if (next.first > current.last + 1) {
      merged.push(current = next);
      continue;
    }
    if (next.last > current.last) current.last = next.last;
    if (next.index < current.index) current.index = next.index;
  }
  merged.sort((a, b) => a.index - b.index);
  return merged.map(({ first, last }) => ({ first, last }));
}

/** Compares two strings of decimal digits by their value. */
function compareDigits(a: string, b: string): number {
  a = a.replace(LEADING_ZEROS, "");
  b = b.replace(LEADING_ZEROS, "");
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const LEADING_ZEROS = /^0+/;

/**
 * The `Content-Range` of one part: `bytes first-last/size`, or `bytes first-last/*` when the
 * size is unknown (RFC 9110 §14.4).
 */
export function contentRange(range: ByteRange, size: number | undefined): string {
  return `bytes ${range.first}-${range.last}/${size ?? "*"}`;
}
