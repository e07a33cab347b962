// Copyright 2026 the wirestream authors. MIT license.
// The engines under embeddedServer, over 127.0.0.1 with a raw client: both refuse a Host that
// is not a valid authority with the same 400 before the application routes it, the native
// engine refuses at start() what it cannot serve (raw frames, masking), and it still serves
// HTTP/2 over TLS, which has :authority and no Host. Over TLS, both refuse WebSocket upgrades
// from the same host's pages served without TLS. What a handler sees is compared between the
// engines where it differed: info.completed, request bodies, Cookie fields.
import {
  type Application,
  embeddedServer,
  NativeEngine,
  WebSockets,
  WireEngine,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { deferred, delay, within } from "../_util/async.ts";
import { engines } from "../_util/engines.ts";
import { wsClient } from "../_util/clients.ts";
import { dial, textOf } from "../_util/http.ts";

/** Either engine, chosen at run time. */
type AnyEngine = typeof NativeEngine | typeof WireEngine;

const listen = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;
const tlsDir = new URL("../_util/tls/", import.meta.url);

/** A public page and an admin page that a steered Host must not reach. */
function module(app: Application): void {
  app.routing((r) => {
    r.get("/x", () => new Response("public"));
    r.get("/admin/x", () => new Response("admin"));
    r.get("/host", (request) => new Response(request.headers.get("host") ?? "no Host"));
  });
}

/** Sends one request head on a fresh connection; the status and body of the answer. */
async function exchange(port: number, target: string, host: string): Promise<[number, string]> {
  const client = await dial(port);
  try {
    await client.send(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const response = await client.next();
    assert.ok(response !== null, `an answer to ${target} with Host ${host}`);
    return [response.status, textOf(response.body)];
  } finally {
    await client.close();
  }
}

Deno.test("the engines give a handler the same info.completed", async (t) => {
  for (const engine of engines) {
    await t.step(
      `${engine.name}: completed waits for the handler, also when its client left first`,
      async () => {
        // Cleanup chained on completed must not run under a handler still using what it frees.
        const returned = deferred<number>();
        const completed = deferred<number>();
        const started = deferred<void>();
        const served = engine.serve(async (_request, info) => {
          const t0 = Date.now();
          info.completed.then(() => completed.resolve(Date.now() - t0));
          started.resolve();
          await delay(300);
          returned.resolve(Date.now() - t0);
          return new Response("late");
        });
        try {
          const client = await dial(Number(new URL(served.origin).port));
          await client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
          await within(started.promise, 5000, "the handler to start");
          await client.close(); // the client leaves while the handler runs
          const at = await within(completed.promise, 5000, "completed");
          assert.ok(at >= (await returned.promise), `completed at ${at} ms, before the return`);
        } finally {
          await served.close();
        }
      },
    );
  }
});

Deno.test("NativeEngine", async (t) => {
  for (const engine of [NativeEngine, WireEngine] as AnyEngine[]) {
    await t.step(
      `${engine.name}: TRACE, TRACK, and a method in another case than GET's are 501`,
      async () => {
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET. TRACE and TRACK are
        // refused by both (cross-site tracing). The engines answered 501 (wire) and 405 with
        // Allow (native, from the application's routes).
        const server = embeddedServer(engine, listen, module);
        const { port } = await server.start();
        try {
          for (const method of ["get", "Get", "head", "post", "TRACE", "trace", "TRACK"]) {
            const client = await dial(port);
            try {
              await client.send(`${method} /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
              assert.equal((await client.next())?.status, 501, method);
            } finally {
              await client.close();
            }
          }
          assert.deepEqual(await exchange(port, "/x", "a"), [200, "public"]);
        } finally {
          await server.stop();
        }
      },
    );

    await t.step(
      `${engine.name}: a bodiless POST, DELETE… has an empty body, and several Cookie fields are one`,
      async () => {
        // What Deno.serve gives a handler: request.body is null only for GET and HEAD, and
        // Cookie fields are joined with "; " (Headers would join them with ", ").
        const server = embeddedServer(engine, listen, (app) =>
          app.routing((r) => {
            for (const method of ["POST", "DELETE", "PURGE"]) {
              r.route(method, "/seen", async (request) =>
                new Response(
                  `${request.body === null ? "null" : await request.text()}|` +
                    `${request.headers.get("cookie")}|${request.headers.get("content-type")}`,
                ));
            }
          }));
        const { port } = await server.start();
        try {
          for (const method of ["POST", "DELETE", "PURGE"]) {
            for (const length of ["", "Content-Length: 0\r\n"]) {
              const client = await dial(port);
              try {
                await client.send(
                  `${method} /seen HTTP/1.1\r\nHost: a\r\n${length}Cookie: a=1\r\n` +
                    "Cookie: b=2\r\nConnection: close\r\n\r\n",
                );
                const response = (await client.next())!;
                assert.equal(textOf(response.body), "|a=1; b=2|null", `${method} ${length}`);
              } finally {
                await client.close();
              }
            }
          }
        } finally {
          await server.stop();
        }
      },
    );

    await t.step(`${engine.name}: a Host that is not a valid authority gets 400`, async () => {
      const server = embeddedServer(engine, listen, module);
      const { port } = await server.start();
      try {
        const refused: [target: string, host: string][] = [
          ["/x", "127.0.0.1/admin"], // would route GET /x to /admin/x
          ["/admin/x", "a?"], // would make /admin/x a query of GET /
          ["/admin/x", "a#"], // ... or a fragment
          ["/x", "u@a"], // userinfo
          ["/x", "a b"],
          ["/x", "a\\b"],
          ["/x", ""],
        ];
        for (const [target, host] of refused) {
          assert.deepEqual(await exchange(port, target, host), [
            400,
            `Cannot serve request: Host ${JSON.stringify(host)} is not a valid authority\n`,
          ], `GET ${target} with Host ${JSON.stringify(host)}`);
        }
        // An absolute-form target's authority is the URL's; userinfo there is refused too.
        assert.equal((await exchange(port, "http://u@a/x", "a"))[0], 400, "absolute-form");
        const served: [target: string, host: string, body: string][] = [
          ["/x", `127.0.0.1:${port}`, "public"],
          ["/admin/x", "Example.COM", "admin"],
          ["/x", "[::1]:80", "public"],
          ["/x", "a:", "public"], // an empty port is valid (RFC 3986 §3.2.3)
        ];
        for (const [target, host, body] of served) {
          assert.deepEqual(await exchange(port, target, host), [200, body], `Host ${host}`);
        }
      } finally {
        await server.stop();
      }
    });
  }

  await t.step(
    "maxBodySize: 413 for a Content-Length over it, and for a chunked body that crosses it",
    async () => {
      // Deno.serve has no body limit of its own: the engine counts what has no length.
      let called = 0;
      const server = embeddedServer(NativeEngine, {
        ...listen,
        configure: (config) => (config.maxBodySize = 1000),
      }, (app) =>
        app.routing((r) =>
          r.post("/echo", async (request) => {
            called++;
            return new Response(await request.text());
          })
        ));
      const { port } = await server.start();
      const url = `http://127.0.0.1:${port}/echo`;
      /** A body of `size` bytes with no length: a stream, sent chunked. */
      const chunked = (size: number) =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < size; at += 300) {
              controller.enqueue(new Uint8Array(Math.min(300, size - at)).fill(97));
            }
            controller.close();
          },
        });
      try {
        const declared = await fetch(url, { method: "POST", body: "a".repeat(1001) });
        assert.equal(declared.status, 413);
        assert.match(declared.headers.get("connection") ?? "", /close/, "the client should go");
        await declared.body?.cancel();
        // And it does close: a request pipelined behind the refused body is not answered.
        const client = await dial(port);
        try {
          await client.send(
            "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1001\r\n\r\n" +
              "a".repeat(1001) + "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
          );
          assert.equal((await client.next("POST"))!.status, 413);
          await client.expectClosed();
        } finally {
          await client.close();
        }
        assert.equal(called, 0, "refused before the application");
        const exact = await fetch(url, { method: "POST", body: "a".repeat(1000) });
        assert.equal((await exact.text()).length, 1000);
        // Content-Length twice, agreeing (RFC 9112 §6.3 allows it; Deno joins them "10, 10").
        const twice = await dial(port);
        try {
          await twice.send(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nContent-Length: 10\r\n" +
              "Connection: close\r\n\r\n0123456789",
          );
          const answer = await twice.next();
          assert.equal(answer?.status, 200);
          assert.equal(textOf(answer!.body), "0123456789");
        } finally {
          await twice.close();
        }
        for (const [size, status] of [[1000, 200], [1001, 413]]) {
          const response = await fetch(url, { method: "POST", body: chunked(size!) });
          assert.equal(response.status, status, `chunked ${size}`);
          if (status === 200) assert.equal((await response.text()).length, size);
          else await response.body?.cancel();
        }
      } finally {
        await server.stop();
      }
      const options = {
        ...listen,
        configure: (c: { maxBodySize?: number }) => (c.maxBodySize = -1),
      };
      await assert.rejects(embeddedServer(NativeEngine, options, () => {}).start(), RangeError);
    },
  );

  await t.step("the HTTP size limits the README gives each engine", async () => {
    const sizes = (app: Application) =>
      app.routing((r) => {
        r.get("/x", () => new Response("ok"));
        r.post("/upload", () => new Response("ok")); // does not read the body
      });
    /** The status of a request with `fields` (Host and Connection included) and `pad`. */
    const status = async (port: number, line: string, fields: number, head = 0) => {
      const extra = Array.from({ length: fields - 2 }, (_, i) => `X-${i}: y\r\n`).join("");
      let request = `${line}\r\nHost: a\r\nConnection: close\r\n${extra}`;
      if (head > 0) {
        const rest = head - request.length - "X-Pad: \r\n\r\n".length;
        request += `X-Pad: ${"p".repeat(rest)}\r\n`;
      }
      request += "\r\n";
      if (head > 0) assert.equal(request.length, head);
      const client = await dial(port);
      try {
        await client.send(request);
        return (await client.next())?.status;
      } finally {
        await client.close();
      }
    };
    const lineOf = (length: number) => `GET /x?${"a".repeat(length - 16)} HTTP/1.1`;
    const upload = (bytes: number) => `POST /upload HTTP/1.1\r\nContent-Length: ${bytes}`;
    // [what, request line, fields, head size, wire's status, native's status]
    const cases: [string, string, number, number, number, number][] = [
      ["an 8 KiB request line", lineOf(8192), 2, 0, 200, 200],
      ["a request line over 8 KiB", lineOf(8193), 2, 0, 414, 200],
      ["a 16 KiB head", "GET /x HTTP/1.1", 2, 16_384, 200, 200],
      ["a head over 16 KiB", "GET /x HTTP/1.1", 2, 16_385, 431, 200],
      ["a head of 64 KiB", "GET /x HTTP/1.1", 2, 65_536, 431, 200],
      ["a head over 64 KiB", "GET /x HTTP/1.1", 2, 66_000, 431, 400],
      ["100 fields", "GET /x HTTP/1.1", 100, 0, 200, 200],
      ["101 fields", "GET /x HTTP/1.1", 101, 0, 431, 200],
      ["128 fields", "GET /x HTTP/1.1", 128, 0, 431, 200],
      ["129 fields", "GET /x HTTP/1.1", 129, 0, 431, 400],
      ["a body of 128 MiB", upload(128 * 1024 * 1024), 1, 0, 200, 200],
      ["a body over 128 MiB", upload(128 * 1024 * 1024 + 1), 1, 0, 413, 413],
    ];
    for (const engine of [WireEngine, NativeEngine] as AnyEngine[]) {
      const server = embeddedServer(engine, listen, sizes);
      const { port } = await server.start();
      try {
        for (const [what, line, fields, head, wire, native] of cases) {
          const want = engine === WireEngine ? wire : native;
          assert.equal(await status(port, line, fields, head), want, `${engine.name}: ${what}`);
        }
      } finally {
        await server.stop();
      }
    }
  });

  const rawRoute = (app: Application) => {
    app.install(WebSockets);
    app.routing((r) => r.webSocketRaw("/raw", (session) => void session.close()));
  };
  const masking = (app: Application) => {
    app.install(WebSockets, { masking: true });
    app.routing((r) => r.webSocket("/ws", (session) => void session.close()));
  };
  for (
    const [what, bad, message] of [
      ["a webSocketRaw route", rawRoute, /webSocketRaw route "\/raw" needs raw frames/],
      ["masking: true", masking, /WebSockets option masking: true needs server frames masked/],
    ] as const
  ) {
    await t.step(`start() rejects ${what} before listening, naming the wire engine`, async () => {
      const probe = Deno.listen(listen); // a free port, for the server to be refused
      const port = probe.addr.port;
      probe.close();
      const server = embeddedServer(NativeEngine, { ...listen, port }, bad);
      await assert.rejects(server.start(), (error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /^Cannot serve on the native engine: /);
        assert.match(error.message, message);
        assert.match(error.message, /use WireEngine$/);
        return true;
      });
      await within(server.finished, 1000, "finished");
      assert.equal(server.application, null);
      Deno.listen({ ...listen, port }).close(); // nothing listens on it
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`), TypeError);

      const wire = embeddedServer(WireEngine, listen, bad); // the wire engine takes it
      const addr = await wire.start();
      try {
        const ws = wsClient(`ws://127.0.0.1:${addr.port}${bad === rawRoute ? "/raw" : "/ws"}`);
        try {
          // The 101 came: the wire engine serves it (ws fails on a masked frame only after).
          assert.equal(await within(ws.opened, 5000, "ws to open"), true);
        } finally {
          ws.ws.terminate();
        }
      } finally {
        await wire.stop();
      }
    });
  }

  await t.step(
    "says https (and brackets an IPv6 address) when it prints where it listens",
    async () => {
      const [cert, key] = await Promise.all(
        ["cert.pem", "key.pem"].map((name) => Deno.readTextFile(new URL(name, tlsDir))),
      );
      const printed: string[] = [];
      const log = console.log;
      console.log = (...args: unknown[]) => void printed.push(args.join(" "));
      try {
        for (const engine of [NativeEngine, WireEngine] as AnyEngine[]) {
          const tls = embeddedServer(engine, {
            hostname: "127.0.0.1",
            port: 0,
            configure: (config) => (config.tls = { cert: cert!, key: key! }),
          }, module);
          const { port } = await tls.start();
          await tls.stop();
          assert.equal(printed.pop(), `Listening on https://127.0.0.1:${port}/`);
        }
        const v6 = embeddedServer(WireEngine, { hostname: "::1", port: 0 }, module);
        const { port } = await v6.start();
        await v6.stop();
        assert.equal(printed.pop(), `Listening on http://[::1]:${port}/`);
      } finally {
        console.log = log;
      }
    },
  );

  for (const engine of [NativeEngine, WireEngine] as AnyEngine[]) {
    await t.step(
      `${engine.name}: over TLS, a page of the same host without TLS gets 403`,
      async () => {
        const [cert, key, ca] = await Promise.all(
          ["cert.pem", "key.pem", "ca.pem"].map((name) => Deno.readTextFile(new URL(name, tlsDir))),
        );
        const server = embeddedServer(engine, {
          ...listen,
          configure: (
            config: { tls?: { cert: string; key: string } },
          ) => (config.tls = { cert: cert!, key: key! }),
        }, (app: Application) => {
          app.install(WebSockets);
          app.routing((r) => r.webSocket("/ws", async (session) => void (await session.closed)));
        });
        const { port } = await server.start();
        try {
          const cases: [string, boolean][] = [
            [`https://localhost:${port}`, true], // its own page
            [`http://localhost:${port}`, false], // the same host, served without TLS
          ];
          for (const [origin, allowed] of cases) {
            const client = wsClient(`wss://localhost:${port}/ws`, [], { origin, ca: ca! });
            try {
              assert.equal(await within(client.opened, 5000, origin), allowed, origin);
            } finally {
              client.ws.terminate();
            }
          }
        } finally {
          await server.stop();
        }
      },
    );
  }

  await t.step("serves HTTP/2 over TLS, which has no Host", async () => {
    const [cert, key, ca] = await Promise.all(
      ["cert.pem", "key.pem", "ca.pem"].map((name) => Deno.readTextFile(new URL(name, tlsDir))),
    );
    const server = embeddedServer(NativeEngine, {
      ...listen,
      configure: (config) => (config.tls = { cert: cert!, key: key! }),
    }, module);
    const { port } = await server.start();
    const client = Deno.createHttpClient({ caCerts: [ca!], http1: false, http2: true });
    try {
      for (const host of ["localhost", "127.0.0.1"]) {
        const response = await fetch(`https://${host}:${port}/admin/x`, { client });
        assert.equal(await response.text(), "admin", host);
      }
      const response = await fetch(`https://localhost:${port}/host`, { client });
      assert.equal(await response.text(), "no Host", "HTTP/2 it is: the authority is checked");
    } finally {
      client.close();
      await server.stop();
    }
  });
});
