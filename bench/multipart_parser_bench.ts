// Copyright 2026 the wirestream authors. MIT license.
// The multipart parser with a warm JIT: the boundary search on one 64 KiB chunk, an 8 MiB form
// (text fields and binary files, bench/_multipart/body.ts) parsed in 64 KiB chunks by every
// parser of bench/multipart_load.ts, which measures them at 200 MiB in processes of their own
// (MB/s and peak RSS), and 4000 small parts, where the heads cost most. Ratios:
// deno run -A bench/ratios.ts --runs 5 bench/multipart_parser_bench.ts

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

/** Whether NEEDLE ends at `bytes[i]`. */
function endsAt(bytes: Uint8Array, i: number): boolean {
  for (let j = NEEDLE.length - 1, k = i; j >= 0; j--, k--) if (bytes[k] !== NEEDLE[j]) return false;
  return true;
}

/** One cursor over needle ends in `[i, stop)`. */
function scan(bytes: Uint8Array, i: number, stop: number): number {
  const last = NEEDLE.length - 1;
  for (; i < stop; i += SKIP[bytes[i]!]!) if (endsAt(bytes, i)) return i - last;
  return -1;
}

/**
 * BoundarySearch.indexOf before it took three steps a turn: four cursors, each byte read tested
 * against the needle's last one (kept here to show the difference).
 */
function fourCursors(bytes: Uint8Array): number {
  const last = NEEDLE.length - 1, lastByte = NEEDLE[last]!, q = (bytes.length - last) >> 2;
  const e1 = last + q, e2 = e1 + q, e3 = e2 + q, end = bytes.length;
  let a = last, b = e1, c = e2, d = e3, fa = -1, fb = -1, fc = -1, fd = -1;
  while (a < e1 && b < e2 && c < e3 && d < end) {
    const ba = bytes[a]!, bb = bytes[b]!, bc = bytes[c]!, bd = bytes[d]!;
    if (ba === lastByte && endsAt(bytes, a)) {
      fa = a - last;
      break;
    }
    if (bb === lastByte && endsAt(bytes, b)) [fb, b] = [b - last, e2];
    if (bc === lastByte && endsAt(bytes, c)) [fc, c] = [c - last, e3];
    if (bd === lastByte && endsAt(bytes, d)) [fd, d] = [d - last, end];
    a += SKIP[ba]!;
    b += SKIP[bb]!;
    c += SKIP[bc]!;
    d += SKIP[bd]!;
  }
  if (fa !== -1) return fa;
  let at = scan(bytes, a, e1);
  if (at !== -1 || (at = fb) !== -1 || (at = scan(bytes, b, e2)) !== -1) return at;
  if ((at = fc) !== -1 || (at = scan(bytes, c, e3)) !== -1 || (at = fd) !== -1) return at;
  return scan(bytes, d, end);
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
  name: "Horspool, four cursors, a test per byte read (before)",
  fn: () => void fourCursors(CHUNK),
});
Deno.bench({
  group: "search a 64 KiB chunk",
  name: "BoundarySearch.indexOf (four cursors, three steps a turn)",
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

// 4000 small parts (1 KiB fields and 1 KiB files with a browser's heads) in 64 KiB chunks: the
// part heads and the per-part streams cost most here.
const SMALL = new TextEncoder().encode(
  Array.from(
    { length: 4000 },
    (_, i) =>
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="p${i}"` +
      (i % 2 ? `; filename="f${i}.bin"\r\nContent-Type: application/octet-stream` : "") +
      `\r\n\r\n${"x".repeat(1024)}\r\n`,
  ).join("") + `--${BOUNDARY}--\r\n`,
);
const SMALL_CHUNKS: Uint8Array<ArrayBuffer>[] = [];
for (let at = 0; at < SMALL.length; at += 65_536) SMALL_CHUNKS.push(SMALL.slice(at, at + 65_536));
const SMALL_LIMITS = { ...UNLIMITED, maxFields: Infinity };

Deno.bench({
  group: "parse 4000 small parts",
  name: "MultipartParser (the machine, no streams)",
  fn() {
    const parser = new MultipartParser(BOUNDARY, SMALL_LIMITS);
    for (const chunk of SMALL_CHUNKS) {
      for (let at = 0; at < chunk.length;) at += parser.push(chunk.subarray(at), NOOP);
    }
    parser.end(NOOP);
  },
});
Deno.bench({
  group: "parse 4000 small parts",
  name: "parseMultipart",
  fn: async () => void await PARSERS.wirestream!(ReadableStream.from(SMALL_CHUNKS)),
});
Deno.bench({
  group: "parse 4000 small parts",
  name: "busboy",
  baseline: true,
  fn: async () => void await PARSERS.busboy!(ReadableStream.from(SMALL_CHUNKS)),
});
