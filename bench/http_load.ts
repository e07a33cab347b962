// Copyright 2026 the wirestream authors. MIT license.
// Load benchmark of the wire engine (httpServer) against Deno.serve and node:http, each serving
// the same routes from bench/_http_servers/ in a child process bound to 127.0.0.1. Every round
// measures every scenario on all three servers, the server order rotating per round, and the
// tables give each server's median and the median of the per-round ratios wire / other (above
// 1 the wire engine is faster). The machine is shared and noisy: read the ratios, not the
// absolute figures.
//
//   deno run -A bench/http_load.ts [--runs N] [--duration S] [--upload-mib M] [--upload-limit S] [--json FILE]
//
// 1. hello world, keep-alive:  wrk -t1 -c64 -dS http://127.0.0.1:PORT/
// 2. the same, 16 pipelined:   wrk -t1 -c64 -dS -s bench/_pipeline.lua http://127.0.0.1:PORT/ -- 16
//    (wrk counts responses, so requests/s is responses/s, not batches/s)
// 3. 1 MiB echo:               wrk -t1 -c8 -dS -s <POST 1 MiB script> http://127.0.0.1:PORT/echo
// 4. chunked upload:           a raw Deno.connect client POSTs M MiB to /drain in 1 KiB and in
//    64 KiB chunks (Transfer-Encoding: chunked) and checks the byte count the server answers;
//    an upload still running after --upload-limit seconds is cut and rated over what was sent.
//
// Needs wrk and node on PATH. Nothing is left running: every child is killed in `finally`.

import {
  children,
  commandLine,
  cpuSeconds,
  firstLine,
  format,
  header,
  loadAverage,
  measureRounds,
  median,
  parseOptions,
  problemsCell,
  ratioCell,
  report,
  residentMib,
  row,
  type Server as ChildServer,
  startServer,
  stopAll,
  stopOnInterrupt,
  tableHead,
  withTimeout,
} from "./_load.ts";

const args = parseOptions(
  Deno.args,
  { runs: 3, duration: 10, uploadMib: 256, uploadLimit: 60 },
  "deno run -A bench/http_load.ts [--runs N] [--duration S] " +
    "[--upload-mib M] [--upload-limit S] [--json FILE]",
);
const RUNS = args.runs;
const DURATION = args.duration;
const UPLOAD_BYTES = args.uploadMib * 1_048_576;
const UPLOAD_LIMIT_MS = args.uploadLimit * 1000;
const ECHO_CONNECTIONS = 8;
const MIB = 1_048_576;
// The issue's Bun figures for chunked uploads, in MB/s (1 MB = 10^6 bytes).
const BUN_UPLOAD = new Map([[1024, 700], [65_536, 1750]]);

const here = (path: string) => new URL(path, import.meta.url).pathname;
const PIPELINE_LUA = here("./_pipeline.lua");

interface ServerSpec {
  key: "wire" | "deno" | "node";
  label: string;
  command: string;
  args: string[];
}

const SPECS: ServerSpec[] = [
  {
    key: "wire",
    label: "wire (httpServer)",
    command: Deno.execPath(),
    args: ["run", "--quiet", "--allow-net=127.0.0.1", here("./_http_servers/wire.ts"), "0"],
  },
  {
    key: "deno",
    label: "Deno.serve",
    command: Deno.execPath(),
    args: ["run", "--quiet", "--allow-net=127.0.0.1", here("./_http_servers/deno_serve.ts"), "0"],
  },
  {
    key: "node",
    label: "node:http",
    command: "node",
    args: [here("./_http_servers/node_http.mjs"), "0"],
  },
];

type Server = ChildServer<ServerSpec>;

/** One measurement: the figure the table shows, plus what was checked on the way. */
interface Sample {
  value: number;
  /** Server CPU (user + system) over the measurement, in seconds. */
  cpu: number;
  /** The unit the CPU column divides by: requests or bytes. */
  units: number;
  /** The server's resident memory right after the measurement, in MiB. */
  rss: number;
  load: number;
  problems: string[];
  note?: string;
}

