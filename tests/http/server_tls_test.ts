// Copyright 2026 the wirestream authors. MIT license.
// httpServer over TLS (Deno.listenTls) with a certificate for localhost signed by a test CA,
// spoken to by fetch, curl, npm:ws and our own client over wss:. The keys are test fixtures
// only (made with openssl; the CA's key was thrown away).
import assert from "node:assert/strict";
import WebSocket from "ws";
import {
  connectWebSocket,
  httpServer,
  startConnectionPipeline,
  upgradeWebSocket,
} from "@wirestream/wirestream";
import { deferred, delay, latin1, ResponseReader, utf8, within } from "../_util/http.ts";

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

  await t.step(
    "negotiates http/1.1 by ALPN, and refuses a client that offers only h2",
    async () => {
      // A review: no ALPN was offered, so an h2-only client finished its handshake and then
      // failed on the HTTP/1.1 answer to its preface (Deno.serve refuses it in the handshake).
      const server = serve();
      try {
        const connect = (alpnProtocols: string[]) =>
          Deno.connectTls({
            hostname: "localhost",
            port: server.addr.port,
            caCerts: [ca],
            alpnProtocols,
          });
        const both = await connect(["h2", "http/1.1"]);
        try {
          assert.equal((await both.handshake()).alpnProtocol, "http/1.1");
        } finally {
          both.close();
        }
        const h2 = await connect(["h2"]);
        try {
          await assert.rejects(h2.handshake(), /NoApplicationProtocol|no application protocol/i);
        } finally {
          h2.close();
        }
      } finally {
        await server.shutdown();
      }
    },
  );

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

  await t.step(
    "our client reports a certificate it cannot verify as 1015 (RFC 6455 §7.4.1)",
    async () => {
      const server = serve();
      try {
        // No caCerts: the test CA is not trusted.
        const error = await connectWebSocket(`wss://localhost:${server.addr.port}/`).then(
          () => assert.fail("opened"),
          (e) => e,
        );
        assert.equal(error.closeCode, 1015, String(error));
        assert.match(error.message, /TLS handshake/);
      } finally {
        await server.shutdown();
      }
    },
  );

  // A client that connects and sends nothing, and one that stops 6 bytes into its ClientHello
  // (record type 22, TLS 1.0 record version, length 165, handshake type 1).
  const stalls: [string, Uint8Array][] = [
    ["a silent client", new Uint8Array(0)],
    ["a client that sends 6 bytes of a ClientHello", Uint8Array.of(0x16, 3, 1, 0, 0xa5, 1)],
  ];
  for (const [who, sent] of stalls) {
    await t.step(
      `${who} is given up after handshakeTimeout, and holds its place until it leaves`,
      async () => {
        // Deno cannot close a TlsConn mid-handshake: close() leaves its socket open until the
        // peer closes it (denoland/deno#14547). So the stalled client keeps its place under
        // maxConnections until then; when it lost it at the timeout, silent clients could
        // hold sockets without bound and ran a server out of file descriptors.
        const server = httpServer(
          {
            hostname: "127.0.0.1",
            port: 0,
            tls: { cert, key },
            maxConnections: 1,
            handshakeTimeout: 300,
          },
          () => new Response("served"),
        );
        const port = server.addr.port;
        const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
        let open = true;
        try {
          if (sent.length > 0) await stalled.write(sent);
          await delay(300 + 200);
          // Past the timeout: never served, but its socket, and so its place, are still held.
          assert.equal(await tlsGet(port), null, "a client served past maxConnections");
          stalled.close();
          open = false;
          await delay(100); // its handshake ends with the close: its place is free
          assert.equal(await tlsGet(port), "served");
        } finally {
          if (open) stalled.close();
          await within(server.shutdown(), 3000, "server.shutdown() to resolve");
        }
      },
    );
  }

  await t.step(
    "a client that stops reading holds its place past writeTimeout until it leaves",
    async () => {
      // A review: the connection was closed at writeTimeout and its place freed, but Deno frees
      // a TlsConn's socket only when its write under way ends (the client reads or leaves):
      // 120 such clients held 76 descriptors past maxConnections 10, and the server stopped
      // accepting. The close now waits for that write, and the place with it.
      const chunk = new Uint8Array(1 << 16);
      const server = httpServer(
        {
          hostname: "127.0.0.1",
          port: 0,
          tls: { cert, key },
          maxConnections: 1,
          writeTimeout: 300,
        },
        (request) =>
          new URL(request.url).pathname === "/big"
            ? new Response(
              new ReadableStream({ pull: (controller) => controller.enqueue(chunk) }), // endless
            )
            : new Response("served"),
      );
      const port = server.addr.port;
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      const stalled = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [ca] });
      let open = true;
      try {
        await stalled.write(utf8("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        assert.ok((await stalled.read(new Uint8Array(1024)))! > 0); // then it reads no more
        await delay(300 + 700); // its buffers fill, then the write times out
        assert.equal(await tlsGet(port), null, "a client served past maxConnections");
        stalled.close();
        open = false;
        await delay(200); // its socket goes with its write, and its place with it
        assert.equal(await tlsGet(port), "served");
      } finally {
        if (open) stalled.close();
        await within(server.shutdown(), 3000, "server.shutdown() to resolve");
      }
    },
  );

  await t.step(
    "a shutdown under way closes a stalled client's connection at writeTimeout: the process exits",
    async () => {
      // A review of the deferred close: one deferred once the shutdown had begun was never
      // made, and its write held the server's process open until the client left.
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-net=127.0.0.1", "fixtures/tls_stall_server.ts"],
        cwd: new URL(".", import.meta.url),
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let stalled: Deno.TlsConn | undefined;
      try {
        const port = Number(/port (\d+)/.exec((await lines.read()).value ?? "")?.[1]);
        const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
        stalled = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [ca] });
        await stalled.write(utf8("GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        assert.ok((await stalled.read(new Uint8Array(1024)))! > 0); // then it reads no more
        const stdin = child.stdin.getWriter();
        await stdin.write(utf8("shutdown\n"));
        await stdin.close();
        let said = "";
        while (!said.includes("shutdown resolved")) {
          const { done, value } = await within(lines.read(), 5000, "the shutdown");
          if (done) break;
          said += value;
        }
        assert.match(said, /shutdown resolved/);
        // The client is still there and still not reading: the process must end regardless.
        const status = await within(child.status, 3000, "the server's process to exit");
        assert.ok(status.success);
      } finally {
        stalled?.close();
        await lines.cancel().catch(() => {});
        try {
          child.kill();
        } catch {
          // exited
        }
        await child.status;
      }
    },
  );

  // A client that speaks plain HTTP to the TLS port (the server answers with an alert) and
  // stays, and one that closes 6 bytes into its ClientHello: either handshake fails at once.
  const failures: [string, Uint8Array, "read" | "close"][] = [
    ["a client that sends plain HTTP", utf8("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), "read"],
    ["a client that closes mid-ClientHello", Uint8Array.of(0x16, 3, 1, 0, 0xa5, 1), "close"],
  ];
  for (const [who, sent, then] of failures) {
    await t.step(`${who} fails its handshake and frees the only place for the next`, async () => {
      // With tls, nothing is accepted while every place is taken: the failed handshake must
      // give its place back and wake the accept loop, or the next client waits for good.
      const server = httpServer(
        { hostname: "127.0.0.1", port: 0, tls: { cert, key }, maxConnections: 1 },
        () => new Response("served"),
      );
      const port = server.addr.port;
      const failing = await Deno.connect({ hostname: "127.0.0.1", port });
      let open = true;
      try {
        await failing.write(sent);
        if (then === "read") {
          const reading = failing.read(new Uint8Array(1024)).catch(() => null);
          await within(reading, 2000, "the server's alert"); // its socket stays open
        } else {
          failing.close();
          open = false;
        }
        assert.equal(await tlsGet(port, 2000), "served");
      } finally {
        if (open) failing.close();
        await within(server.shutdown(), 3000, "server.shutdown() to resolve");
      }
    });
  }

  await t.step(
    "a client whose connection ends without close_notify: request.signal aborts with 'The client went away', UnexpectedEof as its cause",
    async () => {
      // Deno fails the read of such a TLS connection with UnexpectedEof where a TCP client that
      // closes only ends the input: the reason is the same AbortError over both (its name is
      // what handlers check), and the read error its cause.
      const started = deferred();
      const aborted = deferred<unknown>();
      const server = httpServer(
        { hostname: "127.0.0.1", port: 0, tls: { cert, key } },
        async (request) => {
          started.resolve();
          request.signal.addEventListener("abort", () => aborted.resolve(request.signal.reason));
          await aborted.promise;
          return new Response("too late");
        },
      );
      // A relay between the client and the server, whose socket to the server then closes
      // with no close_notify, as a client killed mid-request.
      const relay = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const connecting = Deno.connectTls({
        hostname: "localhost",
        port: relay.addr.port,
        caCerts: [ca],
      });
      const down = await relay.accept();
      const up = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      const relaying = [down.readable.pipeTo(up.writable), up.readable.pipeTo(down.writable)]
        .map((piping) => piping.catch(() => {}));
      const client = await connecting;
      try {
        await client.write(utf8("GET /wait HTTP/1.1\r\nHost: localhost\r\n\r\n"));
        await within(started.promise, 2000, "the handler to start");
        up.close();
        const reason = await within(aborted.promise, 2000, "request.signal to abort");
        assert.ok(reason instanceof DOMException, String(reason));
        assert.equal(reason.name, "AbortError");
        assert.equal(reason.message, "The client went away");
        const cause = (reason as { cause?: unknown }).cause;
        assert.ok(cause instanceof Deno.errors.UnexpectedEof, String(cause));
      } finally {
        for (const conn of [client, down, up]) {
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        }
        relay.close();
        await Promise.all(relaying);
        await within(server.shutdown(), 3000, "server.shutdown() to resolve");
      }
    },
  );

  await t.step(
    "shutdown(Infinity) resolves once a silent client's handshakeTimeout passed",
    async () => {
      const server = httpServer(
        { hostname: "127.0.0.1", port: 0, tls: { cert, key }, handshakeTimeout: 300 },
        () => new Response("served"),
      );
      const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      try {
        await delay(20); // accepted
        await within(server.shutdown(Infinity), 300 + 1000, "server.shutdown(Infinity)");
      } finally {
        stalled.close();
        await within(server.shutdown(0), 1000, "").catch(() => {});
      }
    },
  );
});

