// Copyright 2026 the wirestream authors. MIT license.
// httpServer over TLS (Deno.listenTls) with a certificate for localhost signed by a test CA,
// spoken to by fetch, curl, npm:ws and our own client over wss:. The keys are test fixtures
// only (made with openssl; the CA's key was thrown away).
import assert from "node:assert/strict";
import WebSocket from "ws";
import { connectWebSocket, httpServer, upgradeWebSocket } from "@wirestream/wirestream";

const dir = new URL("../_util/tls/", import.meta.url);
const ca = await Deno.readTextFile(new URL("ca.pem", dir));
const cert = await Deno.readTextFile(new URL("cert.pem", dir));
const key = await Deno.readTextFile(new URL("key.pem", dir));

function serve() {
  return httpServer({ hostname: "127.0.0.1", port: 0, tls: { cert, key } }, (request) => {
    if (request.headers.get("upgrade") === "websocket") {
      const { response, session } = upgradeWebSocket(request);
      (async () => {
        for await (const message of session.incoming) await session.send(message);
      })().catch(() => {});
      return response;
    }
    return new Response(`secure ${new URL(request.url).protocol}`);
  });
}

Deno.test("httpServer over TLS", async (t) => {
  await t.step("answers fetch over https with request URLs in https:", async () => {
    const server = serve();
    const client = Deno.createHttpClient({ caCerts: [ca] });
    try {
      const response = await fetch(`https://localhost:${server.addr.port}/x`, { client });
      assert.equal(await response.text(), "secure https:");
    } finally {
      client.close();
      await server.shutdown();
    }
  });

  await t.step("answers curl over https, with --http1.1", async () => {
    const server = serve();
    try {
      const caFile = new URL("ca.pem", dir).pathname;
      const { code, stdout } = await new Deno.Command("curl", {
        args: ["-sS", "--http1.1", "--cacert", caFile, `https://localhost:${server.addr.port}/`],
      }).output();
      assert.equal(code, 0);
      assert.equal(new TextDecoder().decode(stdout), "secure https:");
    } finally {
      await server.shutdown();
    }
  });

  await t.step("upgrades wss: for npm:ws and for our own client", async () => {
    const server = serve();
    try {
      const ws = new WebSocket(`wss://localhost:${server.addr.port}/`, { ca });
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      ws.send("over tls");
      const echoed = await new Promise<string>((resolve) =>
        ws.once("message", (d: unknown) => resolve(String(d)))
      );
      assert.equal(echoed, "over tls");
      const closed = new Promise((resolve) => ws.once("close", resolve));
      ws.close(1000);
      await closed;

      const session = await connectWebSocket(`wss://localhost:${server.addr.port}/`, {
        caCerts: [ca],
      });
      await session.send(Uint8Array.of(1, 2, 3));
      const reader = session.incoming.getReader();
      assert.deepEqual((await reader.read()).value, Uint8Array.of(1, 2, 3));
      reader.releaseLock();
      assert.equal((await session.close(1000)).code, 1000);
    } finally {
      await server.shutdown();
    }
  });
});
