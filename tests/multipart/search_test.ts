// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { BoundarySearch } from "../../lib/multipart/search.ts";
import { between, bytewise, concat, randomBytes, seeded, split, splitAt } from "../_util/random.ts";

const NEEDLE = new TextEncoder().encode("\r\n--AaB03x");

/**
 * What a search over `chunks` found: the data between matches. The bytes it still holds back
 * at the end (a tail of the input) are added as data.
 */
function scan(search: BoundarySearch, chunks: readonly Uint8Array[]): number[][] {
  const data: number[][] = [[]];
  for (const chunk of chunks) {
    let from = 0;
    while (true) {
      const at = search.push(chunk, from, (bytes) => void data.at(-1)!.push(...bytes));
      if (at === -1) break;
      assert(at > from && at <= chunk.length, `match end ${at} after ${from}`);
      data.push([]);
      from = at;
    }
  }
  const all = concat(chunks);
  data.at(-1)!.push(...all.subarray(all.length - search.carried));
  return data;
}

/** The reference: split `haystack` at every occurrence of `needle`, naively. */
function naive(haystack: Uint8Array, needle: Uint8Array): number[][] {
  const data: number[][] = [[]];
  let i = 0;
  outer: while (i < haystack.length) {
    if (i + needle.length <= haystack.length) {
      let j = 0;
      while (j < needle.length && haystack[i + j] === needle[j]) j++;
      if (j === needle.length) {
        data.push([]);
        i += needle.length;
        continue outer;
      }
    }
    data.at(-1)!.push(haystack[i++]!);
  }
  return data;
}

/** Random bytes from an alphabet that makes partial matches common. */
function tricky(random: () => number, n: number): Uint8Array {
  const alphabet = [...NEEDLE, 0x41, 0x0d, 0x0a, 0x2d, 0x00];
  const out = new Uint8Array(n);
  for (let i = 0; i < n;) {
    if (random() < 0.05) {
      // a whole needle, or a cut-off one
      const cut = random() < 0.5 ? NEEDLE.length : between(random, 1, NEEDLE.length - 1);
      for (let j = 0; j < cut && i < n; j++) out[i++] = NEEDLE[j]!;
    } else out[i++] = alphabet[between(random, 0, alphabet.length - 1)]!;
  }
  return out;
}

/**
 * `n` bytes of near misses of `needle`: its last byte alone, cut-off needles, needles with one
 * byte changed, random bytes, and with probability `whole` at each step a whole needle.
 */
function nearMisses(
  random: () => number,
  needle: Uint8Array,
  n: number,
  whole = 0.005,
): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n;) {
    const r = random();
    if (r < 0.3) out[i++] = needle.at(-1)!;
    else if (r < 0.5) {
      const copy = needle.slice(0, between(random, 1, needle.length));
      if (random() < 0.5) copy[between(random, 0, copy.length - 1)]! ^= 1;
      for (let j = 0; j < copy.length && i < n; j++) out[i++] = copy[j]!;
    } else if (r < 0.5 + whole) {
      for (let j = 0; j < needle.length && i < n; j++) out[i++] = needle[j]!;
    } else out[i++] = between(random, 0, 255);
  }
  return out;
}

