// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { mask } from "@wirestream/wirestream";
// wabt is a test-only tool, so it stays out of deno.json imports.
import wabtInit from "npm:wabt@1.0.39";
import { keyWord, maskInto, maskWith } from "../../lib/websocket/mask.ts";
import { instantiateMaskKernel, MASK_SIMD_WASM } from "../../lib/websocket/_mask_simd.ts";
import { between, hex, randomBytes, seeded } from "../_util/random.ts";

const KEY = hex("37fa213d"); // the masking key of RFC 6455 §5.7
const KEY_WORD = 0x3d21fa37; // KEY as a little-endian word

/**
 * Sizes around each tier of mask.ts: the byte loop below 32, words below 2048, the SIMD
 * kernel from 2048 in blocks of 65536 (and its own 64-, 16-, 4- and 1-byte rounds).
 */
const SIZES = [
  0,
  1,
  2,
  3,
  4,
  5,
  7,
  8,
  15,
  16,
  17,
  31,
  32,
  33,
  63,
  64,
  65,
  67,
  2047,
  2048,
  2049,
  2051,
  4095,
  4096,
  4097,
  65_535,
  65_536,
  65_537,
  131_072,
  131_075,
  200_003,
];

/** The plain RFC 6455 §5.3 loop: `j = i MOD 4`, with `phase` bytes already masked. */
function reference(data: Uint8Array, key: Uint8Array, phase: number): Uint8Array {
  const out = data.slice();
  for (let i = 0; i < out.length; i++) out[i]! ^= key[(phase + i) & 3]!;
  return out;
}

/**
 * `n` random bytes as a view at `byteOffset` into a buffer with 16 guard bytes on each
 * side, so a kernel that writes outside the view is caught.
 */
function guarded(random: () => number, n: number, byteOffset: number) {
  const buffer = randomBytes(random, byteOffset + n + 16);
  const before = buffer.slice();
  const data = buffer.subarray(byteOffset, byteOffset + n);
  return {
    data,
    assertGuards(context: string) {
      assert.deepEqual(buffer.subarray(0, byteOffset), before.subarray(0, byteOffset), context);
      assert.deepEqual(buffer.subarray(byteOffset + n), before.subarray(byteOffset + n), context);
    },
  };
}

Deno.test("mask", async (t) => {
  await t.step("masks the RFC 6455 §5.7 example", () => {
    const data = new TextEncoder().encode("Hello");
    mask(data, KEY);
    assert.deepEqual(data, hex("7f9f4d5158"));
  });

  await t.step("unmasks what it masked", () => {
    const random = seeded(1);
    for (const n of SIZES) {
      const original = randomBytes(random, n);
      const data = original.slice();
      mask(data, KEY);
      if (n >= 8) assert.notDeepEqual(data, original, `length ${n}`);
      mask(data, KEY);
      assert.deepEqual(data, original, `length ${n}`);
    }
  });

  await t.step("agrees with the plain loop for every size, byte offset and phase", () => {
    const random = seeded(2);
    for (const n of SIZES) {
      for (const byteOffset of [0, 1, 3]) {
        for (const phase of [0, 1, 2, 3, 6]) {
          const { data, assertGuards } = guarded(random, n, byteOffset);
          const want = reference(data, KEY, phase);
          mask(data, KEY, phase);
          const context = `length ${n}, byteOffset ${byteOffset}, phase ${phase}`;
          assert.deepEqual(data, want, context);
          assertGuards(context);
        }
      }
    }
  });

  await t.step("uses only phase modulo 4", () => {
    const data = randomBytes(seeded(3), 100);
    for (const phase of [0, 1, 2, 3]) {
      const a = data.slice(), b = data.slice();
      mask(a, KEY, phase);
      mask(b, KEY, phase + 4 * 1_000_001);
      assert.deepEqual(a, b, `phase ${phase}`);
    }
  });

  await t.step("unmasks a payload in pieces as it would whole", () => {
    const whole = randomBytes(seeded(4), 150_000);
    const want = reference(whole, KEY, 0);
    for (let seed = 1; seed <= 40; seed++) {
      const random = seeded(seed);
      const data = whole.slice();
      for (let at = 0; at < data.length;) {
        // Piece sizes from each tier: bytes, words, SIMD, several SIMD blocks.
        const max = [3, 40, 3000, 140_000][between(random, 0, 3)]!;
        const size = Math.min(between(random, 0, max), data.length - at);
        mask(data.subarray(at, at + size), KEY, at);
        at += size;
      }
      assert.deepEqual(data, want, `seed ${seed}`);
    }
  });

  await t.step("rejects a key that is not 4 bytes with RangeError", () => {
    for (const n of [0, 3, 5, 8]) {
      const data = Uint8Array.of(1, 2, 3);
      assert.throws(() => mask(data, new Uint8Array(n)), RangeError, `key of ${n} bytes`);
      assert.deepEqual(data, Uint8Array.of(1, 2, 3));
    }
  });
});

Deno.test("keyWord", async (t) => {
  await t.step("reads a wire-order key as a little-endian word", () => {
    assert.equal(keyWord(KEY), KEY_WORD);
    assert.equal(keyWord(hex("ffffffff")), 0xffff_ffff); // unsigned, never negative
    assert.equal(keyWord(hex("00000080")), 0x8000_0000);
  });
});

