// Copyright 2026 the wirestream authors. MIT license.
// Where parseMultipart's time goes on the body of bench/multipart_load.ts (bench/_multipart/body.ts:
// 200 MiB in fresh 64 KiB chunks), in one process with a warm JIT: each row does what the row
// above it does and more, so the differences between rows are the costs of the layers.
//
//   drain floor            read the chunks, parse nothing (multipart_load.ts's floor)
//   touch each cache line  + read one byte of every 64 (what any parser pays to look at the bytes)
//   BoundarySearch         + find every delimiter (indexOf over each chunk)
//   MultipartParser        + the state machine: heads, limits, views (no streams)
//   parseMultipart         + the event stream, a ReadableStream per part, a read per chunk
//
//   deno run -A bench/multipart_breakdown.ts [--runs N] [--mib M] [--warmup M]
//
// Each round runs every row once, the order rotating per round; the table gives each row's
// median time, the median over the rounds of its time over the floor's in the same round, and
// the median of floor time / its time. Warm-up (400 MiB per row by default) comes first.

import { MultipartParser, parseMultipart } from "../mod.ts";
import { BoundarySearch } from "../lib/multipart/search.ts";
import { loadAverage, median } from "./_load.ts";
import { bodyStream, BOUNDARY, CONTENT_TYPE, expected, layout } from "./_multipart/body.ts";

function option(name: string, fallback: number): number {
  const at = Deno.args.indexOf(name);
  return at === -1 ? fallback : Number(Deno.args[at + 1]);
}

const runs = option("--runs", 21), mib = option("--mib", 200), warmup = option("--warmup", 400);
const UNLIMITED = {
  maxTotalSize: Infinity,
  maxPartSize: Infinity,
  maxParts: Infinity,
  maxFields: Infinity,
};
const NOOP = { preamble() {}, partStart() {}, partData() {}, partEnd() {}, epilogue() {} };
const NEEDLE = new TextEncoder().encode(`\r\n--${BOUNDARY}`);

/** A row: reads the body and returns the bytes it saw (body or content, as checked below). */
type Row = (body: ReadableStream<Uint8Array>) => Promise<number>;

const ROWS: [string, Row, "body" | "content"][] = [
  ["drain floor", async (body) => {
    let n = 0;
    for await (const chunk of body) n += chunk.length;
    return n;
  }, "body"],
  ["touch each cache line", async (body) => {
    let n = 0, sum = 0;
    for await (const chunk of body) {
      for (let i = 0; i < chunk.length; i += 64) sum += chunk[i]!;
      n += chunk.length;
    }
    return sum < 0 ? -1 : n;
  }, "body"],
  ["BoundarySearch.indexOf", async (body) => {
    const search = new BoundarySearch(NEEDLE);
    let n = 0;
    for await (const chunk of body) {
      for (let at = 0; (at = search.indexOf(chunk, at)) !== -1;) at += NEEDLE.length;
      n += chunk.length;
    }
    return n;
  }, "body"],
  ["MultipartParser (no streams)", async (body) => {
    let n = 0;
    const sink = { ...NOOP, partData: (bytes: Uint8Array) => void (n += bytes.length) };
    const parser = new MultipartParser(BOUNDARY, UNLIMITED);
    for await (const chunk of body) {
      for (let at = 0; at < chunk.length;) at += parser.push(chunk.subarray(at), sink);
    }
    parser.end(sink);
    return n;
  }, "content"],
  ["parseMultipart", async (body) => {
    let n = 0;
    for await (const event of parseMultipart(body, CONTENT_TYPE, UNLIMITED)) {
      if (event.type !== "part") continue;
      const reader = event.body.getReader();
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.length;
      }
    }
    return n;
  }, "content"],
];

for (let left = warmup; left > 0; left -= 32) {
  for (const [, row] of ROWS) await row(bodyStream(layout(Math.min(32, left))));
}
const parts = layout(mib);
const want = expected(parts);
const times = ROWS.map((): number[] => []);
const loads = [await loadAverage()];
for (let round = 0; round < runs; round++) {
  for (let k = 0; k < ROWS.length; k++) {
    const i = (k + round) % ROWS.length;
    const [name, row, counts] = ROWS[i]!;
    const body = bodyStream(parts);
    const started = performance.now();
    const seen = await row(body);
    times[i]!.push(performance.now() - started);
    if (seen !== (counts === "body" ? want.bodyBytes : want.contentBytes)) {
      throw new Error(`${name} saw ${seen} bytes`);
    }
  }
}
loads.push(await loadAverage());

const floor = times[0]!;
console.log(
  `\n${(want.bodyBytes / 1_048_576).toFixed(1)} MiB body in fresh 64 KiB chunks, ${runs} rounds ` +
    `after ${warmup} MiB of warm-up, Deno ${Deno.version.deno}, load average ` +
    `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}\n`,
);
console.log("| row | median time | over the floor (median) | ratio to the floor (median) |");
console.log("|---|---|---|---|");
ROWS.forEach(([name], i) => {
  const over = times[i]!.map((t, round) => t - floor[round]!);
  const ratio = times[i]!.map((t, round) => floor[round]! / t);
  console.log(
    `| ${name} | ${median(times[i]!).toFixed(1)} ms | ${median(over).toFixed(1)} ms | ` +
      `${median(ratio).toFixed(2)}× |`,
  );
});
