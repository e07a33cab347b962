// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ByteRange,
  DEFAULT_MAX_RANGES,
  parseRange,
  type RangeResult,
} from "@wirestream/wirestream";
import { FC_SEED, fuzzRuns } from "../_util/random.ts";

/** A "ranges" result of `[first, last]` pairs. */
function ranges(...pairs: [number, number][]): RangeResult {
  return { type: "ranges", ranges: pairs.map(([first, last]) => ({ first, last })) };
}

/** The ranges of a "ranges" result; fails on another. */
function rangesOf(result: RangeResult, context = ""): readonly ByteRange[] {
  if (result.type !== "ranges") assert.fail(`${context}: ${JSON.stringify(result)}`);
  return result.ranges;
}

const MALFORMED: RangeResult = { type: "ignore", reason: "malformed" };
const UNSATISFIABLE: RangeResult = { type: "unsatisfiable" };

Deno.test("parseRange", async (t) => {
  await t.step("reads the three forms of range-spec (RFC 9110 §14.1.1)", () => {
    // The examples of §14.1.2 against a representation of 10000 bytes.
    assert.deepEqual(parseRange("bytes=0-499", 10_000), ranges([0, 499])); // the first 500
    assert.deepEqual(parseRange("bytes=500-999", 10_000), ranges([500, 999])); // the second 500
    assert.deepEqual(parseRange("bytes=-500", 10_000), ranges([9500, 9999])); // the last 500
    assert.deepEqual(parseRange("bytes=9500-", 10_000), ranges([9500, 9999])); // from 9500 on
    assert.deepEqual(parseRange("bytes=0-0,-1", 10_000), ranges([0, 0], [9999, 9999]));
    assert.deepEqual(parseRange("bytes=0-0", 1), ranges([0, 0])); // the one byte there is
    assert.deepEqual(parseRange("bytes=000-007", 10), ranges([0, 7])); // leading zeros
  });

  await t.step("clamps a last position or a suffix past the end to the representation", () => {
    assert.deepEqual(parseRange("bytes=5-100", 10), ranges([5, 9]));
    assert.deepEqual(parseRange("bytes=9-9", 10), ranges([9, 9]));
    assert.deepEqual(parseRange("bytes=-10", 10), ranges([0, 9])); // exactly all of it
    assert.deepEqual(parseRange("bytes=-11", 10), ranges([0, 9])); // more than all: all
    assert.deepEqual(parseRange("bytes=0-99999999999999999999999999", 10), ranges([0, 9]));
    assert.deepEqual(parseRange("bytes=-99999999999999999999999999", 10), ranges([0, 9]));
  });

  await t.step("takes the unit in any case, and OWS around the items and the header", () => {
    assert.deepEqual(parseRange("BYTES=1-2", 10), ranges([1, 2]));
    assert.deepEqual(parseRange("Bytes=1-2", 10), ranges([1, 2]));
    assert.deepEqual(parseRange(" \tbytes=1-2\t ", 10), ranges([1, 2]));
    assert.deepEqual(parseRange("bytes=1-2 , 5-6", 10), ranges([1, 2], [5, 6]));
    assert.deepEqual(parseRange("bytes=1-2,\t5-6", 10), ranges([1, 2], [5, 6]));
    assert.deepEqual(parseRange("bytes= 1-2", 10), ranges([1, 2]));
    // Empty list items are skipped (RFC 9110 §5.6.1.2).
    assert.deepEqual(parseRange("bytes=,1-2,, ,5-6,", 10), ranges([1, 2], [5, 6]));
  });

  await t.step("ignores a malformed header, so that the whole is served", () => {
    const cases = [
      "", // no unit
      "bytes", // no "="
      "=0-1", // an empty unit
      "bytes=", // an empty range set
      "bytes=,", // only empty items
      "bytes=-", // neither position
      "bytes=a-b",
      "bytes=1", // no "-"
      "bytes=1-2-3",
      "bytes=+1-2", // a sign
      "bytes=0x1-2", // hex
      "bytes=1.5-2", // a fraction
      "bytes=1e3-", // an exponent
      "bytes=1 -2", // whitespace inside a range-spec
      "bytes=1- 2",
      "bytes =1-2", // whitespace around "="
      "bytes\t=1-2",
      "bytes=\u00a01-2", // NBSP is not OWS
      "bytes=1-2;x", // a parameter
      "bytes=１-２", // full-width digits
      "by tes=1-2", // the unit is a token
      "bytes=5-2", // last below first makes the header invalid (§14.1.1)
      "bytes=1-2,5-2", // one invalid range-spec makes the whole header invalid
      "bytes=010-9", // compared by value, leading zeros or not
      "bytes=5-004", // leading zeros on the last position too
      "bytes=18014398509481985-18014398509481984", // beyond 2^53, compared exactly
    ];
    for (const header of cases) assert.deepEqual(parseRange(header, 100), MALFORMED, header);
  });

  await t.step("ignores a header of another unit", () => {
    for (const header of ["items=0-1", "none=0-1", "x-bytes=0-1"]) {
      assert.deepEqual(parseRange(header, 100), { type: "ignore", reason: "unit" }, header);
    }
  });

  await t.step("says when there is no header", () => {
    assert.deepEqual(parseRange(null, 100), { type: "ignore", reason: "absent" });
  });

  await t.step("is unsatisfiable when no range lies within the representation (416)", () => {
    assert.deepEqual(parseRange("bytes=100-", 100), UNSATISFIABLE); // first at the length
    assert.deepEqual(parseRange("bytes=100-200", 100), UNSATISFIABLE);
    assert.deepEqual(parseRange("bytes=-0", 100), UNSATISFIABLE); // an empty suffix
    assert.deepEqual(parseRange("bytes=100-,200-300,-0", 100), UNSATISFIABLE);
    assert.deepEqual(parseRange("bytes=99999999999999999999-", 100), UNSATISFIABLE);
    // An empty representation has no satisfiable int-range, nor an empty suffix.
    assert.deepEqual(parseRange("bytes=0-", 0), UNSATISFIABLE);
    assert.deepEqual(parseRange("bytes=0-0", 0), UNSATISFIABLE);
    assert.deepEqual(parseRange("bytes=-0", 0), UNSATISFIABLE);
  });

  await t.step("ignores a non-empty suffix on an empty representation: the empty 200", () => {
    // RFC 9110 §14.1.1: "When a selected representation has zero length, the only satisfiable
    // form of range-spec in a GET request is a suffix-range with a non-zero suffix-length."
    // A 206 cannot send zero bytes, so the header is ignored.
    const EMPTY: RangeResult = { type: "ignore", reason: "empty" };
    for (
      const header of ["bytes=-5", "bytes=-1", "bytes=0-,-5", "bytes=-0,-99999999999999999999"]
    ) {
      assert.deepEqual(parseRange(header, 0), EMPTY, header);
    }
    // The header is still read whole: a malformed item or too many ranges say so instead.
    assert.deepEqual(parseRange("bytes=-5,5-2", 0), MALFORMED);
    assert.deepEqual(parseRange("bytes=-5,-6", 0, { maxRanges: 1 }), {
      type: "ignore",
      reason: "tooMany",
    });
  });

  await t.step("keeps the satisfiable ranges of a list and drops the others", () => {
    assert.deepEqual(parseRange("bytes=200-300,0-1,-0", 100), ranges([0, 1]));
    assert.deepEqual(parseRange("bytes=50-,100-", 100), ranges([50, 99]));
  });

  await t.step("coalesces overlapping and adjacent ranges, in the order first named", () => {
    assert.deepEqual(parseRange("bytes=0-5,3-9", 100), ranges([0, 9])); // overlapping
    assert.deepEqual(parseRange("bytes=0-4,5-9", 100), ranges([0, 9])); // adjacent
    assert.deepEqual(parseRange("bytes=0-4,6-9", 100), ranges([0, 4], [6, 9])); // a gap of one
    assert.deepEqual(parseRange("bytes=10-20,12-15", 100), ranges([10, 20])); // contained
    assert.deepEqual(parseRange("bytes=1-1,1-1,1-1", 100), ranges([1, 1])); // duplicates
    assert.deepEqual(parseRange("bytes=90-,-20", 100), ranges([80, 99])); // a suffix
    // The merged range stands where its first member was named.
    assert.deepEqual(
      parseRange("bytes=50-59,0-9,60-69,5-14", 100),
      ranges([50, 69], [0, 14]),
    );
    assert.deepEqual(
      parseRange("bytes=70-79,20-29,0-9,25-72", 100),
      ranges([20, 79], [0, 9]),
    );
    // Here the member named first (20-29) is not the merged range's lowest (10-25): the merged
    // range still comes first, before 0-4 named second.
    assert.deepEqual(
      parseRange("bytes=20-29,0-4,50-59,10-25", 100),
      ranges([10, 29], [0, 4], [50, 59]),
    );
    // Overlapping ranges that would ask for the file many times over ask for it once.
    const overlapping = "bytes=" + Array(DEFAULT_MAX_RANGES).fill("0-").join(",");
    assert.deepEqual(parseRange(overlapping, 1000), ranges([0, 999]));
  });

  await t.step("ignores a header that lists more than maxRanges ranges", () => {
    const list = (n: number) => "bytes=" + Array.from({ length: n }, (_, i) => `${i * 3}-${i * 3}`);
    assert.equal(DEFAULT_MAX_RANGES, 32);
    assert.equal(parseRange(list(32), 1000).type, "ranges");
    assert.equal(rangesOf(parseRange(list(32), 1000)).length, 32);
    assert.deepEqual(parseRange(list(33), 1000), { type: "ignore", reason: "tooMany" });
    assert.equal(parseRange(list(4), 1000, { maxRanges: 4 }).type, "ranges");
    assert.deepEqual(parseRange(list(5), 1000, { maxRanges: 5 }).type, "ranges");
    assert.deepEqual(parseRange(list(5), 1000, { maxRanges: 4 }), {
      type: "ignore",
      reason: "tooMany",
    });
    assert.equal(parseRange(list(1000), 10_000, { maxRanges: Infinity }).type, "ranges");
    // Ranges count whether satisfiable or not; empty items do not.
    assert.deepEqual(parseRange("bytes=0-0,500-,600-", 100, { maxRanges: 2 }), {
      type: "ignore",
      reason: "tooMany",
    });
    assert.deepEqual(parseRange("bytes=0-0,,,,2-2", 100, { maxRanges: 2 }), ranges([0, 0], [2, 2]));
    // The limit stops the parse: a huge header is not read past it.
    const huge = "bytes=" + "0-0,".repeat(100_000) + "garbage";
    assert.deepEqual(parseRange(huge, 100), { type: "ignore", reason: "tooMany" });
  });

  await t.step("refuses a size or maxRanges that is not a count", () => {
    for (const size of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      assert.throws(() => parseRange("bytes=0-", size), RangeError, String(size));
    }
    for (const maxRanges of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => parseRange(null, 10, { maxRanges }),
        {
          name: "RangeError",
          message: `Invalid maxRanges: ${maxRanges} is not an integer from 1, or Infinity`,
        },
      );
    }
  });

  await t.step("agrees with a byte-by-byte model on random headers", () => {
    const spec = fc.oneof(
      fc.tuple(fc.nat(120), fc.option(fc.nat(120), { nil: undefined })).map(([a, b]) =>
        b === undefined ? `${a}-` : `${Math.min(a, b)}-${Math.max(a, b)}`
      ),
      fc.nat(120).map((n) => `-${n}`),
    );
    const ows = fc.constantFrom("", " ", "\t", " \t");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(ows, spec, ows), { minLength: 1, maxLength: 12 }),
        fc.nat(100),
        (items, size) => {
          const header = "bytes=" + items.map(([a, s, b]) => a + s + b).join(",");
          const result = parseRange(header, size);
          // The model: which bytes each satisfiable spec asks for.
          const wanted = new Set<number>();
          for (const [, s] of items) {
            const [a, b] = s.split("-");
            const [first, last] = a === ""
              ? [size - Number(b), size - 1]
              : [Number(a), b === "" ? size - 1 : Number(b)];
            if (a === "" && Number(b) === 0) continue;
            for (let i = Math.max(0, first); i <= Math.min(last, size - 1); i++) wanted.add(i);
          }
          // On an empty representation a non-empty suffix is satisfiable as no bytes: ignored.
          if (size === 0 && items.some(([, s]) => /^-0*[1-9]/.test(s))) {
            return assert.deepEqual(result, { type: "ignore", reason: "empty" }, header);
          }
          if (wanted.size === 0) return assert.deepEqual(result, UNSATISFIABLE, header);
          const got = rangesOf(result, header);
          const covered = new Set<number>();
          for (const { first, last } of got) {
            for (let i = first; i <= last; i++) {
              assert(!covered.has(i), `${header}: byte ${i} twice`);
              covered.add(i);
            }
          }
          assert.deepEqual(
            [...covered].sort((a, b) => a - b),
            [...wanted].sort((a, b) => a - b),
            header,
          );
          // Coalesced: no two ranges touch.
          const sorted = [...got].sort((a, b) => a.first - b.first);
          for (let i = 1; i < sorted.length; i++) {
            assert(sorted[i]!.first > sorted[i - 1]!.last + 1, `${header}: ranges touch`);
          }
        },
      ),
      { seed: FC_SEED, numRuns: fuzzRuns(500) },
    );
  });

  await t.step("a 64 000-space run inside the header is ignored in linear time", () => {
    const began = performance.now();
    const result = parseRange(`bytes=0-1${" ".repeat(64_000)}x`, 100);
    const took = performance.now() - began;
    assert.equal(result.type, "ignore");
    assert.ok(took < 1000, `took ${took.toFixed(0)} ms (a quadratic trim takes seconds)`);
  });
});
