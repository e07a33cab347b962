// Copyright 2026 the wirestream authors. MIT license.
// Memory per idle WebSocket session: each echo server of bench/_ws_servers/ (our session on the
// wire and native engines, bare Deno.upgradeWebSocket, npm:ws on Node) in a child process, N
// clients (Deno's WebSocket, in another child: bench/_ws_idle_clients.ts) that each send one
// message, get its echo and then stay open and silent. The server's VmRSS is read before the
// clients connect and 2 s after the last echo; the difference over N is what one idle session
// costs (RSS: what the machine pays, allocator slack included). Servers run one at a time,
// the order rotating per run; medians of the runs.
//
//   deno run -A bench/ws_idle_memory.ts [--runs 3] [--sessions 2000]

import {
  children,
  kill,
  median,
  parseOptions,
  residentMib,
  startServer,
  stopAll,
  stopOnInterrupt,
} from "./_load.ts";

const args = parseOptions(
  Deno.args,
  { runs: 3, sessions: 2000 },
  "deno run -A bench/ws_idle_memory.ts [--runs N] [--sessions N]",
);
const here = (path: string) => new URL(path, import.meta.url).pathname;
const deno = (file: string) => ({
  command: Deno.execPath(),
  args: ["run", "--quiet", "--allow-net=127.0.0.1", here(`./_ws_servers/${file}`), "0"],
});
const SPECS = [
  { key: "wire", label: "ours, wire engine (httpServer)", ...deno("wire.ts") },
  { key: "native", label: "ours, native engine (Deno.serve)", ...deno("native.ts") },
  { key: "deno", label: "bare Deno.upgradeWebSocket", ...deno("deno_bare.ts") },
  {
    key: "ws",
    label: "npm:ws on Node",
    command: "node",
    args: [here("./_ws_servers/ws_node.mjs"), "0"],
  },
];

/** KiB of server RSS per idle session, one measurement. */
async function measure(spec: (typeof SPECS)[number]): Promise<number> {
  const server = await startServer(spec);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = await residentMib(server.child.pid);
    const client = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-net=127.0.0.1",
        here("./_ws_idle_clients.ts"),
        `ws://127.0.0.1:${server.port}/`,
        String(args.sessions),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.add(client);
    try {
      const reader = client.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      const deadline = Date.now() + 120_000;
      while (!seen.includes("ready")) {
        const { done, value } = await reader.read();
        if (done || Date.now() > deadline) {
          throw new Error(`${spec.key}: the clients did not get ready`);
        }
        seen += value;
      }
      void reader.cancel().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const after = await residentMib(server.child.pid);
      return (after - before) * 1024 / args.sessions;
    } finally {
      kill(client);
      children.delete(client);
    }
  } finally {
    kill(server.child);
    children.delete(server.child);
  }
}

const unsubscribe = stopOnInterrupt();
const results = new Map<string, number[]>(SPECS.map((s) => [s.key, []]));
try {
  for (let run = 0; run < args.runs; run++) {
    for (let i = 0; i < SPECS.length; i++) {
      const spec = SPECS[(i + run) % SPECS.length]!;
      const kib = await measure(spec);
      results.get(spec.key)!.push(kib);
      console.error(`run ${run + 1}: ${spec.key} ${kib.toFixed(1)} KiB per idle session`);
    }
  }
} finally {
  await stopAll();
  unsubscribe();
}
console.log(
  `${args.sessions} idle sessions, ${args.runs} runs; server RSS per session (median, runs):`,
);
for (const spec of SPECS) {
  const values = results.get(spec.key)!;
  console.log(
    `  ${spec.label.padEnd(36)} ${median(values).toFixed(1).padStart(6)} KiB  (${
      values.map((v) => v.toFixed(1)).join(", ")
    })`,
  );
}
