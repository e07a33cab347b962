// Copyright 2026 the wirestream authors. MIT license.
// Programs under test as child processes (`deno serve`, the examples): where they listen, and
// what they printed.

import { within } from "./async.ts";

/**
 * Reads `deno serve`'s stderr to its end: `port` resolves once it announces the address (or
 * rejects when it ends first), `text` with all it printed.
 */
export function watchServe(
  stderr: ReadableStream<Uint8Array>,
): { port: Promise<number>; text: Promise<string> } {
  let found!: (port: number) => void;
  let failed!: (error: Error) => void;
  const port = new Promise<number>((resolve, reject) => {
    found = resolve;
    failed = reject;
  });
  const text = (async () => {
    let text = "";
    for await (const chunk of stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const match = /Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) found(Number(match[1]));
    }
    failed(new Error(`deno serve exited before listening: ${JSON.stringify(text)}`));
    return text;
  })();
  return { port, text };
}

/**
 * Reads a child's stdout until it prints `listening on http://127.0.0.1:<port>/` (as the
 * examples do), within 30 s; then reads the rest in the background so the child never blocks.
 *
 * @returns The origin, and `drained`, which resolves once stdout ended.
 */
export async function waitForOrigin(
  stdout: ReadableStream<Uint8Array>,
): Promise<{ origin: string; drained: Promise<void> }> {
  const lines = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const origin = await within(
    (async () => {
      while (true) {
        const { done, value } = await lines.read();
        if (done) throw new Error(`The program exited before listening: ${JSON.stringify(text)}`);
        text += value;
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(text);
        if (match) return match[1]!;
      }
    })(),
    30_000,
    "the program to listen",
  );
  const drained = (async () => {
    while (!(await lines.read()).done);
  })().catch(() => {});
  return { origin, drained };
}

/**
 * Runs `deno serve` on `file` (relative to the repository) on 127.0.0.1 with a free port, as
 * Deno Deploy would run it, with `permissions` (e.g. `--allow-net=127.0.0.1`).
 *
 * @returns The port once it listens, and `stop()`, which sends SIGTERM and checks that the
 * process ended by it (or cleanly), with what it printed in the message otherwise.
 */
export async function denoServe(
  file: string,
  permissions: string[] = [],
): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["serve", ...permissions, "--host", "127.0.0.1", "--port", "0", file],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output = watchServe(child.stderr);
  const stop = async () => {
    child.kill("SIGTERM");
    const status = await child.status;
    const stderr = await output.text;
    if (!(status.signal === "SIGTERM" || status.success)) {
      throw new Error(`deno serve ended with ${JSON.stringify(status)}: ${stderr}`);
    }
  };
  try {
    return { port: await within(output.port, 20_000, "deno serve to listen"), stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/**
 * Spawns the demo (examples/demo/main.ts) on `engine` on 127.0.0.1 with a free port and its
 * data in `dataDir`, with the permissions of the start task (writing only to `dataDir`) and
 * `args` appended; stdout is piped (see {@linkcode waitForOrigin}), stderr as `stderr` says.
 */
export function spawnDemo(
  engine: string,
  dataDir: string,
  args: string[] = [],
  stderr: "inherit" | "piped" = "inherit",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      `--allow-write=${dataDir}`,
      "examples/demo/main.ts",
      ...["--engine", engine, "--port", "0", "--data", dataDir],
      ...args,
    ],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr,
  }).spawn();
}

/**
 * Starts the demo as {@linkcode spawnDemo} does, with its upload limits; resolves once it
 * listens.
 *
 * @returns The origin, and `stop()`, which stops it as a user would (SIGTERM: a graceful
 * stop) and fails if that takes over 10 s or it does not exit cleanly.
 */
export async function startDemo(
  engine: string,
  dataDir: string,
  limits: { maxUpload: number; uploadQuota: number; maxFiles?: number; uploadIdle?: number },
): Promise<{ origin: string; stop(): Promise<void> }> {
  const child = spawnDemo(engine, dataDir, [
    ...["--max-upload", String(limits.maxUpload)],
    ...["--upload-quota", String(limits.uploadQuota)],
    ...(limits.maxFiles === undefined ? [] : ["--max-files", String(limits.maxFiles)]),
    ...(limits.uploadIdle === undefined ? [] : ["--upload-idle", String(limits.uploadIdle)]),
  ]);
  const { origin, drained } = await waitForOrigin(child.stdout);
  return {
    origin,
    async stop() {
      child.kill("SIGTERM");
      const status = await within(child.status, 10_000, "the demo to stop");
      await drained;
      if (!status.success) throw new Error(`The demo exited with ${JSON.stringify(status)}`);
    },
  };
}
