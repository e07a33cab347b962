// Copyright 2026 the wirestream authors. MIT license.
/**
 * Masking and unmasking of WebSocket payloads (RFC 6455 §5.3).
 *
 * Three tiers, picked by length (bench/websocket_mask_bench.ts): a byte loop for short
 * payloads, 32-bit words for mid sizes, and a WebAssembly SIMD kernel for the bulk. V8 does
 * not vectorise a typed-array XOR loop, which runs at a fraction of memcpy's speed; the
 * kernel pays two copies through its scratch memory and still wins well above 1 KiB.
 *
 * @module
 */

import { instantiateMaskKernel } from "./_mask_simd.ts";

// From this size the word loop's Int32Array view pays for itself. Fastest of maskWith's
// iterations, 2048 calls of 32 B / 1365 of 48 B (bench/websocket_mask_bench.ts, two runs):
// threshold 32: 164–174 / 111–112 µs; 44: 92–122 / 69–119 µs; 64: 92 / 120–121 µs.
const WORD_THRESHOLD = 44;
const SIMD_THRESHOLD = 1024;
const BLOCK = 65_536;
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const kernel = LITTLE_ENDIAN ? instantiateMaskKernel() : null;
const scratch = kernel ? new Uint8Array(kernel.memory.buffer, 0, BLOCK) : null;

/**
 * XORs `data` in place with the 4-byte masking key (RFC 6455 §5.3), starting at key index
 * `phase`, so a payload that arrives in pieces can be unmasked piece by piece: pass the
 * number of payload bytes already unmasked. Masking and unmasking are the same operation.
 *
 * @param data The bytes to mask or unmask, changed in place.
 * @param key The 4-byte masking key, in wire order.
 * @param phase The offset of `data[0]` within the payload (only `phase % 4` matters); 0
 * when left out.
 * @throws {RangeError} When `key` is not 4 bytes long.
 *
 * @example Masking and unmasking
 * ```ts
 * import { mask } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
 * const data = new TextEncoder().encode("Hello"); // RFC 6455 §5.7's masked "Hello"
 * mask(data, key);
 * assert.deepEqual([...data], [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
 * mask(data.subarray(0, 2), key); // unmask in two pieces
 * mask(data.subarray(2), key, 2);
 * assert.equal(new TextDecoder().decode(data), "Hello");
 * ```
 */
export function mask(data: Uint8Array, key: Uint8Array, phase = 0): void {
  if (key.length !== 4) {
    throw new RangeError(`Cannot mask: key of ${key.length} bytes is not 4 bytes`);
  }
  maskWith(data, keyWord(key), phase);
}

/** The little-endian 32-bit word of a 4-byte key in wire order. */
export function keyWord(key: Uint8Array): number {
  return (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;
}

/** The key word rotated so that its low byte is the key byte for payload offset `phase`. */
function rotate(key: number, phase: number): number {
  const shift = (phase & 3) << 3;
  return shift === 0 ? key : ((key >>> shift) | (key << (32 - shift))) >>> 0;
}

/**
 * The hot path of {@linkcode mask}: the key as its {@linkcode keyWord}.
 *
 * @param data The bytes to mask or unmask, changed in place.
 * @param key The key word.
 * @param phase The offset of `data[0]` within the payload.
 */
export function maskWith(data: Uint8Array, key: number, phase: number): void {
  const n = data.length;
  if (n >= SIMD_THRESHOLD && kernel !== null) {
    for (let i = 0; i < n; i += BLOCK) {
      const part = i === 0 && n <= BLOCK
        ? data
        : new Uint8Array(data.buffer, data.byteOffset + i, Math.min(BLOCK, n - i));
      scratch!.set(part);
      kernel.xor(0, part.length, rotate(key, phase + i));
      part.set(part.length === BLOCK ? scratch! : new Uint8Array(scratch!.buffer, 0, part.length));
    }
    return;
  }
  let i = 0;
  if (n >= WORD_THRESHOLD && LITTLE_ENDIAN) {
    // Bytes up to the first 4-byte aligned address, then whole words, then the tail.
    const lead = (4 - (data.byteOffset & 3)) & 3;
    for (; i < lead; i++) data[i]! ^= key >>> (((phase + i) & 3) << 3);
    const word = rotate(key, phase + i) | 0;
    const words = (n - i) >>> 2;
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    for (let j = 0; j < words; j++) view[j]! ^= word;
    i += words << 2;
  }
  for (; i < n; i++) data[i]! ^= key >>> (((phase + i) & 3) << 3);
}

/**
 * Copies `source` into `target` at `offset` and unmasks the copy, in one pass where the
 * SIMD kernel runs (the bytes go through its scratch memory either way).
 *
 * @param source The masked bytes; left unchanged.
 * @param target The buffer receiving the unmasked bytes.
 * @param offset Where in `target` the bytes go.
 * @param key The key word.
 * @param phase The offset of `source[0]` within the payload.
 */
export function maskInto(
  source: Uint8Array,
  target: Uint8Array,
  offset: number,
  key: number,
  phase: number,
): void {
  const n = source.length;
  if (n >= SIMD_THRESHOLD && kernel !== null) {
    for (let i = 0; i < n; i += BLOCK) {
      const part = i === 0 && n <= BLOCK
        ? source
        : new Uint8Array(source.buffer, source.byteOffset + i, Math.min(BLOCK, n - i));
      scratch!.set(part);
      kernel.xor(0, part.length, rotate(key, phase + i));
      target.set(
        part.length === BLOCK ? scratch! : new Uint8Array(scratch!.buffer, 0, part.length),
        offset + i,
      );
    }
    return;
  }
  target.set(source, offset);
  maskWith(
    n === target.length ? target : new Uint8Array(target.buffer, target.byteOffset + offset, n),
    key,
    phase,
  );
}
