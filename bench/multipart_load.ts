// Copyright 2026 the wirestream authors. MIT license.
// Multipart parsers on one large body: a 200 MiB multipart/form-data body (text fields and
// binary files, bench/_multipart/body.ts) read in 64 KiB chunks by parseMultipart, npm:busboy,
// npm:@fastify/busboy, npm:@remix-run/multipart-parser and Request.formData(), and by a drain
// floor that reads the same chunks and parses nothing. Each parser runs in its own process
// (bench/_multipart/child.ts), so its peak RSS (VmHWM) is its own; each round runs every
// parser once, the order rotating per round. The table gives each parser's median MB/s, the
// median of its per-round ratio to the floor (floor time / its time: 1 is the floor's speed)
// and its median peak RSS, also as the excess over the floor's. The machine is shared and
// noisy: read the ratios, and the load average printed with them.
//
//   deno run -A bench/multipart_load.ts [--runs N] [--mib M] [--warmup M] [--only a,b] [--json FILE]
//
// Each child first parses --warmup MiB (400 by default) in bodies of up to 32 MiB, as a server
// that has parsed uploads before: V8 optimizes the code that runs once per chunk or per part
// only after a few hundred MiB. --warmup 16 gives the figures of a cold process. Peak RSS
// covers the warm-up too (its bodies are smaller than the timed one).
// Every child checks that its parser found every part and byte of the body.

import { loadAverage, median } from "./_load.ts";

interface Sample {
  parser: string;
  seconds: number;
  bodyBytes: number;
  hwm: number;
  problems: string[];
}

const PARSERS = [
  "floor",
  "wirestream",
  "busboy",
  "@fastify/busboy",
  "@remix-run/multipart-parser",
  "Request.formData()",
];

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(name);
  return at === -1 ? fallback : Deno.args[at + 1] ?? "";
}

const runs = Number(option("--runs", "5"));
const mib = Number(option("--mib", "200"));
const warmup = Number(option("--warmup", "400"));
const only = option("--only", "");
const jsonPath = option("--json", "");
const parsers = only === "" ? PARSERS : ["floor", ...only.split(",").filter((p) => p !== "floor")];
const child = new URL("./_multipart/child.ts", import.meta.url).pathname;

async function runChild(parser: string): Promise<Sample> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", child, parser, String(mib), String(warmup)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(`${parser} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return JSON.parse(text.split("\n").at(-1)!) as Sample;
}

const samples = new Map<string, Sample[]>(parsers.map((p) => [p, []]));
const loads: number[] = [await loadAverage()];
for (let round = 0; round < runs; round++) {
  const order = parsers.map((_, i) => parsers[(i + round) % parsers.length]!);
  for (const parser of order) {
    const sample = await runChild(parser);
    samples.get(parser)!.push(sample);
    console.error(
      `round ${round + 1}: ${parser.padEnd(28)} ${sample.seconds.toFixed(3)} s, ` +
        `${sample.hwm.toFixed(0)} MiB${sample.problems.length ? " " + sample.problems : ""}`,
    );
  }
  loads.push(await loadAverage());
}

const floor = samples.get("floor")!;
const bodyBytes = floor[0]!.bodyBytes;
const rows = parsers.map((parser) => {
  const list = samples.get(parser)!;
  const ratios = list.map((s, i) => floor[i]!.seconds / s.seconds);
  return {
    parser,
    mbps: bodyBytes / median(list.map((s) => s.seconds)) / 1e6,
    ratio: median(ratios),
    ratios,
    hwm: median(list.map((s) => s.hwm)),
    excess: median(list.map((s, i) => s.hwm - floor[i]!.hwm)),
    problems: [...new Set(list.flatMap((s) => s.problems))],
  };
});

const commit = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], stdout: "piped" })
    .output()).stdout,
).trim();
console.log(
  `\n${(bodyBytes / 1_048_576).toFixed(1)} MiB body in 64 KiB chunks, ${runs} rounds, ` +
    `Deno ${Deno.version.deno}, commit ${commit}, ${new Date().toISOString().slice(0, 10)}, ` +
    `load average ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}\n`,
);
console.log("| parser | MB/s | ratio to floor (per round) | peak RSS | over the floor's |");
console.log("|---|---|---|---|---|");
for (const row of rows) {
  const detail = row.ratios.map((r) => r.toFixed(2)).join(", ");
  console.log(
    `| ${row.parser} | ${row.mbps.toFixed(0)} | ${row.ratio.toFixed(2)}× (${detail}) | ` +
      `${row.hwm.toFixed(0)} MiB | ${
        row.parser === "floor" ? "–" : `${row.excess.toFixed(0)} MiB`
      } |` +
      (row.problems.length ? ` ${row.problems.join("; ")}` : ""),
  );
}
if (jsonPath !== "") {
  await Deno.writeTextFile(
    jsonPath,
    JSON.stringify({ runs, mib, loads, rows, samples: [...samples] }),
  );
}
