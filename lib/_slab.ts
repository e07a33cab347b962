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
//
// Larger chunks (a 4 KiB message's frame, a response with a 10 KiB body, pipelined responses
// gathered into one write) cost what their bytes cost to allocate, whatever the slab: a fresh
// buffer is zeroed and its pages faulted in, so carving them from a bigger slab gained nothing
// (a 64 KiB slab for 4 KiB echoes at 512 sessions, bench/ws_session_inprocess.ts). Only reuse
// helps. A slab whose owner writes to a transport whose direct write is done with its bytes
// once it resolved (`writesDone`: the Deno.Conns the engines accept or open) and gives each
// chunk back once written (`lending`, `giveBack`) borrows one block at a time (8 KiB, or 32 KiB
// for a chunk over 8 KiB) from a process-wide pool for a chunk of LEND_MIN bytes or more, the
// small ones a region would otherwise hold included; and its regions come from a pooled block
// too, which goes back once every region carved from it was given back, so that a connection
// between writes (an idle WebSocket session) holds no slab. A user's direct transport
// never lends: it may queue the view it was given (as an in-memory pipe does), and a block
// written into again would then send another connection's bytes. At most one block per slab
// is out, so a stalled peer holds at most one; the pools keep at most IDLE_BLOCKS and
// IDLE_LARGE_BLOCKS between loans (only as many as were once out together), each zeroed where
// it was written; a block never written (the connection failed, or its write is abandoned
// while it may still be under way) is left to the garbage collector.

/** An unpooled slab's size; a lending slab's block is a pooled BLOCK_SIZE one, the same size. */
const SLAB_SIZE = 8192;
/**
 * Requests above this size get a buffer of their own: a frame of a 2 KiB message with its
 * header (up to 14 bytes) still shares a slab, three to a slab. At 1024, a 1 KiB message's
 * frame (1028 bytes) got a fresh buffer each: 3.6 ms per 1024 frames against 0.8–1.2 ms
 * (bench/websocket_encoder_bench.ts).
 */
const SLAB_MAX = 2064;
/**
 * The smallest chunk lent a block when the slab lends: a 1 KiB message's frame. Regions of a
 * slab turn it over fast at this size (a new 8 KiB slab every seven such frames, about 0.6 ns
 * per byte here against 55 ns for a lend and give-back whatever the size); in process, 64
 * sessions echoing (bench/ws_session_inprocess.ts, lending on and off in turn in one process,
 * medians of 12 windows), lending took the CPU per echo from 7.10 to 5.54 µs at 1024 bytes and
 * from 6.90 to 5.12 µs at 1500, but gained nothing from 300 to 900 bytes (4–8 % worse at 300 to
 * 600 in most runs, for reasons not found).
 */
const LEND_MIN = 1024;
/**
 * A lent block's size: a frame of a message of up to 8188 bytes fits (the encoder merges a
 * header and payload of up to 16 KiB when a block is free), as does a response of a few KiB
 * with its head.
 */
const BLOCK_SIZE = 8192;
/**
 * The larger blocks, for chunks over BLOCK_SIZE: a response with a body up to the pipeline's
 * SMALL_BODY (16 KiB, sent with its head), a server's frame of up to 16 KiB (header and
 * payload together), a gathered write whose parts hold no block (small
 * pipelined responses, a streamed body's head and chunks), a client's masked frame. A fresh
 * buffer of 16400 bytes costs 4.5–5.9 µs here, a zeroed view of such a block 0.15–0.23 µs
 * (bench/slab_bench.ts, three runs). Larger chunks still get a buffer of their own.
 */
const LARGE_BLOCK_SIZE = 32_768;
/**
 * Blocks kept between loans, for the whole process: 4 MiB of small ones and 4 MiB of large
 * ones at most. A server's connections lend together: at 512 sessions echoing 4 KiB messages,
 * a pool of 32 blocks was empty at 94 % of the loans (each then a fresh block), and the CPU per
 * echo stayed that of no pool.
 */
const IDLE_BLOCKS = 512;
const IDLE_LARGE_BLOCKS = 128;
const idleBlocks: ArrayBuffer[] = [];
const idleLargeBlocks: ArrayBuffer[] = [];
/** How many blocks were lent (for tests: the engines' own connections lend). */
export const lendingStats = { loans: 0 };

/**
 * Transports whose direct `write` holds no reference to its bytes once it resolved (a
 * `Deno.Conn`'s is done with them): the connections the engines accept or open, and what
 * they hand on from them. Only these lend (see above).
 */
const writesDoneSet = new WeakSet<object>();

/** Marks `transport` as one whose direct write is done with its bytes once it resolved. */
export function markWritesDone(transport: object): void {
  writesDoneSet.add(transport);
}

/** Whether {@linkcode markWritesDone} marked `transport`. */
export function writesDone(transport: object): boolean {
  return writesDoneSet.has(transport);
}

