// Copyright 2026 the wirestream authors. MIT license.
// WebSocket echo load: our session on the wire engine (httpServer) and on the native engine
// (Deno.serve), against the bare Deno.upgradeWebSocket and npm:ws on Node, and the floor under
// the wire engine (bench/_ws_servers/conn_floor.ts: a Deno.Conn echo with our codec and
// nothing else, what Deno's op-based sockets cost by themselves), each an echo server
// from bench/_ws_servers/ in a child process bound to 127.0.0.1. Every round measures every
// scenario on every server that passed its startup check, the server order rotating per round;
// the tables give each server's medians and the median of the per-round ratios ours / other.
// A server that fails to start or to echo is listed as unavailable, with the reason, instead
// of stopping the benchmark (our native-engine session until upgradeWebSocket accepts a
// Deno.serve request). The machine is shared and noisy: read the ratios and the CPU per
// message, not the absolute rates.
//
//   deno run -A bench/ws_load.ts [--runs N] [--duration S] [--warmup S] [--json FILE]
//
// Scenarios: 64 and 512 connections × 32 B and 4 KiB binary messages. The load is
// bench/_ws_client.mjs (Node, closed loop: one message in flight per connection, each echo
// checked byte for byte; its header says why it frames messages itself rather than use ws),
// run once per measurement: it connects, runs --warmup seconds, then --duration seconds
// measured. The server's CPU (utime + stime from /proc/<pid>/stat) is read when the client
// says `measuring` and when it says `stopped`. On 2 vCPUs the client shares the cores with the
// server, so the fastest servers may be held back by it: the tables show the client's CPU use,
// and the server CPU per message does not depend on it.
//
// Needs node on PATH and, for the ws server, npm:ws in node_modules/ (this runs
// `deno install` when it is missing). Nothing is left running: every child is killed in `finally`.

import {
  children,
  commandLine,
  cpuSeconds,
  exited,
  forEachLine,
  format,
  header,
  kill,
  loadAverage,
  measureRounds,
  median,
  parseOptions,
  problemsCell,
  pump,
  ratioCell,
  report,
  residentMib,
  row,
  type Server as ChildServer,
  startServer,
  stopAll,
  stopOnInterrupt,
  tableHead,
} from "./_load.ts";

const args = parseOptions(
  Deno.args,
  { runs: 3, duration: 10, warmup: 1 },
  "deno run -A bench/ws_load.ts [--runs N] [--duration S] [--warmup S] [--json FILE]",
);
const RUNS = args.runs;
const DURATION = args.duration;

const here = (path: string) => new URL(path, import.meta.url).pathname;
const ROOT = here("../");
const CLIENT = here("./_ws_client.mjs");
const deno = (file: string) => ({
  command: Deno.execPath(),
  args: ["run", "--quiet", "--allow-net=127.0.0.1", here(`./_ws_servers/${file}`), "0"],
});

interface ServerSpec {
  key: "wire" | "native" | "floor" | "deno" | "ws";
  label: string;
  command: string;
  args: string[];
}

const SPECS: ServerSpec[] = [
  { key: "wire", label: "ours, wire engine (httpServer)", ...deno("wire.ts") },
  { key: "native", label: "ours, native engine (Deno.serve)", ...deno("native.ts") },
  {
    key: "floor",
    label: "floor: a Deno.Conn echo with our codec, no engine",
    ...deno("conn_floor.ts"),
  },
  { key: "deno", label: "bare Deno.upgradeWebSocket", ...deno("deno_bare.ts") },
  {
    key: "ws",
    label: "npm:ws on Node",
    command: "node",
    args: [here("./_ws_servers/ws_node.mjs"), "0"],
  },
];
/** The rows that get ratio columns: ours, and the floor under the wire engine. */
const OURS = new Set<ServerSpec["key"]>(["wire", "native", "floor"]);

type Server = ChildServer<ServerSpec>;

interface Scenario {
  id: string;
  title: string;
  connections: number;
  size: number;
}

const SCENARIOS: Scenario[] = ([[64, 32], [64, 4096], [512, 32], [512, 4096]] as const).map(
  ([connections, size]) => {
    const bytes = size < 1024 ? `${size} B` : `${size / 1024} KiB`;
    return {
      id: `${connections}×${bytes}`,
      title: `${connections} connections, ${bytes} binary messages`,
      connections,
      size,
    };
  },
);

