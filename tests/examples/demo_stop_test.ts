// Copyright 2026 the wirestream authors. MIT license.
// Stopping the demo while an upload is stalled, on each engine: examples/demo/main.ts as a
// child process, a raw TCP client that sends the head and 3 bytes of a 100,000-byte multipart
// body and then nothing, and SIGTERM as a user's Ctrl-C would be.
import assert from "node:assert/strict";
import { delay, within } from "../_util/async.ts";
import { spawnDemo, waitForOrigin } from "../_util/serve.ts";

const STALLED_UPLOAD = "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
  "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b";

/** What a test of a stalled upload gets: the demo and the client whose upload stalled. */
interface Stalled {
  child: Deno.ChildProcess;
  conn: Deno.TcpConn;
  /** Resolves once the demo's stdout ended. */
  drained: Promise<void>;
  /** Everything the demo printed on stderr, once it exited. */
  stderr: Promise<string>;
}

/**
 * Runs the demo on `engine` with an upload stalled in its handler (the head and 3 bytes of a
 * 100,000-byte body, then nothing), runs `fn`, and cleans up whatever `fn` left.
 */
async function withStalledUpload(engine: string, fn: (s: Stalled) => Promise<void>) {
  const dataDir = await Deno.makeTempDir({ prefix: "wirestream_demo_" });
  const child = spawnDemo(engine, dataDir, [], "piped");
  const stderr = new Response(child.stderr).text();
  let conn: Deno.TcpConn | undefined;
  try {
    const { origin, drained } = await waitForOrigin(child.stdout);
    conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(origin).port) });
    await conn.write(new TextEncoder().encode(STALLED_UPLOAD));
    await delay(300); // the request has reached the handler, which waits for more
    await fn({ child, conn, drained, stderr });
  } finally {
    conn?.close();
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await child.status;
    await stderr.catch(() => {});
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("the demo stops with an upload stalled", async (t) => {
  for (const engine of ["native", "wire"]) {
    await t.step(`on the ${engine} engine, bounded, the upload answered 503`, async () => {
      await withStalledUpload(engine, async ({ child, conn, drained, stderr }) => {
        child.kill("SIGTERM");
        // The stop aborts the upload: the demo answers 503 at once, on both engines.
        const answer = new Uint8Array(1024);
        const n = await within(conn.read(answer), 5000, "the answer to the stalled upload");
        assert.match(new TextDecoder().decode(answer.subarray(0, n ?? 0)), /^HTTP\/1\.1 503 /);
        // Deno.serve's graceful shutdown still waits for the client to close that connection
        // (its body was never read): there the demo's own bound of 10 s ends it.
        const bound = engine === "native" ? 13_000 : 5000;
        const status = await within(child.status, bound, "the demo to stop");
        await drained;
        const printed = await stderr;
        assert.doesNotMatch(printed, /BadResource|Uncaught|Handler failed/);
        if (engine === "wire") assert.equal(status.code, 0, printed);
        else if (status.code !== 0) {
          assert.equal(status.code, 1);
          assert.match(printed, /the stop did not finish within 10000 ms: exiting anyway/);
        }
      });
    });
  }
});

Deno.test("a second signal stops the demo at once, with status 130", async () => {
  // On the native engine a stop waits for the stalled upload's connection (see above), so the
  // first SIGTERM leaves the demo stopping for up to 10 s: the second must end it at once.
  await withStalledUpload("native", async ({ child, drained, stderr }) => {
    child.kill("SIGTERM");
    await delay(500); // the first stop has begun and is still waiting
    let exited = false;
    child.status.then(() => (exited = true), () => {});
    assert.equal(exited, false, "the first signal alone must not have ended the demo yet");
    child.kill("SIGTERM");
    const status = await within(child.status, 3000, "the demo to exit at the second signal");
    assert.equal(status.code, 130);
    await drained;
    assert.doesNotMatch(await stderr, /Uncaught|BadResource/);
  });
});