/** A source of small, zeroed, write-once buffers. */
export class Slab {
  /** Carve from a shared buffer; off, every buffer is allocated on its own. */
  pooled = true;
  /**
   * The owner writes to a transport that {@linkcode writesDone}, and gives back with
   * {@linkcode giveBack} every chunk once its write resolved: chunks of LEND_MIN (1024) to
   * 32768 bytes may then be a lent block. Only with `pooled` on.
   */
  lending = false;
  #buffer: ArrayBuffer | null = null;
  #used = 0;
  /**
   * While lending, the regions are carved from a pooled block too: the regions of it handed
   * out and not given back (each the very view allocate returned). Once every one was given
   * back, the block goes back to the pool, so that a connection between writes holds none.
   */
  #regions: Uint8Array[] = [];
  #borrowed = false;
  /** The chunk lent out (a view of a pooled block), until it is given back. */
  #lent: Uint8Array | null = null;

  /**
   * Lets go of the slab's buffer, for an owner that will allocate no more (the regions handed
   * out stay valid; a pooled block they are in is left to the garbage collector); a later
   * allocation starts a new one. A chunk lent stays lent.
   */
  drop(): void {
    this.#buffer = null;
    this.#regions.length = 0;
    this.#borrowed = false;
  }

  /** Whether a chunk of `size` bytes would be lent a pooled block now. */
  canLend(size: number): boolean {
    return size >= LEND_MIN && size <= LARGE_BLOCK_SIZE && this.#lent === null &&
      this.lending && this.pooled;
  }

  /** A zeroed view of `size` bytes. */
  allocate(size: number): Uint8Array {
    if (this.canLend(size)) {
      lendingStats.loans++;
      // Zeroed whole, as a fresh buffer is (see giveBack).
      return this.#lent = new Uint8Array(borrow(size > BLOCK_SIZE), 0, size);
    }
    if (size > SLAB_MAX || !this.pooled) return new Uint8Array(size);
    if (this.#buffer?.detached) {
      this.pooled = false; // the consumer transfers what it is given: share nothing any more
      return new Uint8Array(size);
    }
    if (this.#buffer === null || this.#used + size > SLAB_SIZE) {
      // A pooled block whose regions are still out is not tracked any more: it is left to the
      // garbage collector, as an unpooled slab is.
      this.#regions.length = 0;
      this.#borrowed = this.lending;
      this.#buffer = this.lending ? borrow(false) : new ArrayBuffer(SLAB_SIZE);
      this.#used = 0;
    }
    const view = new Uint8Array(this.#buffer, this.#used, size);
    this.#used += (size + 7) & ~7; // 8-byte aligned regions, for the word-wise masking loop
    if (this.#borrowed) this.#regions.push(view);
    return view;
  }

  /**
   * Declares `chunk` written and never read again. When it is the chunk lent (the very view
   * {@linkcode allocate} returned), its block goes back to its pool (or to the garbage
   * collector, past IDLE_BLOCKS or IDLE_LARGE_BLOCKS), and the next large chunk may borrow
   * one; when it is the last region out of a pooled slab block, that block goes back. Any other
   * chunk is ignored: a view of it, a chunk given back twice, or an earlier chunk of a block
   * lent again since, must not end the current loan.
   */
  giveBack(chunk: Uint8Array): void {
    const lent = this.#lent;
    if (chunk !== lent) return this.#regionBack(chunk);
    this.#lent = null;
    const block = lent.buffer as ArrayBuffer;
    const large = block.byteLength === LARGE_BLOCK_SIZE;
    const idle = large ? idleLargeBlocks : idleBlocks;
    if (idle.length < (large ? IDLE_LARGE_BLOCKS : IDLE_BLOCKS) && !block.detached) {
      // Every owner writes each byte of what it is lent, but the next borrower's buffer is
      // the whole block: nothing of this connection's may stay in it. (64–77 ns for 4100
      // bytes here; a fresh buffer of that size 6.8–7.5 µs on average: bench/slab_bench.ts.)
      lent.fill(0);
      idle.push(block);
    }
  }

  /** A region of a pooled block written: the last one out sends the block back, zeroed. */
  #regionBack(chunk: Uint8Array): void {
    const regions = this.#regions;
    if (regions.length === 0) return;
    const at = regions.indexOf(chunk); // the very view: a copy or a view of it is not the region
    if (at < 0) return;
    regions[at] = regions[regions.length - 1]!;
    regions.pop();
    if (regions.length > 0) return;
    const block = this.#buffer!;
    this.#buffer = null;
    this.#borrowed = false;
    if (idleBlocks.length < IDLE_BLOCKS && !block.detached) {
      new Uint8Array(block, 0, this.#used).fill(0); // all that its regions covered
      idleBlocks.push(block);
    }
  }
}

/** A zeroed block from a pool (`large`: 32 KiB, else 8 KiB), or a new one. */
function borrow(large: boolean): ArrayBuffer {
  const idle = large ? idleLargeBlocks : idleBlocks;
  let block = idle.pop();
  // A consumer that broke the direct write's contract and transferred one: not reused.
  while (block?.detached) block = idle.pop();
  return block ?? new ArrayBuffer(large ? LARGE_BLOCK_SIZE : BLOCK_SIZE);
}
