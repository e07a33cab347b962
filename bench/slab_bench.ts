// Copyright 2026 the wirestream authors. MIT license.
// Why lib/_slab.ts lends pooled blocks for chunks of 2 to 8 KiB: a fresh buffer of a 4 KiB
// message's frame (4100 bytes) against what a lent block costs, its view and the zeroing of
// what the last loan wrote, and against a Slab's own lend and give-back.
//
//   deno bench bench/slab_bench.ts

import { Slab } from "../lib/_slab.ts";

const SIZE = 4100;
const block = new ArrayBuffer(8192);
let sink = 0;

Deno.bench({
  group: "a 4100-byte chunk",
  name: "new Uint8Array(4100)",
  baseline: true,
  fn: () => {
    sink ^= new Uint8Array(SIZE)[7]!;
  },
});

Deno.bench({
  group: "a 4100-byte chunk",
  name: "a view of an existing block, zeroed",
  fn: () => {
    sink ^= new Uint8Array(block, 0, SIZE).fill(0)[7]!;
  },
});

const slab = new Slab();
slab.lending = true;
Deno.bench({
  group: "a 4100-byte chunk",
  name: "Slab: lent, then given back (zeroed there)",
  fn: () => {
    const chunk = slab.allocate(SIZE);
    sink ^= chunk[7]!;
    slab.giveBack(chunk);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink); // keeps the reads
});
