// Copyright 2026 the wirestream authors. MIT license.
// Fuzz tests of the Range header and the answers built on it: any header, random or a mutated
// valid one, ends in a result whose ranges lie within the representation, and serveRanges
// answers it with a body of the length it announced.
// WIRESTREAM_FUZZ_RUNS sets the number of runs (small by default, 10⁶ before a release);
// WIRESTREAM_FUZZ_SEED replays fast-check.
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRange, type RangeResult, serveRanges } from "@wirestream/wirestream";
import { FC_SEED, fuzzRuns } from "../_util/random.ts";

/** Asserts a result is well formed for `size`: ranges in bounds, disjoint, at most `max`. */
function checkResult(result: RangeResult, size: number, max: number, header: string): void {
  assert.ok(["ignore", "unsatisfiable", "ranges"].includes(result.type), header);
  if (result.type !== "ranges") return;
  assert.ok(result.ranges.length >= 1 && result.ranges.length <= max, header);
  const sorted = [...result.ranges].sort((a, b) => a.first - b.first);
  for (const [i, { first, last }] of sorted.entries()) {
    assert.ok(Number.isSafeInteger(first) && Number.isSafeInteger(last), header);
    assert.ok(0 <= first && first <= last && last < size, header);
    if (i > 0) assert.ok(first > sorted[i - 1]!.last + 1, `${header}: ranges touch`);
  }
}

// Pieces of valid and nearly valid headers, for mutation.
const PIECE = fc.constantFrom(
  "bytes=",
  "BYTES=",
  "bytes",
  "=",
  "-",
  ",",
  " ",
  "\t",
  "0",
  "1",
  "9",
  "10",
  "99",
  "18014398509481985",
  "00",
  "a",
  "\u00a0",
  "*",
  ";",
  "items=",
);

/** A range-spec of a generated list: first-last, first- or -suffix. */
type Spec = { first: number; last: number | null } | { suffix: number };

const SPEC: fc.Arbitrary<Spec> = fc.oneof(
  fc.tuple(fc.nat(250), fc.option(fc.nat(250), { nil: null })).map(([a, b]): Spec =>
    b === null ? { first: a, last: null } : { first: Math.min(a, b), last: Math.max(a, b) }
  ),
  fc.nat(250).map((suffix): Spec => ({ suffix })),
);

/** The bytes of a representation of `size` that `spec` selects (RFC 9110 §14.1.2), or null. */
function selected(spec: Spec, size: number): [number, number] | null {
  if ("suffix" in spec) {
    return spec.suffix > 0 && size > 0 ? [Math.max(0, size - spec.suffix), size - 1] : null;
  }
  if (spec.first >= size) return null;
  return [spec.first, Math.min(spec.last ?? size - 1, size - 1)];
}

Deno.test("parseRange fuzz", async (t) => {
  await t.step("valid lists select exactly the bytes a model selects, in the order named", () => {
    // The model: a set of byte positions, one spec at a time; the parser's ranges must cover
    // that set exactly (checkResult: disjoint, not touching), and stand in the order of the
    // first spec named within each.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(SPEC, fc.constantFrom("", " ", "\t", " ,")), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.nat(260),
        (items, size) => {
          const header = "bytes=" +
            items.map(([spec, pad]) =>
              pad + ("suffix" in spec ? `-${spec.suffix}` : `${spec.first}-${spec.last ?? ""}`) +
              pad
            ).join(",");
          const result = parseRange(header, size);
          const want = new Uint8Array(size);
          const firstNamed: number[] = new Array(size).fill(Infinity);
          for (const [k, [spec]] of items.entries()) {
            const range = selected(spec, size);
            if (range === null) continue;
            for (let i = range[0]; i <= range[1]; i++) {
              want[i] = 1;
              firstNamed[i] = Math.min(firstNamed[i]!, k);
            }
          }
          // On an empty representation a non-empty suffix is satisfiable as no bytes, which
          // no 206 can send (RFC 9110 §14.1.1): the header is ignored.
          if (size === 0 && items.some(([spec]) => "suffix" in spec && spec.suffix > 0)) {
            assert.deepEqual(result, { type: "ignore", reason: "empty" }, header);
            return;
          }
          if (!want.includes(1)) {
            assert.deepEqual(result, { type: "unsatisfiable" }, header);
            return;
          }
          assert.equal(result.type, "ranges", header);
          if (result.type !== "ranges") return;
          checkResult(result, size, 32, header);
          const got = new Uint8Array(size);
          for (const { first, last } of result.ranges) got.fill(1, first, last + 1);
          assert.deepEqual(got, want, header);
          const order = result.ranges.map(({ first, last }) =>
            Math.min(...firstNamed.slice(first, last + 1))
          );
          assert.deepEqual(order, [...order].sort((a, b) => a - b), `${header}: order`);
        },
      ),
      { seed: FC_SEED, numRuns: fuzzRuns(2000) },
    );
  });

  await t.step("any string ends in a well-formed result", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 80 }),
        fc.nat(1000),
        fc.integer({ min: 1, max: 8 }),
        (header, size, maxRanges) => {
          checkResult(parseRange(header, size, { maxRanges }), size, maxRanges, header);
        },
      ),
      { seed: FC_SEED, numRuns: fuzzRuns(2000) },
    );
  });

  await t.step("mutated valid headers end in a well-formed result", () => {
    fc.assert(
      fc.property(fc.array(PIECE, { maxLength: 24 }), fc.nat(1000), (pieces, size) => {
        const header = "bytes=" + pieces.join("");
        checkResult(parseRange(header, size), size, 32, header);
      }),
      { seed: FC_SEED, numRuns: fuzzRuns(2000) },
    );
  });

  await t.step("serveRanges answers any header with the length it announces", async () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    await fc.assert(
      fc.asyncProperty(fc.array(PIECE, { maxLength: 16 }), fc.nat(300), async (pieces, size) => {
        const header = "bytes=" + pieces.join("");
        const response = serveRanges(new Request("http://x/", { headers: { range: header } }), {
          size,
          open: (r) => data.subarray(r.first, r.last + 1),
        });
        assert.ok([200, 206, 416].includes(response.status), header);
        const body = new Uint8Array(await response.arrayBuffer());
        assert.equal(Number(response.headers.get("content-length")), body.length, header);
      }),
      { seed: FC_SEED, numRuns: fuzzRuns(500) },
    );
  });
});
