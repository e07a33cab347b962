// Copyright 2026 the wirestream authors. MIT license.
// What the load benchmarks (http_load.ts, ws_load.ts) share: server child processes that print
// `listening <port>`, every child killed on the way out (SIGINT included), the server's CPU time
// and memory from /proc, the command-line options, and the pieces of the markdown report (the
// header naming the commit and the machine, medians, table rows).

/** A server to start: a command that prints `listening <port>` once bound to 127.0.0.1. */
export interface ServerSpec {
  /** A short name for the progress lines and the JSON dump. */
  key: string;
  /** The name in the tables. */
  label: string;
  command: string;
  args: string[];
}

/** A started server. */
export interface Server<S extends ServerSpec = ServerSpec> {
  spec: S;
  child: Deno.ChildProcess;
  port: number;
  /** The server's stdout and stderr after its `listening` line, cut at 64 KiB. */
  log: string[];
}

/** Every child process started and not yet reaped: killed on SIGINT and by {@linkcode stopAll}. */
export const children: Set<Deno.ChildProcess> = new Set();

const decoder = new TextDecoder();
const CLK_TCK = await clockTicks();
const here = (path: string) => new URL(path, import.meta.url).pathname;

// ---- Processes --------------------------------------------------------------------------

/** Kills the children on SIGINT and exits with 130; returns the function that stops that. */
export function stopOnInterrupt(): () => void {
  const onInterrupt = () => {
    console.error("interrupted: stopping the servers");
    for (const child of children) kill(child);
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  return () => Deno.removeSignalListener("SIGINT", onInterrupt);
}

/** Kills every child and waits for them (SIGKILL after 5 s). */
export async function stopAll(): Promise<void> {
  for (const child of children) kill(child);
  await Promise.all([...children].map((child) => exited(child, 5000)));
}

/** Starts a server and waits for its `listening <port>` line. */
export async function startServer<S extends ServerSpec>(spec: S): Promise<Server<S>> {
  const child = new Deno.Command(spec.command, {
    args: spec.args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const log: string[] = [];
  let logged = 0;
  const keep = (text: string) => {
    if (logged < 65_536) log.push(text.slice(0, 65_536 - logged));
    logged += text.length;
  };
  // stderr is read from the start so that a chatty server never blocks on a full pipe.
  void pump(child.stderr, keep);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => kill(child), 60_000);
  try {
    while (true) {
      const { done, value } = await lines.read();
      if (done) {
        throw new Error(`${spec.label} exited before listening: ${log.join("").slice(0, 2000)}`);
      }
      seen += value;
      const match = /^listening (\d+)$/m.exec(seen);
      if (match) {
        const after = seen.slice(match.index + match[0].length).replace(/^\n/, "");
        if (after) keep(after);
        void (async () => {
          try {
            while (true) {
              const { done, value } = await lines.read();
              if (done) break;
              keep(value);
            }
          } catch {
            // The child is gone.
          }
        })();
        return { spec, child, port: Number(match[1]), log };
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}

/** Feeds the text of `stream` to `sink` until it ends. */
export async function pump(
  stream: ReadableStream<Uint8Array>,
  sink: (text: string) => void,
): Promise<void> {
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) sink(text);
  } catch {
    // The child is gone.
  }
}

/** Calls `onLine` with each line of `stream`'s text, in order, awaiting each call. */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => Promise<void> | void,
): Promise<void> {
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let eol: number;
    while ((eol = pending.indexOf("\n")) !== -1) {
      const line = pending.slice(0, eol);
      pending = pending.slice(eol + 1);
      await onLine(line);
    }
  }
}

/** Sends SIGTERM to the child, if it still runs. */
export function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGTERM");
  } catch {
    // Exited already.
  }
}

/** Waits for the child to exit; SIGKILL after `ms`. */
export async function exited(child: Deno.ChildProcess, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), ms)));
  const status = await Promise.race([child.status, late]);
  clearTimeout(timer);
  if (status === "late") {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
    await child.status;
  }
  children.delete(child);
}

