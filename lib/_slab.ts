// Copyright 2026 the wirestream authors. MIT license.
// Small output buffers carved from a slab. In Deno 2.9 `new Uint8Array(22)` costs about
// 0.5–1 µs (an ArrayBuffer with its own zeroed backing store), a view into an existing
// ArrayBuffer about 50 ns: per frame or per response that is the difference between
// matching ws's Sender and running at a tenth of it (bench/websocket_encoder_bench.ts).
//
// Each encoder or connection has its own slab, so views of one slab only ever go to one
// transport. Every region is handed out once and never written again. A consumer that
// transfers a view's buffer (a byte stream's enqueue, postMessage with transfer) detaches the
// slab under the other views still queued for the same transport, so the WebSocket session
// and the HTTP pipeline pool only for a direct transport (its write copies) and give a
// writable stream buffers of their own. As a last guard, a slab that sees itself detached on
// its next allocation turns `pooled` off (the views already handed out are lost by then).

const SLAB_SIZE = 8192;
/**
 * Requests above this size get a buffer of their own: a frame of a 2 KiB message with its
 * header (up to 14 bytes) still shares a slab, three to a slab. At 1024, a 1 KiB message's
 * frame (1028 bytes) got a fresh buffer each: 3.6 ms per 1024 frames against 0.8–1.2 ms
 * (bench/websocket_encoder_bench.ts).
 */
const SLAB_MAX = 2064;

/** A source of small, zeroed, write-once buffers. */
export class Slab {
  /** Carve from a shared buffer; off, every buffer is allocated on its own. */
  pooled = true;
  #buffer: ArrayBuffer | null = null;
  #used = SLAB_SIZE;

  /** A zeroed view of `size` bytes. */
  allocate(size: number): Uint8Array {
    if (size > SLAB_MAX || !this.pooled) return new Uint8Array(size);
    if (this.#buffer?.detached) {
      this.pooled = false; // the consumer transfers what it is given: share nothing any more
      return new Uint8Array(size);
    }
    if (this.#used + size > SLAB_SIZE) {
      this.#buffer = new ArrayBuffer(SLAB_SIZE);
      this.#used = 0;
    }
    const view = new Uint8Array(this.#buffer!, this.#used, size);
    this.#used += (size + 7) & ~7; // 8-byte aligned regions, for the word-wise masking loop
    return view;
  }
}