/** What the client prints last: see bench/_ws_client.mjs. */
interface ClientResult {
  connections: number;
  messages: number;
  seconds: number;
  rate: number;
  /** Round trips in µs. */
  p50: number;
  p99: number;
  max: number;
  /** The client's own CPU (user + system) over the measurement, in seconds. */
  clientCpu: number;
  problems: {
    connectFailed: number;
    wrongEcho: number;
    badFrames: number;
    dropped: number;
    stalled: number;
    closeTimeouts: number;
    firstError: string;
  };
}

/** One measurement. */
interface Sample {
  /** Messages echoed per second. */
  value: number;
  messages: number;
  /** Round trips in ms. */
  p50: number;
  p99: number;
  /** Server CPU (user + system) over the measurement, in seconds. */
  cpu: number;
  /** The client's CPU over the measurement, as a share of one core. */
  clientShare: number;
  /** The server's resident memory right after the measurement, in MiB. */
  rss: number;
  load: number;
  problems: string[];
}

const stopInterrupt = stopOnInterrupt();
const servers: Server[] = [];
/** The servers that did not start or failed their check, with the reason. */
const unavailable = new Map<ServerSpec["key"], string>();
try {
  const wsVersion = await ensureWs();
  // Named before the servers start: the engine's files may change while the run goes on.
  const intro = await header(
    "WebSocket echo load: our session on both engines vs bare Deno and npm:ws",
    `${RUNS} rounds, server order rotating per round; ${args.warmup} s of warm-up and ` +
      `${DURATION} s measured per run`,
    [`ws ${wsVersion} with bufferutil (the ws server says below whether it loaded)`],
    [
      "Closed loop: every connection sends a binary message, waits for its echo (checked byte",
      "for byte) and sends the next. Medians over the rounds; a ratio is ours / that server, the",
      "median of the per-round ratios (messages/s: above 1 we are faster; CPU: below 1 we spend",
      "less). p50 and p99 are round trips seen by the client. Server CPU is utime + stime of the",
      "server process from /proc/<pid>/stat (all threads) over the measurement, divided by the",
      "messages echoed. Server RSS is VmRSS right after each measurement, the largest over the",
      "rounds. Client CPU is the load client's over the measurement, as a share of one core:",
      "near 100% the client, not the server, sets the rate.",
    ],
  );

  for (const spec of SPECS) {
    try {
      const server = await startServer(spec);
      const problem = await checkServer(server);
      if (problem === null) servers.push(server);
      else {
        unavailable.set(spec.key, problem);
        kill(server.child);
        await exited(server.child, 5000);
      }
    } catch (error) {
      unavailable.set(spec.key, error instanceof Error ? error.message : String(error));
    }
  }
  console.error(`servers: ${servers.map((s) => `${s.spec.label} :${s.port}`).join(", ")}`);
  for (const [key, reason] of unavailable) console.error(`unavailable: ${key}: ${reason}`);
  if (servers.length === 0) throw new Error("No server passed its check");

  // Warm-up: JIT and buffers, not measured.
  console.error("warming up");
  for (const server of servers) {
    for (const size of [32, 4096]) {
      await runClient(server, { connections: 64, size, warmup: 0, duration: 1 });
    }
  }

  const results = await measureRounds(
    servers,
    SCENARIOS,
    RUNS,
    measure,
    (_, sample) =>
      `${format(sample.value)} msg/s, p99 ${sample.p99.toPrecision(3)} ms, ` +
      `${perMessage(sample).toPrecision(3)} µs CPU/msg`,
  );
  await report(intro, SCENARIOS, results, table, servers, args.json);
} finally {
  stopInterrupt();
  await stopAll();
}

// ---- Servers ----------------------------------------------------------------------------

/**
 * ws's version in node_modules/, after `deno install` if it is not there yet; "missing" if it
 * is still not there (the ws server then fails to start and is reported unavailable).
 */
