// Copyright 2026 the wirestream authors. MIT license.
// Seeded randomness and chunkings for tests: the same seed gives the same bytes and splits.

/** A seeded pseudo-random generator (mulberry32): returns floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max] from `random`. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** `n` bytes from `random`. */
export function randomBytes(random: () => number, n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/**
 * Splits `bytes` into copies of random sizes (empty chunks included now and then), so the
 * consumer may modify its chunks without touching `bytes`.
 */
export function split(bytes: Uint8Array, random: () => number, maxChunk = 64): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = random() < 0.05 ? 0 : between(random, 1, maxChunk);
    chunks.push(bytes.slice(at, at + size));
    at += size;
  }
  return chunks;
}

/** Splits `bytes` in two copies at `at`. */
export function splitAt(bytes: Uint8Array, at: number): Uint8Array[] {
  return [bytes.slice(0, at), bytes.slice(at)];
}

/** Copies of each byte of `bytes`, one per chunk. */
export function bytewise(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b) => Uint8Array.of(b));
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Bytes from a hex string; spaces and line breaks are ignored. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/**
 * The number of fuzz runs: `WIRESTREAM_FUZZ_RUNS`, else `fallback` times
 * `WIRESTREAM_FUZZ_SCALE` (1 unless set: each step keeps its own proportion).
 */
export function fuzzRuns(fallback: number): number {
  const value = Deno.env.get("WIRESTREAM_FUZZ_RUNS");
  if (value !== undefined) return Number(value);
  return Math.max(1, Math.round(fallback * Number(Deno.env.get("WIRESTREAM_FUZZ_SCALE") ?? 1)));
}

/**
 * The first seed of the fuzz tests' seed loops, less one: 0 by default, and derived from
 * `WIRESTREAM_FUZZ_SEED` when that is set, so that another seed also draws other inputs there
 * (not only in the fast-check properties). A failure names its seed: set the same variable to
 * replay it.
 */
export const SEED_BASE: number = Deno.env.get("WIRESTREAM_FUZZ_SEED") === undefined
  ? 0
  : (Number(Deno.env.get("WIRESTREAM_FUZZ_SEED")) * 1_000_003) >>> 0;

/** The fast-check properties' seed: `WIRESTREAM_FUZZ_SEED`, else 0x5eed. */
export const FC_SEED: number = Number(Deno.env.get("WIRESTREAM_FUZZ_SEED") ?? 0x5eed);

/** Whether two byte arrays are equal; a loop, as `deepEqual` on megabytes takes seconds. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** ASCII text of exactly `n` bytes, varied so a shifted or repeated slice shows. */
export function asciiOf(n: number): string {
  const unit = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
  return unit.repeat(Math.ceil(n / unit.length) + 1).slice(0, n);
}