interface Scenario {
  id: string;
  title: string;
  unit: string;
  command: string;
  /** How the CPU column reads: per request (µs) or per byte (ns/B = s/GB). */
  cpuPer: "request" | "byte";
  run(server: Server): Promise<Sample>;
  /** wire ≥ `atLeast` × another server, or ≥ `atLeast` MB/s: the issue's Bun figure. */
  targets: { versus: ServerSpec["key"] | "bun"; atLeast: number }[];
}

/** 1 MiB of chunked-coded payload per chunk size, built once. */
const slabs = new Map<number, Uint8Array>();
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const stopInterrupt = stopOnInterrupt();

// Named before the servers start: the engine's files may change while the run goes on.
const intro = await header(
  "HTTP load: wire engine vs Deno.serve vs node:http",
  `${RUNS} rounds, server order rotating per round; ${DURATION} s per wrk run`,
  [(await firstLine("wrk", ["--version"])).split(" [")[0]!],
  [
    "Medians over the rounds; a ratio is wire / that server (above 1: wire is faster), the",
    "median of the per-round ratios. Server CPU is utime + stime of the server process from",
    "/proc/<pid>/stat (all threads) over the run, divided by the requests (µs) or bytes",
    "(ns/B, the same as s/GB). Server RSS is VmRSS right after each measurement, the largest",
    "over the rounds: the servers run for the whole benchmark, so it also shows growth.",
    "1 MB = 10^6 bytes.",
  ],
);
const servers: Server[] = [];
let echoScript = "";
try {
  echoScript = await Deno.makeTempFile({ prefix: "http_load_echo_", suffix: ".lua" });
  await Deno.writeTextFile(
    echoScript,
    `wrk.method = "POST"\nwrk.body = string.rep("x", ${MIB})\n` +
      `wrk.headers["Content-Type"] = "application/octet-stream"\n`,
  );
  for (const spec of SPECS) servers.push(await startServer(spec));
  console.error(`servers: ${servers.map((s) => `${s.spec.label} :${s.port}`).join(", ")}`);
  for (const server of servers) await checkServer(server);

  const scenarios: Scenario[] = [
    {
      id: "1",
      title: "hello world, keep-alive, 64 connections",
      unit: "requests/s",
      command: `wrk -t1 -c64 -d${DURATION}s http://127.0.0.1:PORT/`,
      cpuPer: "request",
      run: (server) => wrkRun(["-t1", "-c64", `-d${DURATION}s`, url(server, "/")], server),
      targets: [{ versus: "deno", atLeast: 0.8 }, { versus: "node", atLeast: 1.5 }],
    },
    {
      id: "2",
      title: "hello world, 64 connections, 16 pipelined requests",
      unit: "requests/s",
      command: `wrk -t1 -c64 -d${DURATION}s -s bench/_pipeline.lua http://127.0.0.1:PORT/ -- 16`,
      cpuPer: "request",
      run: (server) =>
        wrkRun(
          ["-t1", "-c64", `-d${DURATION}s`, "-s", PIPELINE_LUA, url(server, "/"), "--", "16"],
          server,
        ),
      targets: [{ versus: "deno", atLeast: 2 }],
    },
    {
      id: "3",
      title: `1 MiB POST echo, keep-alive, ${ECHO_CONNECTIONS} connections`,
      unit: "MB/s each way",
      command: `wrk -t1 -c${ECHO_CONNECTIONS} -d${DURATION}s -s <POST 1 MiB> ` +
        "http://127.0.0.1:PORT/echo",
      cpuPer: "byte",
      run: async (server) => {
        const sample = await wrkRun(
          [
            "-t1",
            `-c${ECHO_CONNECTIONS}`,
            `-d${DURATION}s`,
            "-s",
            echoScript,
            url(server, "/echo"),
          ],
          server,
        );
        // A response shorter than the request would show as fewer bytes read than 1 MiB each.
        const perResponse = sample.bytesRead / sample.requests;
        if (!(perResponse >= MIB * 0.99)) {
          sample.problems.push(`${perResponse.toFixed(0)} bytes read per response`);
        }
        return { ...sample, value: (sample.value * MIB) / 1e6, units: sample.requests * MIB };
      },
      targets: [],
    },
    ...[1024, 65_536].map((chunk): Scenario => ({
      id: `4${chunk === 1024 ? "a" : "b"}`,
      title: `${UPLOAD_BYTES / MIB} MiB chunked upload in ${chunk / 1024} KiB chunks to /drain`,
      unit: "MB/s",
      command: `Deno.connect client: POST /drain, Transfer-Encoding: chunked, ` +
        `${UPLOAD_BYTES / MIB} MiB in ${chunk} B chunks, cut after ${args.uploadLimit} s`,
      cpuPer: "byte",
      run: (server) => uploadRun(server, chunk),
      targets: [{ versus: "bun", atLeast: BUN_UPLOAD.get(chunk)! }],
    })),
  ];

  // Warm-up: JIT and buffers, not measured.
  console.error("warming up");
  for (const server of servers) {
    await wrk(["-t1", "-c64", "-d2s", url(server, "/")]);
    await wrk(["-t1", "-c64", "-d2s", "-s", PIPELINE_LUA, url(server, "/"), "--", "16"]);
    await wrk(["-t1", "-c8", "-d2s", "-s", echoScript, url(server, "/echo")]);
    for (const chunk of [1024, 65_536]) await upload(server.port, chunk, 16 * MIB, 10_000);
  }

  const results = await measureRounds(
    servers,
    scenarios,
    RUNS,
    (scenario, server) => scenario.run(server),
    (scenario, sample) =>
      `${format(sample.value)} ${scenario.unit}` + (sample.note ? ` (${sample.note})` : ""),
  );
  await report(intro, scenarios, results, table, servers, args.json);
} finally {
  stopInterrupt();
  await stopAll();
  if (echoScript !== "") await Deno.remove(echoScript).catch(() => {});
}

