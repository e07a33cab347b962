// Copyright 2026 the wirestream authors. MIT license.
// Runs examples/echo.ts as its own process, on each engine, and talks to it with Deno's
// WebSocket.
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { waitForOrigin } from "../_util/serve.ts";

const ROOT = new URL("../../", import.meta.url);
const MiB = 1 << 20;

interface Closed {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** Opens Deno's WebSocket (binary as ArrayBuffer) and queues what it receives. */
async function open(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const messages: (string | ArrayBuffer)[] = [];
  const waiters: ((m: string | ArrayBuffer) => void)[] = [];
  ws.addEventListener("message", (e) => {
    const waiter = waiters.shift();
    if (waiter) waiter(e.data);
    else messages.push(e.data);
  });
  const closed = new Promise<Closed>((resolve) =>
    ws.addEventListener(
      "close",
      (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }),
    )
  );
  await within(
    new Promise((resolve, reject) => {
      ws.addEventListener("open", resolve, { once: true });
      ws.addEventListener("error", () => reject(new Error("WebSocket error")), { once: true });
    }),
    5000,
    "the WebSocket to open",
  );
  const next = (what: string) =>
    within(
      messages.length > 0
        ? Promise.resolve(messages.shift()!)
        : new Promise<string | ArrayBuffer>((resolve) => waiters.push(resolve)),
      10_000,
      what,
    );
  return { ws, next, closed };
}

for (const engine of ["wire", "deno"]) {
  Deno.test(`examples/echo.ts --engine ${engine}`, (t) => runEcho(t, engine));
}

Deno.test("examples/echo.ts: a bad flag prints why and exits 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--port"], /^Invalid --port: "" is not a port number$/m], // no value: not port 0
    [["--port", "0x1F90"], /^Invalid --port/m],
    [["--port", "65536"], /^Invalid --port/m],
    [["--engine", "bun"], /^Invalid --engine: "bun" is not wire or native$/m],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", "examples/echo.ts", ...args],
        cwd: ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 2);
      assert.match(new TextDecoder().decode(stderr), message);
    });
  }
});

/** Runs the example on `engine` and talks to it. */
async function runEcho(t: Deno.TestContext, engine: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "examples/echo.ts", "--port", "0", "--engine", engine],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let stdoutDrained: Promise<void> | undefined;
  try {
    const { origin, drained } = await waitForOrigin(child.stdout);
    stdoutDrained = drained;
    const port = Number(new URL(origin).port);
    const url = `ws://127.0.0.1:${port}/`;

    await t.step("echoes text as text and binary as binary", async () => {
      const client = await open(url);
      try {
        client.ws.send("hello, echo ✓");
        assert.equal(await client.next("the text echo"), "hello, echo ✓");
        client.ws.send("");
        assert.equal(await client.next("the empty text echo"), "");
        client.ws.send(Uint8Array.of(0, 1, 2, 255));
        const binary = await client.next("the binary echo");
        assert.ok(binary instanceof ArrayBuffer, "binary came back as text");
        assert.deepEqual([...new Uint8Array(binary)], [0, 1, 2, 255]);
        client.ws.send(new Uint8Array(0));
        const empty = await client.next("the empty binary echo");
        assert.ok(empty instanceof ArrayBuffer && empty.byteLength === 0);
      } finally {
        client.ws.close(1000);
      }
      const closed = await within(client.closed, 5000, "the close");
      assert.deepEqual([closed.code, closed.wasClean], [1000, true]);
    });

    await t.step("echoes any path, and several clients at once", async () => {
      const clients = await Promise.all([open(url + "a/b?c=d"), open(url), open(url)]);
      try {
        clients.forEach((c, i) => c.ws.send(`client ${i}`));
        for (const [i, c] of clients.entries()) {
          assert.equal(await c.next(`client ${i}'s echo`), `client ${i}`);
        }
      } finally {
        for (const c of clients) c.ws.close(1000);
      }
      for (const c of clients) await within(c.closed, 5000, "a close");
    });

    await t.step("echoes a message of 16 MiB (its maxFrameSize) intact", async () => {
      const client = await open(url);
      try {
        const bytes = new Uint8Array(16 * MiB);
        for (let i = 0; i < bytes.length; i += 4099) bytes[i] = i & 0xff;
        client.ws.send(bytes);
        const back = await client.next("the 16 MiB echo");
        assert.ok(back instanceof ArrayBuffer && back.byteLength === bytes.length);
        const view = new Uint8Array(back);
        for (let i = 0; i < bytes.length; i++) {
          if (view[i] !== bytes[i]) assert.fail(`byte ${i} differs`);
        }
      } finally {
        client.ws.close(1000);
      }
      await within(client.closed, 5000, "the close");
    });

    await t.step("answers a frame over its maxFrameSize with close 1009", async () => {
      const client = await open(url);
      client.ws.send(new Uint8Array(16 * MiB + 1)); // Deno's client sends it as one frame
      const closed = await within(client.closed, 20_000, "the close");
      assert.equal(closed.code, 1009);
    });

    await t.step("answers a plain HTTP request with 400", async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(response.status, 400);
      await response.body?.cancel();
    });
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await (stdoutDrained ?? child.stdout.cancel().catch(() => {}));
    const errors = await stderr;
    assert.equal(errors.replace(/^(Download|Check) .*\n/gm, ""), "", `stderr: ${errors}`);
  }
}
