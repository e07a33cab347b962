// Copyright 2026 the wirestream authors. MIT license.
// examples/deploy.ts under `deno serve` (what Deno Deploy runs): its page and health check with
// fetch, its WebSocket echo with npm:ws and Deno's own WebSocket.
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { denoClient, wsClient } from "../_util/clients.ts";
import { randomBytes, seeded } from "../_util/random.ts";
import { denoServe } from "../_util/serve.ts";

Deno.test("examples/deploy.ts under deno serve", async (t) => {
  const server = await denoServe("examples/deploy.ts", ["--allow-net=127.0.0.1"]);
  try {
    const port = server.port;
    const base = `http://127.0.0.1:${port}`;

    await t.step("the page and the health check", async () => {
      const page = await fetch(`${base}/`);
      assert.equal(page.status, 200);
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(await page.text(), /new WebSocket/);
      assert.deepEqual(await (await fetch(`${base}/health`)).json(), { ok: true });
    });

    await t.step("npm:ws: text and binary come back as sent; close 1000", async () => {
      const ws = wsClient(`ws://127.0.0.1:${port}/ws`);
      try {
        assert.equal(await within(ws.opened, 5000, "ws to open"), true);
        ws.ws.send("hello deploy");
        const text = await ws.messages.next();
        assert.deepEqual([text.data.toString(), text.isBinary], ["hello deploy", false]);
        const bytes = randomBytes(seeded(7), 70_000);
        ws.ws.send(bytes);
        const binary = await ws.messages.next();
        assert.equal(binary.isBinary, true);
        assert.deepEqual(new Uint8Array(binary.data), bytes);
        ws.ws.close(1000, "bye");
        assert.deepEqual(await within(ws.closed, 5000, "ws close"), { code: 1000, reason: "bye" });
      } finally {
        ws.ws.terminate();
      }
    });

    await t.step("Deno's WebSocket: a message over 1 MiB is refused with 1009", async () => {
      const ws = denoClient(`ws://127.0.0.1:${port}/ws`);
      try {
        assert.equal(await within(ws.opened, 5000, "open"), true);
        ws.ws.send("small");
        assert.equal(await ws.messages.next(), "small");
        ws.ws.send(new Uint8Array((1 << 20) + 1));
        assert.equal((await within(ws.closed, 5000, "the close")).code, 1009);
      } finally {
        ws.ws.close();
      }
    });

    await t.step("a Host that is not an authority is refused, not routed (400)", async () => {
      // A review: Deno.serve builds request.url from Host, so `GET /x` with this Host was
      // routed as /health (behind a proxy that forwards Host, a path-based rule is bypassed).
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(
          new TextEncoder().encode(
            "GET /x HTTP/1.1\r\nHost: 127.0.0.1/health?\r\nConnection: close\r\n\r\n",
          ),
        );
        const answer = new TextDecoder().decode(
          await within(new Response(conn.readable).bytes(), 5000, "the answer"),
        );
        assert.match(answer, /^HTTP\/1\.1 400 /);
        assert.match(answer, /is not a valid authority/);
      } finally {
        try {
          conn.close();
        } catch {
          // closed with its readable
        }
      }
    });

    await t.step("a cross-site page is refused with 403", async () => {
      const ws = wsClient(`ws://127.0.0.1:${port}/ws`, [], { origin: "https://evil.example" });
      try {
        assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
        assert.match(String(ws.errors[0]), /Unexpected server response: 403/);
      } finally {
        ws.ws.terminate();
      }
    });
  } finally {
    await server.stop();
  }
});
