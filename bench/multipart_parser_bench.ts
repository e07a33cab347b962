// Copyright 2026 the wirestream authors. MIT license.
// The multipart parser with a warm JIT: the boundary search on one 64 KiB chunk, and an 8 MiB
// form (text fields and binary files, bench/_multipart/body.ts) parsed in 64 KiB chunks by
// every parser of bench/multipart_load.ts, which measures them at 200 MiB in processes of
// their own (MB/s and peak RSS). Ratios: deno run -A bench/ratios.ts --runs 5 bench/multipart_parser_bench.ts

import { MultipartParser } from "../mod.ts";
import { BoundarySearch } from "../lib/multipart/search.ts";
import { bodyStream, BOUNDARY, layout } from "./_multipart/body.ts";
import { PARSERS } from "./_multipart/parsers.ts";

// One 64 KiB chunk of random bytes, and the delimiter a browser's boundary makes.
const NEEDLE = new TextEncoder().encode(`\r\n--${BOUNDARY}`);
const CHUNK = new Uint8Array(65_536);
for (let at = 0; at < CHUNK.length; at += 65_536) {
  crypto.getRandomValues(CHUNK.subarray(at, at + 65_536));
}
const COPY = new Uint8Array(CHUNK.length);
const SEARCH = new BoundarySearch(NEEDLE);

/** Horspool with one cursor, the textbook loop: what BoundarySearch's four cursors replace. */
const SKIP = new Uint8Array(256).fill(NEEDLE.length);
for (let j = 0; j < NEEDLE.length - 1; j++) SKIP[NEEDLE[j]!] = NEEDLE.length - 1 - j;
function horspool(bytes: Uint8Array): number {
  const last = NEEDLE.length - 1, lastByte = NEEDLE[last]!;
  for (let i = last; i < bytes.length; i += SKIP[bytes[i]!]!) {
    if (bytes[i] !== lastByte) continue;
    let j = last - 1;
    while (j >= 0 && bytes[i - last + j] === NEEDLE[j]) j--;
    if (j < 0) return i - last;
  }
  return -1;
}

Deno.bench({
  group: "search a 64 KiB chunk",
  name: "copy of the chunk (ceiling)",
  baseline: true,
  fn: () => void COPY.set(CHUNK),
});
Deno.bench({
  group: "search a 64 KiB chunk",
  name: "Horspool, one cursor",
  fn: () => void horspool(CHUNK),
});
Deno.bench({
  group: "search a 64 KiB chunk",
  name: "BoundarySearch.indexOf (four cursors)",
  fn: () => void SEARCH.indexOf(CHUNK, 0),
});

// The 8 MiB form, in the same fresh-looking 64 KiB chunks for every parser.
const CHUNKS = await Array.fromAsync(bodyStream(layout(8)));
const NOOP = { preamble() {}, partStart() {}, partData() {}, partEnd() {}, epilogue() {} };
const UNLIMITED = { maxTotalSize: Infinity, maxPartSize: Infinity, maxParts: Infinity };
const source = () => ReadableStream.from(CHUNKS) as ReadableStream<Uint8Array<ArrayBuffer>>;

Deno.bench({
  group: "parse an 8 MiB form",
  name: "drain (these chunks are made once: no copy, unlike bench/multipart_load.ts's floor)",
  fn: async () => void await PARSERS.floor!(source()),
});
Deno.bench({
  group: "parse an 8 MiB form",
  name: "MultipartParser (the machine, no streams)",
  fn() {
    const parser = new MultipartParser(BOUNDARY, UNLIMITED);
    for (const chunk of CHUNKS) {
      for (let at = 0; at < chunk.length;) at += parser.push(chunk.subarray(at), NOOP);
    }
    parser.end(NOOP);
  },
});
Deno.bench({
  group: "parse an 8 MiB form",
  name: "parseMultipart",
  fn: async () => void await PARSERS.wirestream!(source()),
});
// The peers last: their garbage would otherwise land on the rows after them.
Deno.bench({
  group: "parse an 8 MiB form",
  name: "busboy",
  baseline: true,
  fn: async () => void await PARSERS.busboy!(source()),
});
for (const name of ["@fastify/busboy", "@remix-run/multipart-parser"]) {
  Deno.bench({
    group: "parse an 8 MiB form",
    name,
    fn: async () => void await PARSERS[name]!(source()),
  });
}