/** The server order of a round: rotated by one server per round. */
function rotate<T>(servers: readonly T[], round: number): T[] {
  return servers.map((_, i) => servers[(i + round) % servers.length]!);
}

/**
 * Measures every scenario on every server, `runs` times, the server order rotating per round
 * and half a second of quiet before each measurement; prints a progress line per measurement
 * (`describe` gives its figures). Returns `results[scenario id][server key]`, one sample per
 * round.
 */
export async function measureRounds<
  S extends Server,
  C extends { id: string },
  T extends { problems: string[] },
>(
  servers: S[],
  scenarios: C[],
  runs: number,
  measure: (scenario: C, server: S) => Promise<T>,
  describe: (scenario: C, sample: T) => string,
): Promise<Map<string, Map<string, T[]>>> {
  const results = new Map(scenarios.map((s) => [s.id, new Map<string, T[]>()]));
  for (let round = 0; round < runs; round++) {
    const order = rotate(servers, round);
    console.error(`round ${round + 1}/${runs}: ${order.map((s) => s.spec.key).join(" → ")}`);
    for (const scenario of scenarios) {
      for (const server of order) {
        await delay(500);
        const sample = await measure(scenario, server);
        const rows = results.get(scenario.id)!;
        rows.set(server.spec.key, [...(rows.get(server.spec.key) ?? []), sample]);
        console.error(
          `  ${scenario.id} ${server.spec.key}: ${describe(scenario, sample)}` +
            (sample.problems.length ? ` PROBLEMS: ${sample.problems.join("; ")}` : ""),
        );
      }
    }
  }
  return results;
}

/**
 * Prints the report: the header, a table per scenario (`table` makes it from the scenario's
 * samples per server), and what the servers wrote; then the JSON dump, if asked for.
 */
export async function report<C extends { id: string }, T>(
  intro: string,
  scenarios: C[],
  results: Map<string, Map<string, T[]>>,
  table: (scenario: C, rows: Map<string, T[]>) => string,
  servers: Server[],
  json: string | null,
): Promise<void> {
  console.log(intro);
  for (const scenario of scenarios) console.log(table(scenario, results.get(scenario.id)!));
  for (const log of serverLogs(servers)) console.log(log);
  if (json !== null) await writeJson(json, results);
}

/** Rejects with "no answer within `ms` ms" if `promise` has not settled by then. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- System -----------------------------------------------------------------------------

/** utime + stime of a process from /proc/<pid>/stat, in seconds (all its threads). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // fields 14 and 15 of stat
}

/** VmRSS of a process from /proc/<pid>/status, in MiB. */
export function residentMib(pid: number): Promise<number> {
  return statusMib(pid, "VmRSS");
}

/** A memory field of /proc/<pid>/status (VmRSS, VmHWM…), in MiB. */
export async function statusMib(pid: number, field: string): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s*(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
}

async function clockTicks(): Promise<number> {
  try {
    const { stdout } = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output();
    return Number(decoder.decode(stdout).trim()) || 100;
  } catch {
    return 100;
  }
}

/** The 1-minute load average. */
export async function loadAverage(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
}

/** Resolves after `ms`. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The first line a command prints (stdout, then stderr), or "?" if it cannot run. */
export async function firstLine(command: string, commandArgs: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await new Deno.Command(command, { args: commandArgs }).output();
    return (decoder.decode(stdout) + decoder.decode(stderr)).split("\n")[0]!.trim();
  } catch {
    return "?";
  }
}

// ---- Report -----------------------------------------------------------------------------

/**
 * The report's heading and introduction: `setup` (rounds, durations), the Deno and Node
 * versions and `tools`, the machine, the commit of the lib/ measured (with any local edits)
 * and the start time, then the `notes` lines.
 */
