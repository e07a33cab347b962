// Copyright 2026 the wirestream authors. MIT license.
// The WebAssembly SIMD kernel of mask.ts, built from _mask_simd.wat by
// `npx -y wabt@1.0.39 wat2wasm lib/websocket/_mask_simd.wat --output=-| base64 -w0`.
// tests/websocket/mask_test.ts rebuilds it and checks these bytes are what the .wat makes.

/** The compiled module of _mask_simd.wat, base64. */
export const MASK_SIMD_WASM =
  "AGFzbQEAAAABBwFgA39/fwADAgEABQMBAAIHEAIGbWVtb3J5AgADeG9yAAAK6gEB5wECAXsBfyAC/REhAyAAIAFqIQQCQANAIABBwABqIARLDQEgACAA/QAEACAD/VH9CwQAIAAgAP0ABBAgA/1R/QsEECAAIAD9AAQgIAP9Uf0LBCAgACAA/QAEMCAD/VH9CwQwIABBwABqIQAMAAsLAkADQCAAQRBqIARLDQEgACAA/QAEACAD/VH9CwQAIABBEGohAAwACwsCQANAIABBBGogBEsNASAAIAAoAgAgAnM2AgAgAEEEaiEADAALCwJAA0AgACAETw0BIAAgAC0AACACczoAACACQQh2IQIgAEEBaiEADAALCws=";

/** The kernel: XOR `len` bytes at `ptr` of `memory` with a little-endian key word. */
export interface MaskKernel {
  /** The kernel's linear memory: two 64 KiB pages, the first of them the scratch block. */
  memory: WebAssembly.Memory;
  /** XORs in place; `ptr` is 16-byte aligned and its key phase is 0. */
  xor(ptr: number, len: number, key: number): void;
}

/** Instantiates the kernel, or returns null where WebAssembly SIMD is unavailable. */
export function instantiateMaskKernel(): MaskKernel | null {
  try {
    const bytes = Uint8Array.from(atob(MASK_SIMD_WASM), (c) => c.charCodeAt(0));
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    return exports as unknown as MaskKernel;
  } catch {
    return null;
  }
}
