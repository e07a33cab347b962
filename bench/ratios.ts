// Copyright 2026 the wirestream authors. MIT license.
// Runs `deno bench --json` on the given files several times, one file after another, and
// prints per group each row's median time per iteration and the median over the runs of its
// ratio to the group's baseline (baseline time / row time: above 1 is faster). The machine is
// shared and noisy, so BENCHMARKS.md records these medians, never one run.
//
//   deno run -A bench/ratios.ts --runs 5 bench/websocket_decoder_bench.ts bench/websocket_encoder_bench.ts

import { median } from "./_load.ts";

interface BenchResult {
  group?: string;
  name: string;
  baseline: boolean;
  results: { ok?: { avg: number } }[];
}

const args = [...Deno.args];
let runs = 3;
const at = args.indexOf("--runs");
if (at !== -1) {
  runs = Number(args[at + 1]);
  args.splice(at, 2);
}
if (args.length === 0 || !(runs >= 1)) {
  console.error("usage: deno run -A bench/ratios.ts [--runs N] <bench files>");
  Deno.exit(2);
}

function time(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns.toFixed(0)} ns`;
}

for (const file of args) {
  // group → row → avg per run
  const table = new Map<string, Map<string, number[]>>();
  const baselines = new Map<string, string>();
  for (let run = 0; run < runs; run++) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["bench", "-A", "--json", file],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!output.success) throw new Error(`deno bench ${file} failed`);
    const { benches } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      benches: BenchResult[];
    };
    for (const bench of benches) {
      const avg = bench.results[0]?.ok?.avg;
      if (avg === undefined) throw new Error(`${bench.name} did not run`);
      const group = bench.group ?? "";
      if (bench.baseline) baselines.set(group, bench.name);
      const rows = table.get(group) ?? new Map<string, number[]>();
      table.set(group, rows);
      rows.set(bench.name, [...(rows.get(bench.name) ?? []), avg]);
    }
  }
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ")[0];
  console.log(`\n#### ${file}: ${runs} runs, load average ${load} after\n`);
  console.log("| group | row | median time/iter | median ratio to baseline (per run) |");
  console.log("|---|---|---|---|");
  for (const [group, rows] of table) {
    const base = rows.get(baselines.get(group) ?? "");
    for (const [name, avgs] of rows) {
      const ratios = base ? avgs.map((avg, i) => base[i]! / avg) : [];
      const detail = ratios.map((r) => r.toFixed(2)).join(", ");
      const ratio = base ? `${median(ratios).toFixed(2)}× (${detail})` : "–";
      const label = name === baselines.get(group) ? `${name} (baseline)` : name;
      console.log(`| ${group} | ${label} | ${time(median(avgs))} | ${ratio} |`);
    }
  }
}