// ---- Servers ----------------------------------------------------------------------------

function url(server: Server, path: string): string {
  return `http://127.0.0.1:${server.port}${path}`;
}

/** Checks the three routes and pipelining once, before any load. */
async function checkServer(server: Server): Promise<void> {
  const label = server.spec.label;
  const hello = await fetch(url(server, "/"));
  const text = await hello.text();
  if (hello.status !== 200 || text !== "Hello, World!") {
    throw new Error(`${label}: GET / answered ${hello.status} ${JSON.stringify(text)}`);
  }
  const body = crypto.getRandomValues(new Uint8Array(65_536));
  const big = new Uint8Array(MIB);
  for (let at = 0; at < MIB; at += body.length) big.set(body, at);
  const echo = await fetch(url(server, "/echo"), { method: "POST", body: big });
  const back = new Uint8Array(await echo.arrayBuffer());
  if (echo.status !== 200 || back.length !== MIB || back.some((b, i) => b !== big[i])) {
    throw new Error(`${label}: POST /echo answered ${echo.status} with ${back.length} bytes`);
  }
  const drained = await upload(server.port, 1024, MIB, 10_000);
  if (drained.problems.length > 0) {
    throw new Error(`${label}: POST /drain: ${drained.problems.join("; ")}`);
  }
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`;
    await writeAll(
      conn,
      encoder.encode(
        request.repeat(15) + request.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
      ),
    );
    const reply = decoder.decode(await readToEnd(conn, 10_000));
    const answers = reply.split("Hello, World!").length - 1;
    const heads = reply.split("HTTP/1.1 200 OK\r\n").length - 1;
    if (answers !== 16 || heads !== 16) {
      throw new Error(`${label}: 16 pipelined GETs got ${heads} heads and ${answers} bodies`);
    }
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
  }
}

// ---- Measurements -----------------------------------------------------------------------

interface WrkSample extends Sample {
  requests: number;
  bytesRead: number;
}

/** Runs wrk against the server, reading the server's CPU time around it. */
async function wrkRun(wrkArgs: string[], server: Server): Promise<WrkSample> {
  const load = await loadAverage();
  const before = await cpuSeconds(server.child.pid);
  const out = await wrk(wrkArgs);
  const cpu = (await cpuSeconds(server.child.pid)) - before;
  const rss = await residentMib(server.child.pid);
  const problems: string[] = [];
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const read = /requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read/.exec(out);
  const scale: Record<string, number> = { B: 1, KB: 1024, MB: MIB, GB: MIB * 1024, TB: MIB * MIB };
  const bytesRead = read ? Number(read[1]) * scale[read[2]!]! : NaN;
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (errors) {
    problems.push(`socket errors ${errors.slice(1).join("/")} (connect/read/write/timeout)`);
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) problems.push(`${non2xx[1]} non-2xx responses`);
  if (!(requests > 0) || !(rate > 0)) problems.push(`wrk output not understood: ${out}`);
  return { value: rate, cpu, units: requests, rss, load, problems, requests, bytesRead };
}

async function wrk(wrkArgs: string[]): Promise<string> {
  const child = new Deno.Command("wrk", { args: wrkArgs, stdout: "piped", stderr: "piped" })
    .spawn();
  children.add(child);
  try {
    const { stdout, stderr, success } = await child.output();
    const out = decoder.decode(stdout);
    if (!success) throw new Error(`wrk ${wrkArgs.join(" ")} failed: ${decoder.decode(stderr)}`);
    return out;
  } finally {
    children.delete(child);
  }
}

async function uploadRun(server: Server, chunk: number): Promise<Sample> {
  const load = await loadAverage();
  const before = await cpuSeconds(server.child.pid);
  const result = await upload(server.port, chunk, UPLOAD_BYTES, UPLOAD_LIMIT_MS);
  const cpu = (await cpuSeconds(server.child.pid)) - before;
  return {
    value: result.sent / result.seconds / 1e6,
    cpu,
    units: result.sent,
    rss: await residentMib(server.child.pid),
    load,
    problems: result.problems,
    ...(result.cut ? { note: `cut at ${args.uploadLimit} s after ${result.sent / MIB} MiB` } : {}),
  };
}

interface UploadResult {
  /** Payload bytes written (all of them unless cut). */
  sent: number;
  seconds: number;
  cut: boolean;
  problems: string[];
}

/** 1 MiB of payload as chunks of `size` bytes in chunked coding, built once per size. */
function chunkedSlab(size: number): Uint8Array {
  let slab = slabs.get(size);
  if (slab === undefined) {
    const head = encoder.encode(`${size.toString(16)}\r\n`);
    const count = MIB / size;
    slab = new Uint8Array(count * (head.length + size + 2)).fill(0x61);
    for (let i = 0, at = 0; i < count; i++) {
      slab.set(head, at);
      at += head.length + size;
      slab[at++] = 13;
      slab[at++] = 10;
    }
    slabs.set(size, slab);
  }
  return slab;
}

/**
 * POSTs `total` bytes to /drain in chunks of `chunk` bytes over a raw connection and checks
 * that the server counted them all; stops writing after `limitMs`.
 */
async function upload(
  port: number,
  chunk: number,
  total: number,
  limitMs: number,
): Promise<UploadResult> {
  const slab = chunkedSlab(chunk);
  const problems: string[] = [];
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const reply = readToEnd(conn, Infinity).catch((error) => {
    problems.push(`reading the response failed: ${error}`);
    return new Uint8Array(0);
  });
  let sent = 0;
  let cut = false;
  const start = performance.now();
  let end = start;
  try {
    await writeAll(
      conn,
      encoder.encode(
        `POST /drain HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\n` +
          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
      ),
    );
    while (sent < total) {
      if (performance.now() - start > limitMs) {
        cut = true;
        break;
      }
      await writeAll(conn, slab);
      sent += MIB;
    }
    if (!cut) {
      await writeAll(conn, encoder.encode("0\r\n\r\n"));
      const text = decoder.decode(await withTimeout(reply, Math.max(10_000, limitMs)));
      end = performance.now();
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      const split = text.indexOf("\r\n\r\n");
      let body = split === -1 ? "" : text.slice(split + 4);
      if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, split))) body = unchunk(body);
      if (status !== "200" || body !== String(total)) {
        problems.push(
          `answered ${status ?? "nothing"} ${JSON.stringify(body.slice(0, 64))}, want 200 ${total}`,
        );
      }
    } else {
      end = performance.now();
    }
  } catch (error) {
    end = performance.now();
    const text = decoder.decode(await withTimeout(reply, 2000).catch(() => new Uint8Array(0)));
    problems.push(
      `failed after ${sent} bytes: ${error}; server said ${JSON.stringify(text.slice(0, 200))}`,
    );
  } finally {
    try {
      conn.close();
    } catch {
      // Closed already.
    }
  }
  await reply;
  return { sent, seconds: (end - start) / 1000, cut, problems };
}

function unchunk(text: string): string {
  let out = "";
  let at = 0;
  while (true) {
    const eol = text.indexOf("\r\n", at);
    if (eol === -1) return out;
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Reads until the peer closes (or the connection is closed here), at most `ms`. */
async function readToEnd(conn: Deno.Conn, ms: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const buffer = new Uint8Array(65_536);
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        break; // closed on our side
      }
      throw error;
    }
    if (n === null) break;
    parts.push(buffer.slice(0, n));
    size += n;
  }
  const out = new Uint8Array(size);
  for (let i = 0, at = 0; i < parts.length; at += parts[i]!.length, i++) out.set(parts[i]!, at);
  return out;
}

// ---- Report -----------------------------------------------------------------------------

function table(scenario: Scenario, rows: Map<string, Sample[]>): string {
  const wire = rows.get("wire") ?? [];
  const loads = [...rows.values()].flat().map((s) => s.load);
  const cpuHead = scenario.cpuPer === "request" ? "server CPU µs/request" : "server CPU ns/B";
  const lines = [
    `\n### ${scenario.id}. ${scenario.title}\n`,
    commandLine(scenario.command, loads),
    ...tableHead([
      "server",
      `median ${scenario.unit}`,
      "per round",
      "wire / this (per round)",
      cpuHead,
      "server RSS MiB (max)",
      "problems",
    ]),
  ];
  const ratios = new Map<string, number>();
  for (const spec of SPECS) {
    const samples = rows.get(spec.key) ?? [];
    const values = samples.map((s) => s.value);
    const perRound = samples.map((s) => format(s.value) + (s.note ? "*" : "")).join(", ");
    let ratio = "–";
    if (spec.key !== "wire" && samples.length === wire.length) {
      const each = samples.map((s, i) => wire[i]!.value / s.value);
      ratios.set(spec.key, median(each));
      ratio = ratioCell(each);
    }
    const cpu = median(
      samples.map((s) => (s.cpu / s.units) * (scenario.cpuPer === "request" ? 1e6 : 1e9)),
    );
    lines.push(row([
      spec.label,
      format(median(values)),
      perRound,
      ratio,
      cpu.toPrecision(3),
      Math.max(...samples.map((s) => s.rss)).toFixed(0),
      problemsCell(samples),
    ]));
  }
  const notes = [...rows.values()].flat().filter((s) => s.note).map((s) => s.note);
  if (notes.length > 0) lines.push(`\n\\* ${[...new Set(notes)].join("; ")}.`);
  for (const target of scenario.targets) {
    if (target.versus === "bun") {
      const bun = target.atLeast;
      const got = median(wire.map((s) => s.value));
      lines.push(
        `\nTarget: wire ≥ Bun's ${bun} MB/s (the issue's figure, another machine): ` +
          `${format(got)} MB/s, **${got >= bun ? "met" : "missed"}** (${(got / bun).toFixed(2)}×).`,
      );
    } else {
      const got = ratios.get(target.versus) ?? NaN;
      const label = SPECS.find((s) => s.key === target.versus)!.label;
      lines.push(
        `\nTarget: wire ≥ ${target.atLeast}× ${label}: ${got.toFixed(2)}×, ` +
          `**${got >= target.atLeast ? "met" : "missed"}**.`,
      );
    }
  }
  return lines.join("\n");
}