async function ensureWs(): Promise<string> {
  const manifest = `${ROOT}node_modules/ws/package.json`;
  const read = async () => JSON.parse(await Deno.readTextFile(manifest)).version as string;
  try {
    return await read();
  } catch {
    console.error("node_modules/ws is missing: running deno install");
    await new Deno.Command(Deno.execPath(), {
      args: ["install", "--quiet"],
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    return await read().catch(() => "missing");
  }
}

/**
 * Echoes a few messages of each size over one connection: null if all came back right,
 * else the reason (with the first thing the server wrote, if anything).
 */
async function checkServer(server: Server): Promise<string | null> {
  for (const size of [32, 4096]) {
    const { result, problems } = await runClient(server, {
      connections: 1,
      size,
      warmup: 0,
      duration: 0.2,
    });
    const failed = problems.length > 0 || result === null || !(result.messages > 0);
    if (failed) {
      const said = server.log.join("").trim().split("\n").find((line) => line.trim() !== "");
      const reason = result?.problems.firstError || problems.join("; ") || "no echo";
      return said ? `${reason}; the server wrote: ${said.slice(0, 200)}` : reason;
    }
  }
  return null;
}

// ---- Measurements -----------------------------------------------------------------------

interface ClientRun {
  connections: number;
  size: number;
  warmup: number;
  duration: number;
}

/** Runs the load client against the server; `marks` is called on its progress lines. */
async function runClient(
  server: Server,
  run: ClientRun,
  marks: (line: "measuring" | "stopped") => Promise<void> = async () => {},
): Promise<{ result: ClientResult | null; problems: string[] }> {
  const child = new Deno.Command("node", {
    args: [
      CLIENT,
      "--port",
      String(server.port),
      "--connections",
      String(run.connections),
      "--size",
      String(run.size),
      "--warmup",
      String(run.warmup),
      "--duration",
      String(run.duration),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  let stderr = "";
  const stderrDone = pump(child.stderr, (text) => {
    if (stderr.length < 4096) stderr += text;
  });
  // Handshakes at most 10 s each, 64 at a time; then the run, 5 s to drain and 5 s to close.
  const limit = (Math.ceil(run.connections / 64) * 10 + run.warmup + run.duration + 30) * 1000;
  const timer = setTimeout(() => kill(child), limit);
  const problems: string[] = [];
  let result = null as ClientResult | null; // set in a callback: no narrowing to null
  try {
    await forEachLine(child.stdout, async (line) => {
      if (line === "measuring" || line === "stopped") await marks(line);
      else if (line.startsWith("result ")) result = JSON.parse(line.slice(7));
    });
  } finally {
    clearTimeout(timer);
    await exited(child, 5000);
    await stderrDone;
  }
  const status = await child.status;
  if (result === null) {
    problems.push(
      `the client ${status.signal ? `was killed (${status.signal})` : `exited ${status.code}`}` +
        ` without a result${stderr.trim() ? `: ${stderr.trim().slice(0, 300)}` : ""}`,
    );
  } else {
    const p = result.problems;
    const first = p.firstError ? ` (first: ${p.firstError})` : "";
    if (p.connectFailed > 0) {
      problems.push(`${p.connectFailed} of ${run.connections} connections failed${first}`);
    }
    if (p.wrongEcho > 0) problems.push(`${p.wrongEcho} wrong echoes${first}`);
    if (p.badFrames > 0) problems.push(`${p.badFrames} bad frames${first}`);
    if (p.dropped > 0) problems.push(`${p.dropped} connections dropped${first}`);
    if (p.stalled > 0) problems.push(`${p.stalled} echoes missing 5 s after the end`);
    if (p.closeTimeouts > 0) problems.push(`${p.closeTimeouts} closes unanswered in 5 s`);
  }
  return { result, problems };
}

/** One measurement of a scenario on a server, with the server's CPU around it. */
async function measure(scenario: Scenario, server: Server): Promise<Sample> {
  const pid = server.child.pid;
  const load = await loadAverage();
  let before = NaN;
  let cpu = NaN;
  let rss = NaN;
  const unread: string[] = [];
  const { result, problems } = await runClient(
    server,
    {
      connections: scenario.connections,
      size: scenario.size,
      warmup: args.warmup,
      duration: DURATION,
    },
    async (line) => {
      try {
        if (line === "measuring") before = await cpuSeconds(pid);
        else {
          cpu = (await cpuSeconds(pid)) - before;
          rss = await residentMib(pid);
        }
      } catch (error) {
        unread.push(`cannot read the server's /proc entries (exited?): ${error}`);
      }
    },
  );
  problems.push(...unread);
  if (result !== null && !(result.messages > 0)) problems.push("no message echoed");
  return {
    value: result?.rate ?? NaN,
    messages: result?.messages ?? NaN,
    p50: (result?.p50 ?? NaN) / 1000,
    p99: (result?.p99 ?? NaN) / 1000,
    cpu,
    clientShare: result ? result.clientCpu / result.seconds : NaN,
    rss,
    load,
    problems,
  };
}

// ---- Report -----------------------------------------------------------------------------

function table(scenario: Scenario, rows: Map<string, Sample[]>): string {
  const loads = [...rows.values()].flat().map((s) => s.load);
  const lines = [
    `\n### ${scenario.id}: ${scenario.title}\n`,
    commandLine(
      `node bench/_ws_client.mjs --connections ${scenario.connections} --size ${scenario.size} ` +
        `--warmup ${args.warmup} --duration ${DURATION}`,
      loads,
    ),
    ...tableHead([
      "server",
      "median msg/s",
      "per round",
      "msg/s ours / ws",
      "msg/s ours / bare Deno",
      "p50 / p99 ms",
      "server CPU µs/msg",
      "CPU/msg ours / bare Deno",
      "server RSS MiB (max)",
      "client CPU",
      "problems",
    ]),
  ];
  const cell = (key: string, versus: string, of: (s: Sample) => number) => {
    const each = ratios(rows, key, versus, of);
    return each === null ? "–" : ratioCell(each);
  };
  for (const spec of SPECS) {
    const reason = unavailable.get(spec.key);
    if (reason !== undefined) {
      lines.push(row([spec.label, `unavailable (${reason.replaceAll("|", "\\|")})`, ...dashes(9)]));
      continue;
    }
    const samples = rows.get(spec.key) ?? [];
    const ours = OURS.has(spec.key);
    lines.push(row([
      spec.label,
      format(median(samples.map((s) => s.value))),
      samples.map((s) => format(s.value)).join(", "),
      ours ? cell(spec.key, "ws", rate) : "–",
      ours ? cell(spec.key, "deno", rate) : "–",
      `${median(samples.map((s) => s.p50)).toPrecision(2)} / ` +
      median(samples.map((s) => s.p99)).toPrecision(3),
      median(samples.map(perMessage)).toPrecision(3),
      ours ? cell(spec.key, "deno", perMessage) : "–",
      Math.max(...samples.map((s) => s.rss)).toFixed(0),
      `${(median(samples.map((s) => s.clientShare)) * 100).toFixed(0)}%`,
      problemsCell(samples).replaceAll("|", "\\|"),
    ]));
  }
  lines.push("", ...targets(scenario, rows));
  return lines.join("\n");
}

/** Messages echoed per second. */
function rate(s: Sample): number {
  return s.value;
}

/** Server CPU per message echoed, in µs. */
function perMessage(s: Sample): number {
  return (s.cpu / s.messages) * 1e6;
}

/** Per round, `of` for `key` over `of` for `versus`; null unless both ran every round. */
function ratios(
  rows: Map<string, Sample[]>,
  key: string,
  versus: string,
  of: (s: Sample) => number,
): number[] | null {
  const ours = rows.get(key) ?? [];
  const theirs = rows.get(versus) ?? [];
  if (ours.length === 0 || ours.length !== theirs.length) return null;
  return ours.map((s, i) => of(s) / of(theirs[i]!));
}

/** The issue's targets that this scenario speaks to. */
function targets(scenario: Scenario, rows: Map<string, Sample[]>): string[] {
  const verdict = (got: number[] | null, unit: string, met: (value: number) => boolean) => {
    if (got === null) return "not measured (a server is unavailable).";
    const value = median(got);
    return `${value.toPrecision(3)}${unit}, **${met(value) ? "met" : "missed"}**.`;
  };
  const out: string[] = [];
  if (scenario.size === 32) {
    out.push(
      "Target: wire engine server CPU per message ≤ 0.5× bare Deno.upgradeWebSocket's: " +
        verdict(ratios(rows, "wire", "deno", perMessage), "×", (r) => r <= 0.5) +
        " The floor (a Deno.Conn echo, no engine): " +
        verdict(ratios(rows, "floor", "deno", perMessage), "×", (r) => r <= 0.5),
    );
  }
  if (scenario.connections === 512) {
    const p99s = (key: string) => {
      const samples = rows.get(key) ?? [];
      return samples.length ? samples.map((s) => s.p99) : null;
    };
    out.push(
      "Target: wire engine p99 < 100 ms at 512 connections: " +
        verdict(p99s("wire"), " ms", (ms) => ms < 100) + " The floor: " +
        verdict(p99s("floor"), " ms", (ms) => ms < 100),
    );
  }
  out.push(
    "Target: our native-engine session within 10% of bare Deno.upgradeWebSocket (msg/s): " +
      verdict(ratios(rows, "native", "deno", rate), "×", (r) => r >= 0.9),
  );
  return out.flatMap((line, i) => (i === 0 ? [line] : ["", line]));
}

function dashes(count: number): string[] {
  return Array.from({ length: count }, () => "–");
}