/**
 * A GET over TLS to the server: its body, or null when it is not served within `ms` (the
 * connection refused, or left waiting in the listen backlog).
 */
async function tlsGet(port: number, ms = 1000): Promise<string | null> {
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const tls = Deno.startTls(client, { hostname: "localhost", caCerts: [ca] });
  let conn: Deno.TlsConn | undefined;
  try {
    return await within(
      (async () => {
        conn = await tls;
        await conn.write(
          utf8("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        );
        const response = await new ResponseReader(conn.readable).next();
        return response === null ? null : latin1(response.body);
      })(),
      ms,
      "the TLS client's response",
    );
  } catch {
    return null;
  } finally {
    try {
      (conn ?? client).close();
    } catch {
      // Closed by the reader.
    }
    await tls.catch(() => {}); // ends with the close
  }
}

Deno.test("startConnectionPipeline over TLS", async (t) => {
  await t.step(
    "a client that never completes its handshake: the pipeline ends within idleTimeout and the linger time",
    async () => {
      // closeWrite() on a TlsConn waits for the handshake: it must not wait forever.
      const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
      const stalled = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
      try {
        const conn = await listener.accept();
        const pipeline = startConnectionPipeline(conn, () => new Response("x"), {
          idleTimeout: 100,
        });
        // idleTimeout, then at most LINGER_TIME (2 s) for closeWrite() and the lingering close.
        await within(pipeline.finished, 100 + 2000 + 1000, "the pipeline to end");
      } finally {
        stalled.close();
        listener.close();
      }
    },
  );
});