Deno.test("maskWith", async (t) => {
  await t.step("equals mask with the key's word", () => {
    const random = seeded(5);
    for (const n of SIZES) {
      const data = randomBytes(random, n);
      const a = data.slice(), b = data.slice();
      mask(a, KEY, 1);
      maskWith(b, KEY_WORD, 1);
      assert.deepEqual(b, a, `length ${n}`);
    }
  });

  await t.step("agrees with the plain loop for random keys, sizes, offsets and phases", () => {
    const random = seeded(6);
    for (let run = 0; run < 300; run++) {
      const key = randomBytes(random, 4);
      const n = between(random, 0, run % 10 === 0 ? 140_000 : 5000);
      const byteOffset = between(random, 0, 7);
      const phase = between(random, 0, 3);
      const { data, assertGuards } = guarded(random, n, byteOffset);
      const want = reference(data, key, phase);
      maskWith(data, keyWord(key), phase);
      const context = `run ${run}: length ${n}, byteOffset ${byteOffset}, phase ${phase}`;
      assert.deepEqual(data, want, context);
      assertGuards(context);
    }
  });

  await t.step("leaves the SIMD kernel's scratch state out of later results", () => {
    // A big payload, then a small one over the kernel: the second must not see the first.
    const big = new Uint8Array(100_000).fill(0xaa);
    maskWith(big, KEY_WORD, 0);
    const small = new Uint8Array(2049);
    maskWith(small, KEY_WORD, 0);
    assert.deepEqual(small, reference(new Uint8Array(2049), KEY, 0));
  });
});

Deno.test("maskInto", async (t) => {
  await t.step("equals copy then mask, leaving the source and the rest of the target", () => {
    const random = seeded(7);
    for (const n of SIZES) {
      const placements: [number, number, number][] = [[0, 0, 0], [1, 3, 1], [3, 8, 2], [2, 1, 7]];
      for (const [sourceOffset, offset, phase] of placements) {
        const context = `length ${n}, source at ${sourceOffset}, offset ${offset}, phase ${phase}`;
        const source = randomBytes(random, sourceOffset + n).subarray(sourceOffset);
        const sourceBefore = source.slice();
        const target = randomBytes(random, offset + n + 9);
        const want = target.slice();
        want.set(reference(source, KEY, phase), offset);
        maskInto(source, target, offset, KEY_WORD, phase);
        assert.deepEqual(target, want, context);
        assert.deepEqual(source, sourceBefore, context);
      }
    }
  });

  await t.step("fills a target of exactly the source's size", () => {
    const random = seeded(8);
    for (const n of SIZES) {
      const source = randomBytes(random, n);
      const target = new Uint8Array(n);
      maskInto(source, target, 0, KEY_WORD, 3);
      assert.deepEqual(target, reference(source, KEY, 3), `length ${n}`);
    }
  });

  await t.step("writes into an unaligned view of a larger buffer", () => {
    const random = seeded(9);
    for (const n of [33, 2049, 65_537]) {
      const { data: target, assertGuards } = guarded(random, n + 10, 5);
      const source = randomBytes(random, n);
      const want = target.slice();
      want.set(reference(source, KEY, 2), 3);
      maskInto(source, target, 3, KEY_WORD, 2);
      assert.deepEqual(target, want, `length ${n}`);
      assertGuards(`length ${n}`);
    }
  });

  await t.step("unmasks a payload in pieces into one buffer as it would whole", () => {
    const whole = randomBytes(seeded(10), 150_000);
    const want = reference(whole, KEY, 0);
    for (let seed = 1; seed <= 20; seed++) {
      const random = seeded(seed);
      const target = new Uint8Array(whole.length);
      for (let at = 0; at < whole.length;) {
        const max = [3, 40, 3000, 140_000][between(random, 0, 3)]!;
        const size = Math.min(between(random, 0, max), whole.length - at);
        maskInto(whole.subarray(at, at + size), target, at, KEY_WORD, at);
        at += size;
      }
      assert.deepEqual(target, want, `seed ${seed}`);
    }
  });
});

Deno.test("MASK_SIMD_WASM", async (t) => {
  await t.step("is what wabt 1.0.39 builds from _mask_simd.wat", async () => {
    const wat = await Deno.readTextFile(
      new URL("../../lib/websocket/_mask_simd.wat", import.meta.url),
    );
    const wabt = await wabtInit();
    const module = wabt.parseWat("_mask_simd.wat", wat);
    try {
      const built = module.toBinary({}).buffer;
      const shipped = Uint8Array.from(atob(MASK_SIMD_WASM), (c) => c.charCodeAt(0));
      assert.deepEqual(built, shipped);
    } finally {
      module.destroy();
    }
  });
});

Deno.test("instantiateMaskKernel", async (t) => {
  await t.step("instantiates where WebAssembly SIMD is available, as in Deno", () => {
    const kernel = instantiateMaskKernel();
    assert(kernel !== null);
    assert.equal(kernel.memory.buffer.byteLength, 2 * 65_536);
  });

  await t.step("XORs every length through its 64-, 16-, 4- and 1-byte rounds", () => {
    const kernel = instantiateMaskKernel()!;
    const memory = new Uint8Array(kernel.memory.buffer);
    const random = seeded(11);
    for (let n = 0; n <= 200; n++) {
      for (const ptr of [0, 16, 4096]) {
        const bytes = randomBytes(random, n + 32);
        memory.set(bytes, ptr);
        kernel.xor(ptr, n, KEY_WORD);
        const want = bytes.slice();
        want.set(reference(bytes.subarray(0, n), KEY, 0));
        assert.deepEqual(memory.subarray(ptr, ptr + n + 32), want, `length ${n} at ${ptr}`);
      }
    }
  });
});
