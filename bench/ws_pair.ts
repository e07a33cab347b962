// Copyright 2026 the wirestream authors. MIT license.
// Before and after, on sockets: the wire engine's echo server (bench/_ws_servers/wire.ts) of
// this tree against the same server in another checkout (an older commit, say), one run of
// each in turn, so that both meet the same load on this shared machine. Each run is one
// bench/_ws_client.mjs measurement (Node, closed loop, one message in flight per connection);
// it prints each run's messages/s, the server's CPU per message (utime + stime from /proc) and
// p99, then the medians. ws_load.ts compares the engines with their peers; this compares two
// versions of one.
//
//   git worktree add /tmp/before <commit>     # or a clone checked out at <commit>
//   deno run -A bench/ws_pair.ts [--runs 5] [--connections 64] [--size 4096] /tmp/before
//   deno run -A bench/ws_pair.ts --native …    # the native engine's server (Deno.serve) instead
//
// Needs node on PATH. Nothing is left running: every child is killed on the way out.

import {
  children,
  cpuSeconds,
  exited,
  forEachLine,
  kill,
  median,
  parseOptions,
  pump,
  startServer,
  stopAll,
  stopOnInterrupt,
} from "./_load.ts";

const USAGE =
  "deno run -A bench/ws_pair.ts [--native] [--runs N] [--connections K] [--size B] [--duration S] OTHER_CHECKOUT";
/** --native: the native engine's echo server (bench/_ws_servers/native.ts) instead. */
const NATIVE = Deno.args.includes("--native");
const argv = Deno.args.filter((a) => a !== "--native");
const other = argv.at(-1);
if (other === undefined || other.startsWith("--") || argv.length % 2 === 0) {
  console.error(`usage: ${USAGE}`);
  Deno.exit(2);
}
const args = parseOptions(
  argv.slice(0, -1),
  { runs: 5, connections: 64, size: 4096, duration: 5 },
  USAGE,
);
const here = new URL("../", import.meta.url).pathname;
const trees = [{ name: "this tree", root: here }, { name: other, root: `${other}/` }];

interface Run {
  rate: number;
  cpu: number;
  p99: number;
}

/** One client run against `port`; the server's CPU per message over the measured part. */
async function measure(pid: number, port: number): Promise<Run> {
  const child = new Deno.Command("node", {
    args: [
      `${here}bench/_ws_client.mjs`,
      ...["--port", String(port), "--connections", String(args.connections)],
      ...["--size", String(args.size), "--warmup", "1", "--duration", String(args.duration)],
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  void pump(child.stderr, (text) => console.error(text.trimEnd()));
  // Handshakes at most 10 s each, 64 at a time; then the run, 5 s to drain and 5 s to close.
  const limit = (Math.ceil(args.connections / 64) * 10 + args.duration + 31) * 1000;
  const timer = setTimeout(() => kill(child), limit);
  let before = NaN, cpu = NaN;
  let result = null as { messages: number; rate: number; p99: number } | null; // set below
  try {
    await forEachLine(child.stdout, async (line) => {
      if (line === "measuring") before = await cpuSeconds(pid);
      else if (line === "stopped") cpu = (await cpuSeconds(pid)) - before;
      else if (line.startsWith("result ")) result = JSON.parse(line.slice(7));
    });
  } finally {
    clearTimeout(timer);
    await exited(child, 5000);
  }
  if (result === null || !(result.messages > 0)) throw new Error("the client echoed nothing");
  return { rate: result.rate, cpu: cpu / result.messages * 1e6, p99: result.p99 / 1000 };
}

const stop = stopOnInterrupt();
const runs = new Map(trees.map((tree) => [tree.name, [] as Run[]]));
try {
  for (let round = 0; round < args.runs; round++) {
    for (const tree of round % 2 === 0 ? trees : [...trees].reverse()) {
      const server = await startServer({
        key: tree.name,
        label: tree.name,
        command: Deno.execPath(),
        args: [
          "run",
          "--quiet",
          "--allow-net=127.0.0.1",
          `${tree.root}bench/_ws_servers/${NATIVE ? "native" : "wire"}.ts`,
          "0",
        ],
      });
      try {
        const run = await measure(server.child.pid, server.port);
        runs.get(tree.name)!.push(run);
        console.log(
          `${tree.name}: ${Math.round(run.rate)} msg/s, ${run.cpu.toFixed(1)} µs CPU/msg, p99 ${
            run.p99.toFixed(1)
          } ms`,
        );
      } finally {
        kill(server.child);
        await exited(server.child, 5000);
      }
    }
  }
  for (const [name, list] of runs) {
    console.log(
      `median, ${name}: ${Math.round(median(list.map((r) => r.rate)))} msg/s, ${
        median(list.map((r) => r.cpu)).toFixed(1)
      } µs CPU/msg, p99 ${median(list.map((r) => r.p99)).toFixed(1)} ms`,
    );
  }
} finally {
  await stopAll();
  stop();
}