export async function header(
  title: string,
  setup: string,
  tools: string[],
  notes: string[],
): Promise<string> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1];
  // The engine measured is the lib/ next to this file: name its commit and any local edits.
  const root = here("../");
  const commit = await firstLine("git", ["-C", root, "rev-parse", "--short", "HEAD"]);
  let source = `${root} (not a git checkout)`;
  if (/^[0-9a-f]+$/.test(commit)) {
    const { stdout } = await new Deno.Command("git", {
      args: ["-C", root, "status", "--porcelain", "--", "lib", "mod.ts"],
    }).output();
    const dirty = decoder.decode(stdout).split("\n").filter((l) => l.trim()).map((l) => l.slice(3));
    source = `commit ${commit}` + (dirty.length ? `, with local edits to ${dirty.join(", ")}` : "");
  }
  return [
    `## ${title}`,
    "",
    `${setup}; Deno ${Deno.version.deno}, Node ${await firstLine("node", ["--version"])}, ` +
    tools.map((tool) => `${tool}; `).join("") + `${navigator.hardwareConcurrency} ` +
    `vCPUs (${cpu}); engine: ${source}; started ${new Date().toISOString()}.`,
    ...notes,
  ].join("\n");
}

/** The median; NaN for no values. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A figure for a table: whole numbers with separators from 100, else three digits. */
export function format(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toPrecision(3);
}

/** A markdown table's head row and its separator. */
export function tableHead(columns: string[]): string[] {
  return [row(columns), `|${columns.map(() => "---").join("|")}|`];
}

/** A markdown table row. */
export function row(cells: string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** The median of per-round ratios in bold, then each round's: `**0.92×** (0.90, 0.95)`. */
export function ratioCell(ratios: number[]): string {
  return `**${median(ratios).toFixed(2)}×** (${ratios.map((r) => r.toFixed(2)).join(", ")})`;
}

/** Each round's problems, numbered by round, or "none". */
export function problemsCell(samples: { problems: string[] }[]): string {
  const problems = samples.flatMap((s, i) => s.problems.map((p) => `round ${i + 1}: ${p}`));
  return problems.join("; ") || "none";
}

/** The line under a scenario's heading: its command and the load average seen. */
export function commandLine(command: string, loads: number[]): string {
  return `\`${command}\`; load average (1 min) ${Math.min(...loads).toFixed(2)}–` +
    `${Math.max(...loads).toFixed(2)} at the start of the measurements.\n`;
}

/** What the servers wrote after their `listening` line, a fenced block each. */
function serverLogs(servers: Server[]): string[] {
  return servers.filter((server) => server.log.length > 0).map((server) =>
    `\n${server.spec.label} wrote:\n\n\`\`\`\n${server.log.join("").trim()}\n\`\`\``
  );
}

/** Writes `results[scenario][server] = samples` as JSON. */
async function writeJson(
  file: string,
  results: Map<string, Map<string, unknown[]>>,
): Promise<void> {
  const dump = Object.fromEntries([...results].map(([id, rows]) => [id, Object.fromEntries(rows)]));
  await Deno.writeTextFile(file, JSON.stringify(dump, null, 2));
}

// ---- Options ----------------------------------------------------------------------------

/**
 * Parses `--name value` pairs: `--json FILE`, and a positive number for each key of
 * `defaults` (`uploadMib` is `--upload-mib`). Exits with 2 and `usage` on anything else.
 */
export function parseOptions<K extends string>(
  argv: string[],
  defaults: Record<K, number>,
  usage: string,
): Record<K, number> & { json: string | null } {
  const options = { ...defaults, json: null as string | null };
  const keys = new Map(
    (Object.keys(defaults) as K[]).map((key) => [`--${kebab(key)}`, key]),
  );
  const fail = (problem: string): never => {
    console.error(`${problem}\nusage: ${usage}`);
    Deno.exit(2);
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail(`${name} needs a value`);
    if (name === "--json") options.json = value!;
    else {
      const key = keys.get(name!);
      if (key === undefined) return fail(`unknown option ${name}`);
      options[key] = Number(value) as (typeof options)[K];
      if (!(options[key] > 0)) fail(`${name} must be a positive number`);
    }
  }
  return options;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