Deno.test("BoundarySearch", async (t) => {
  await t.step("refuses needles whose first byte recurs, or of a bad length", () => {
    assert.throws(() => new BoundarySearch(Uint8Array.of(1)), RangeError);
    assert.throws(() => new BoundarySearch(new Uint8Array(256)), RangeError);
    assert.throws(() => new BoundarySearch(Uint8Array.of(13, 10, 13)), RangeError);
    assert.equal(new BoundarySearch(Uint8Array.of(13, 10)).needle.length, 2);
  });

  await t.step("finds a needle inside one chunk with indexOf, and no false one", () => {
    const search = new BoundarySearch(NEEDLE);
    const hay = concat([new TextEncoder().encode("ab\r\n--AaB03"), NEEDLE, Uint8Array.of(1)]);
    assert.equal(search.indexOf(hay, 0), 11);
    assert.equal(search.indexOf(hay, 12), -1);
    assert.equal(search.indexOf(hay, 0, 11 + NEEDLE.length - 1), -1);
  });

  await t.step("hands data out as views of the chunk when it holds nothing back", () => {
    const search = new BoundarySearch(NEEDLE);
    const chunk = concat([Uint8Array.of(1, 2, 3), NEEDLE, Uint8Array.of(4, 5)]);
    const views: Uint8Array[] = [];
    assert.equal(search.push(chunk, 0, (b) => void views.push(b)), 3 + NEEDLE.length);
    assert.equal(views.length, 1);
    assert.equal(views[0]!.buffer, chunk.buffer);
    assert.deepEqual([...views[0]!], [1, 2, 3]);
  });

  await t.step("holds back a tail that may begin the needle, and only that", () => {
    const search = new BoundarySearch(NEEDLE);
    const got: number[] = [];
    assert.equal(
      search.push(concat([Uint8Array.of(7), NEEDLE.subarray(0, 5)]), 0, (b) => void got.push(...b)),
      -1,
    );
    assert.deepEqual(got, [7]);
    assert.equal(search.carried, 5);
    // The next chunk does not go on with the needle: the held-back bytes were data.
    assert.equal(search.push(Uint8Array.of(9), 0, (b) => void got.push(...b)), -1);
    assert.deepEqual(got, [7, ...NEEDLE.subarray(0, 5), 9]);
    assert.equal(search.carried, 0);
  });

  await t.step("completes a needle split across many chunks", () => {
    const search = new BoundarySearch(NEEDLE);
    for (let i = 0; i < NEEDLE.length - 1; i++) {
      assert.equal(search.push(NEEDLE.subarray(i, i + 1), 0, () => assert.fail("data")), -1);
    }
    assert.equal(search.push(concat([NEEDLE.subarray(-1), Uint8Array.of(1)]), 0, () => {}), 1);
  });

  await t.step("prime: an assumed prefix that fails is not data", () => {
    const search = new BoundarySearch(NEEDLE);
    search.prime(2);
    const got: number[] = [];
    assert.equal(search.push(Uint8Array.of(0x78), 0, (b) => void got.push(...b)), -1);
    assert.deepEqual(got, [0x78]);
    // Bytes read after the assumed ones are data when the match fails, across chunks too.
    const split = new BoundarySearch(NEEDLE);
    split.prime(2);
    const data: number[] = [];
    assert.equal(split.push(Uint8Array.of(0x2d), 0, (b) => void data.push(...b)), -1);
    assert.equal(split.push(Uint8Array.of(0x2d), 0, (b) => void data.push(...b)), -1);
    assert.equal(split.push(Uint8Array.of(0x78), 0, (b) => void data.push(...b)), -1);
    assert.deepEqual(data, [0x2d, 0x2d, 0x78]);
    const primed = new BoundarySearch(NEEDLE);
    primed.prime(2);
    assert.equal(primed.push(NEEDLE.subarray(2), 0, () => assert.fail("data")), NEEDLE.length - 2);
  });

  await t.step("agrees with a naive search split at every offset and byte by byte", () => {
    const random = seeded(7);
    for (let n = 0; n < 40; n++) {
      const hay = tricky(random, between(random, 0, 60));
      const want = naive(hay, NEEDLE);
      for (let at = 0; at <= hay.length; at++) {
        assert.deepEqual(
          scan(new BoundarySearch(NEEDLE), splitAt(hay, at)),
          want,
          `case ${n} at ${at}`,
        );
      }
      assert.deepEqual(
        scan(new BoundarySearch(NEEDLE), bytewise(hay)),
        want,
        `case ${n} bytewise`,
      );
    }
  });

  await t.step(
    "finds the first needle in large chunks, in any quarter or across one's edge",
    () => {
      const search = new BoundarySearch(NEEDLE);
      for (let seed = 1; seed <= 1000; seed++) {
        const random = seeded(seed);
        const hay = randomBytes(random, between(random, 600, 5000));
        const quarter = (hay.length - NEEDLE.length + 1) >> 2;
        for (let n = between(random, 0, 4); n > 0; n--) {
          // Anywhere, or straddling the edge between two quarters.
          const edge = between(random, 1, 3) * quarter + between(random, -NEEDLE.length, 0);
          const at = random() < 0.5 ? between(random, 0, hay.length - NEEDLE.length) : edge;
          hay.set(NEEDLE, Math.max(0, Math.min(at, hay.length - NEEDLE.length)));
        }
        const want = naive(hay, NEEDLE);
        const first = want.length === 1 ? -1 : want[0]!.length;
        const from = between(random, 0, 50);
        const fromFirst = naive(hay.subarray(from), NEEDLE);
        assert.equal(search.indexOf(hay, 0), first, `seed ${seed}`);
        assert.equal(
          search.indexOf(hay, from),
          fromFirst.length === 1 ? -1 : from + fromFirst[0]!.length,
          `seed ${seed} from ${from}`,
        );
        assert.deepEqual(scan(new BoundarySearch(NEEDLE), [hay]), want, `seed ${seed} push`);
      }
    },
  );

  await t.step(
    "finds the first needle in large chunks of near misses, for long and short needles",
    () => {
      // Near misses put the needle's last byte under the cursors often, in any quarter and at
      // any of a turn's steps; a needle of five bytes shifts by at most five per step.
      for (const needle of [NEEDLE, new TextEncoder().encode("\r\n--b")]) {
        const search = new BoundarySearch(needle);
        for (let seed = 1; seed <= 300; seed++) {
          const random = seeded(seed);
          const hay = nearMisses(random, needle, between(random, 600, 6000));
          const from = between(random, 0, 50), end = hay.length - between(random, 0, 50);
          const want = naive(hay.subarray(from, end), needle);
          assert.equal(
            search.indexOf(hay, from, end),
            want.length === 1 ? -1 : from + want[0]!.length,
            `${needle.length}-byte needle, seed ${seed}`,
          );
        }
      }
    },
  );

  await t.step("finds a needle put at every offset of a large chunk of near misses", () => {
    for (const needle of [NEEDLE, new TextEncoder().encode("\r\n--b")]) {
      const search = new BoundarySearch(needle);
      for (let seed = 1; seed <= 20; seed++) {
        const random = seeded(seed);
        const hay = nearMisses(random, needle, 64 * needle.length + between(random, 0, 300), 0);
        // Near misses next to each other can make a needle: spoil those (the needle's last
        // byte with its low bit flipped occurs nowhere in these needles).
        for (let at = 0; (at = search.indexOf(hay, at)) !== -1;) hay[at + needle.length - 1]! ^= 1;
        assert.equal(naive(hay, needle).length, 1, "the background holds no needle");
        for (let at = 0; at + needle.length <= hay.length; at++) {
          const copy = hay.slice();
          copy.set(needle, at);
          const first = naive(copy, needle)[0]!.length; // a near miss may complete earlier
          assert.equal(search.indexOf(copy, 0), first, `seed ${seed} at ${at}`);
        }
      }
    }
  });

  await t.step("agrees with a naive search on random chunkings (500 seeds)", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = seeded(seed);
      const hay = random() < 0.5 ? tricky(random, 2000) : randomBytes(random, 2000);
      const want = naive(hay, NEEDLE);
      assert.deepEqual(
        scan(new BoundarySearch(NEEDLE), split(hay, random, 40)),
        want,
        `seed ${seed}`,
      );
    }
  });

  await t.step("reads each byte a few times at most, whatever boundary a sender picks", () => {
    // A sender chooses the boundary and the content: a run of the needle's last byte makes every
    // position a candidate, and runs of its first bytes make candidates that match far. The
    // reads of the haystack are counted through a proxy.
    const browser = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    const nearMiss = `\r\n--${browser.slice(0, -1)}X`;
    const cases: [string, string, (i: number) => string][] = [
      ["70 dashes, dashes", "-".repeat(70), () => "-"],
      ["70 a's, a's", "a".repeat(70), () => "a"],
      ["70 dashes, runs of CR then dashes", "-".repeat(70), (i) => (i % 146 < 73 ? "\r" : "-")],
      ["70 dashes, CRLFs then dashes", "-".repeat(70), (i) => i % 145 < 74 ? "\r\n"[i % 2]! : "-"],
      [
        "a browser's, near misses",
        browser,
        (i) => nearMiss[i % nearMiss.length]!,
      ],
    ];
    const length = 65_536;
    for (const [name, boundary, fill] of cases) {
      const needle = new TextEncoder().encode(`\r\n--${boundary}`);
      const hay = new Uint8Array(length);
      for (let i = 0; i < length; i++) hay[i] = fill(i).charCodeAt(0);
      let reads = 0;
      const counted = new Proxy(hay, {
        get(target, key) {
          if (typeof key === "string" && /^\d+$/.test(key)) reads++;
          return Reflect.get(target, key, target);
        },
      });
      assert.equal(new BoundarySearch(needle).indexOf(counted, 0, length), -1, name);
      assert.ok(reads <= 8 * length, `${name}: ${reads} reads of ${length} bytes`);
    }
  });
});
