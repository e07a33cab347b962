// Copyright 2026 the wirestream authors. MIT license.
// A 1 GiB multipart upload streamed to disk through each engine, with the server's RSS
// sampled: the wire engine (httpServer) and Deno.serve, each parsing the upload with
// examples/upload.ts (readFormData + savePart: four files of 256 MiB, four fields) and each
// draining the raw body to one file (the floor). The server runs in its own process
// (bench/_multipart/upload_server.ts); the client here sends the body over one connection with
// Content-Length, in 64 KiB writes, and reads the answer. Every round runs every
// configuration, the order rotating; the tables give medians.
//
//   deno run -A bench/multipart_upload.ts [--runs N] [--mib M]
//
// RSS is sampled from /proc/<pid>/status every 25 ms (peak VmRSS), and VmHWM is read at the end.

import { bodyStream, CONTENT_TYPE, expected, uploadLayout } from "./_multipart/body.ts";
import { cpuSeconds, loadAverage, median, statusMib } from "./_load.ts";

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(name);
  return at === -1 ? fallback : Deno.args[at + 1] ?? "";
}

const runs = Number(option("--runs", "3"));
const mib = Number(option("--mib", "1024"));
const server = new URL("./_multipart/upload_server.ts", import.meta.url).pathname;
const parts = uploadLayout(mib);
const { bodyBytes, contentBytes } = expected(parts);

interface Sample {
  seconds: number;
  peakRss: number;
  hwm: number;
  cpu: number;
}

async function waitForPort(stdout: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (true) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the server exited: ${text}`);
    text += value;
    const match = /listening on (\d+)/.exec(text);
    if (match) {
      reader.releaseLock();
      return Number(match[1]);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Sends the upload and returns the answer's status and body. */
async function upload(port: number): Promise<[number, string]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = `POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${CONTENT_TYPE}\r\n` +
      `Content-Length: ${bodyBytes}\r\nConnection: close\r\n\r\n`;
    await writeAll(conn, new TextEncoder().encode(head));
    const answer = new Response(conn.readable).text(); // read while writing: no deadlock
    for await (const chunk of bodyStream(parts)) await writeAll(conn, chunk);
    const text = await answer;
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    return [status, text.slice(text.indexOf("\r\n\r\n") + 4)];
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by reading to the end.
    }
  }
}

async function measure(engine: string, mode: string): Promise<Sample> {
  const dir = await Deno.makeTempDir({ prefix: "wirestream-upload-bench-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", server, engine, mode, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const port = await waitForPort(child.stdout);
    let peakRss = await statusMib(child.pid, "VmRSS");
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, await statusMib(child.pid, "VmRSS"));
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const cpuBefore = await cpuSeconds(child.pid);
    const started = performance.now();
    const [code, body] = await upload(port);
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    if (code !== 200) throw new Error(`${engine} ${mode}: ${code} ${body}`);
    const result = JSON.parse(body);
    let saved = 0;
    for await (const entry of Deno.readDir(dir)) {
      saved += (await Deno.stat(`${dir}/${entry.name}`)).size;
    }
    const want = mode === "parse" ? contentBytes - 4 * 1024 : bodyBytes; // fields are not files
    if (saved !== want) throw new Error(`${engine} ${mode}: saved ${saved} bytes, not ${want}`);
    if (mode === "parse" && result.files.length !== 4) throw new Error("not four files");
    return {
      seconds,
      peakRss,
      hwm: await statusMib(child.pid, "VmHWM"),
      cpu: (await cpuSeconds(child.pid)) - cpuBefore,
    };
  } finally {
    child.kill();
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

const configs = [["wire", "drain"], ["wire", "parse"], ["deno", "drain"], ["deno", "parse"]];
const samples = new Map<string, Sample[]>(configs.map(([e, m]) => [`${e} ${m}`, []]));
const loads: number[] = [];
loads.push(await loadAverage());
for (let round = 0; round < runs; round++) {
  for (let i = 0; i < configs.length; i++) {
    const [engine, mode] = configs[(i + round) % configs.length]!;
    const sample = await measure(engine!, mode!);
    samples.get(`${engine} ${mode}`)!.push(sample);
    console.error(
      `round ${round + 1}: ${engine} ${mode}: ${sample.seconds.toFixed(2)} s, ` +
        `peak RSS ${sample.peakRss.toFixed(0)} MiB, VmHWM ${sample.hwm.toFixed(0)} MiB`,
    );
  }
  loads.push(await loadAverage());
}

const commit = new TextDecoder().decode(
  (await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"], stdout: "piped" })
    .output()).stdout,
).trim();
console.log(
  `\n${
    (bodyBytes / 1_048_576).toFixed(0)
  } MiB upload, ${runs} rounds, Deno ${Deno.version.deno}, ` +
    `commit ${commit}, ${new Date().toISOString().slice(0, 10)}, load average ` +
    `${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}\n`,
);
console.log(
  "| engine | handler | MB/s | server CPU | peak RSS (sampled) | VmHWM | over the drain's |",
);
console.log("|---|---|---|---|---|---|---|");
for (const [engine, mode] of configs) {
  const list = samples.get(`${engine} ${mode}`)!;
  const floor = samples.get(`${engine} drain`)!;
  const excess = median(list.map((s, i) => s.hwm - floor[i]!.hwm));
  console.log(
    `| ${engine === "wire" ? "httpServer" : "Deno.serve"} | ${
      mode === "parse" ? "parse + savePart" : "drain to file"
    } | ${(bodyBytes / median(list.map((s) => s.seconds)) / 1e6).toFixed(0)} | ${
      median(list.map((s) => s.cpu)).toFixed(2)
    } s | ${median(list.map((s) => s.peakRss)).toFixed(0)} MiB | ${
      median(list.map((s) => s.hwm)).toFixed(0)
    } MiB | ${mode === "drain" ? "–" : `${excess.toFixed(0)} MiB`} |`,
  );
}
