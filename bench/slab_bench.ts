// Copyright 2026 the wirestream authors. MIT license.
// Why lib/_slab.ts lends pooled blocks for chunks of 1 to 32 KiB: a fresh buffer of a 4 KiB
// message's frame (4100 bytes), and of a 16 KiB body with its head, against what a lent block
// costs, its view and the zeroing of what the last loan wrote, and a Slab's lend and give-back.
//
//   deno bench bench/slab_bench.ts

import { Slab } from "../lib/_slab.ts";

const SIZE = 4100;
const block = new ArrayBuffer(32_768);
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

Deno.bench({
  group: "a 16400-byte chunk (a 16 KiB body with its head)",
  name: "new Uint8Array(16400)",
  baseline: true,
  fn: () => {
    sink ^= new Uint8Array(16_400)[7]!;
  },
});

Deno.bench({
  group: "a 16400-byte chunk (a 16 KiB body with its head)",
  name: "a view of an existing block, zeroed",
  fn: () => {
    sink ^= new Uint8Array(block, 0, 16_400).fill(0)[7]!;
  },
});
