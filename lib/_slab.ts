// Copyright 2026 the wirestream authors. MIT license.
// Small buffers carved from shared slabs. In Deno 2.9 `new Uint8Array(22)` costs about
// 0.5–1 µs (an ArrayBuffer with its own zeroed backing store), while a view into an existing
// ArrayBuffer costs about 50 ns (bench/websocket_encoder_bench.ts shows the effect per
// frame). Node pools small Buffers the same way.
//
// Every region is handed out once and never written again by us, so a held view stays valid;
// it keeps its whole slab alive until dropped. A consumer that transfers a view's buffer
// (a byte stream's enqueue, postMessage with transfer) would detach the slab under its other
// views, so only bytes bound for a transport come from here, never data handed to users.

const SLAB_SIZE = 131_072;
/** Requests above this size get a buffer of their own. */
export const SLAB_MAX = 8192;

let slab = new ArrayBuffer(SLAB_SIZE);
let used = 0;

/** A zeroed view of `size` bytes, carved from the current slab when small. */
export function slabAllocate(size: number): Uint8Array {
  if (size > SLAB_MAX) return new Uint8Array(size);
  if (used + size > SLAB_SIZE || slab.detached) {
    slab = new ArrayBuffer(SLAB_SIZE);
    used = 0;
  }
  const view = new Uint8Array(slab, used, size);
  used += (size + 7) & ~7; // keep regions 8-byte aligned for the word-wise masking loop
  return view;
}
