// Copyright 2026 the wirestream authors. MIT license.
// The WebSockets plugin: its options in memory, then WebSocket routes over real sockets on
// each engine that serves them, with npm:ws and Deno's WebSocket as clients.
import {
  Application,
  Frame,
  HttpError,
  type MessageSession,
  Opcode,
  PluginError,
  type RawWebSocketSession,
  type RouteContext,
  type Routing,
  WebSocketError,
  WebSockets,
  type WebSocketsOptions,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { delay, within } from "../_util/async.ts";
import { denoClient, wsClient } from "../_util/clients.ts";
import { type Served, wsEngines } from "../_util/engines.ts";
import { dial } from "../_util/http.ts";
import { floodUntilRefused, Queue } from "../_util/ws.ts";

/** Installs WebSockets with `options` on a fresh application. */
function install(options?: WebSocketsOptions) {
  return new Application().install(WebSockets, options);
}

/** Echoes messages until the session ends; the handler returns then. */
async function echo(session: MessageSession): Promise<void> {
  for await (const message of session.incoming) await session.send(message);
}

Deno.test("WebSockets", async (t) => {
  await t.step("applies the defaults", () => {
    const config = install();
    assert.deepEqual({ ...config, isAllowedOrigin: null }, {
      pingInterval: null,
      timeout: 15_000,
      maxFrameSize: 4_194_304, // maxMessageSize's
      masking: false,
      maxMessageSize: 4_194_304,
      maxSendQueue: 8_388_608,
      protocols: [],
      allowedOrigins: [],
      isAllowedOrigin: null,
    });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.protocols));
    assert.equal(install({ pingInterval: Infinity }).pingInterval, null, "Infinity is off");
    assert.equal(install({ pingInterval: null }).pingInterval, null);
    assert.equal(install({ timeout: Infinity, maxMessageSize: 0 }).maxMessageSize, 0);
    // maxFrameSize follows maxMessageSize unless it is given.
    assert.equal(install({ maxMessageSize: 65_536 }).maxFrameSize, 65_536);
    assert.equal(install({ maxMessageSize: 65_536, maxFrameSize: 1024 }).maxFrameSize, 1024);
  });

  await t.step("rejects values out of range with RangeError at install time", () => {
    const cases: WebSocketsOptions[] = [
      { pingInterval: -1 },
      { pingInterval: 0 },
      { pingInterval: NaN },
      { pingInterval: 2 ** 31 }, // longer than a timer can wait
      { timeout: -1 },
      { timeout: 0 }, // every session on the native engine ended before it opened
      { timeout: NaN },
      { maxFrameSize: 0 },
      { maxFrameSize: 1.5 },
      { maxMessageSize: -1 },
      { maxSendQueue: -1 },
      { maxSendQueue: 0.5 },
    ];
    for (const options of cases) {
      assert.throws(() => install(options), RangeError, JSON.stringify(options));
    }
    assert.throws(() => install({ timeout: -5 }), /Invalid timeout: -5 ms/);
  });

  await t.step("rejects values of the wrong type, and unknown options, with TypeError", () => {
    const cases: [string, unknown][] = [
      ["pingInterval", "20s"],
      ["timeout", "1000"],
      ["maxFrameSize", 1n],
      ["masking", 1],
      ["maxMessageSize", null],
      ["maxSendQueue", "8MiB"],
      ["protocols", "chat"],
      ["protocols", ["chat", 1]],
      ["protocols", ["two words"]],
      ["protocols", [""]],
      ["allowedOrigins", "https://a.example"],
      ["allowedOrigins", ["https://a.example/path"]],
      ["allowedOrigins", ["a.example"]],
      ["allowedOrigins", ["null"]],
      ["allowedOrigins", ["https://user@a.example"]],
      ["pingPeriod", 1000], // Ktor's name
    ];
    for (const [name, value] of cases) {
      assert.throws(
        () => install({ [name]: value } as WebSocketsOptions),
        (error) => error instanceof TypeError && error.message.includes(name),
        `${name}: ${String(value)}`,
      );
    }
    assert.throws(
      () => install({ protocols: ["chat", 1] } as never),
      (e) => e instanceof TypeError && /protocols: item 1, 1, is not a string/.test(e.message),
    );
    for (const options of ["fast", 5, true, null, ["pingInterval"]]) {
      assert.throws(() => install(options as never), (error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, /^Invalid WebSockets options: .* is not an object/);
        return true;
      }, String(options));
    }
  });

  await t.step(
    "rejects wildcards in allowedOrigins with a TypeError saying how to allow all",
    () => {
      for (
        const value of ["https://*.example.com", "*", "https://app.example:*", "*://a.example"]
      ) {
        assert.throws(() => install({ allowedOrigins: [value] }), (error) => {
          assert.ok(error instanceof TypeError, String(error));
          assert.match(error.message, /allowedOrigins: .* has a wildcard, which is not supported/);
          assert.match(error.message, /give "\*" \(not in an array\) to allow every origin/);
          return true;
        }, value);
      }
      assert.equal(install({ allowedOrigins: "*" }).allowedOrigins, "*");
    },
  );

  await t.step("allows the server's own origin, the listed ones and clients without one", () => {
    const config = install({
      allowedOrigins: ["https://App.Example:443", "chrome-extension://abc"],
    });
    assert.deepEqual(config.allowedOrigins, ["https://app.example", "chrome-extension://abc"]);
    const cases: [string | null, string | null, boolean][] = [
      [null, "api.example", true], // not a browser
      ["https://api.example", "api.example", true], // same host
      ["http://api.example:8080", "API.example:8080", true],
      ["https://api.example", "api.example:443", true], // the default port of the origin
      ["https://api.example:8443", "api.example", false], // another port
      ["https://app.example", "api.example", true], // listed
      ["chrome-extension://abc", "api.example", true], // listed
      ["https://evil.example", "api.example", false],
      ["chrome-extension://api.example", "api.example", false], // same host: http(s) pages only
      ["ftp://api.example", "api.example", false],
      ["https://api.example.evil.example", "api.example", false],
      ["null", "api.example", false], // a sandboxed or file: page
      ["garbage", "api.example", false],
      ["https://api.example", "api.example/@evil", false],
      ["https://api.example", null, false],
    ];
    for (const [origin, host, allowed] of cases) {
      assert.equal(config.isAllowedOrigin(origin, host), allowed, `${origin} on ${host}`);
    }
    assert.equal(install().isAllowedOrigin("https://app.example", "api.example"), false);
    assert.equal(install({ allowedOrigins: "*" }).isAllowedOrigin("null", "api.example"), true);
  });

  await t.step("accepts allowedOrigins whose scheme has digits, +, - and . (RFC 3986)", () => {
    const origins = ["s3://bucket", "h2ttp://a.example", "web+app-2.x://a.example"];
    const config = install({ allowedOrigins: origins });
    assert.deepEqual(config.allowedOrigins, origins);
    assert.equal(config.isAllowedOrigin("s3://bucket", "api.example"), true);
    assert.throws(() => install({ allowedOrigins: ["3s://bucket"] }), TypeError, "a digit first");
  });

  await t.step("over TLS, refuses the same host's pages served without it, unless listed", () => {
    // A page served without TLS (which anyone on its path could have changed) is another
    // origin than the server's TLS one, as browsers see it; it was let through on its host.
    const config = install();
    assert.equal(config.isAllowedOrigin("http://api.example", "api.example", true), false);
    assert.equal(config.isAllowedOrigin("https://api.example", "api.example", true), true);
    // Without TLS the request may have come through a TLS-terminating proxy: both pass.
    assert.equal(config.isAllowedOrigin("http://api.example", "api.example", false), true);
    assert.equal(config.isAllowedOrigin("https://api.example", "api.example", false), true);
    const listed = install({ allowedOrigins: ["http://api.example"] });
    assert.equal(listed.isAllowedOrigin("http://api.example", "api.example", true), true);
  });

  await t.step(
    "after dispose(), a webSocket route without beforeUpgrade answers 503 and runs no handler",
    async () => {
      const app = new Application();
      app.install(WebSockets);
      let handled = 0;
      app.routing((r) => r.webSocket("/ws", () => void handled++));
      app.dispose();
      const response = await app.fetch(
        new Request("http://localhost/ws", {
          headers: {
            upgrade: "websocket",
            connection: "Upgrade",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version": "13",
          },
        }),
      );
      assert.equal(response.status, 503);
      assert.equal(await response.text(), "Cannot upgrade: the application is stopping\n");
      assert.deepEqual([handled, app.sessions], [0, 0]);
    },
  );

  await t.step("a WebSocket route bound before install(WebSockets) throws a PluginError", () => {
    const app = new Application();
    for (
      const bind of [
        () => app.routing((r) => r.webSocket("/ws", () => {})),
        () => app.routing((r) => r.webSocketRaw("/raw", () => {})),
      ]
    ) {
      assert.throws(bind, (error) => {
        assert.ok(error instanceof PluginError);
        assert.equal(error.key, "WebSockets");
        assert.match(error.message, /^Cannot bind webSocket(Raw)? route "\/(ws|raw)": install/);
        return true;
      });
    }
    app.install(WebSockets);
    app.routing((r) => r.webSocket("/ws", () => {}).webSocketRaw("/raw", () => {}));
  });

  await t.step("checks a route's protocols and options", () => {
    const app = new Application();
    app.install(WebSockets);
    assert.throws(
      () => app.routing((r) => r.webSocket("/a", () => {}, { protocols: ["a b"] })),
      TypeError,
    );
    assert.throws(() => app.routing((r) => r.webSocket("/b", () => {}, null as never)), TypeError);
    assert.throws(() => app.routing((r) => r.webSocket("/c", "handler" as never)), TypeError);
    app.routing((r) => r.webSocket("/d", () => {}));
    assert.throws(() => app.routing((r) => r.webSocket("/d", () => {})), /bound already/);
    app.routing((r) => r.get("/d", () => new Response("page"))); // a page on the same path
    assert.throws(
      () => app.routing((r) => r.webSocket("/e", () => {}, { beforeUpgrade: "token" as never })),
      /Invalid webSocket option beforeUpgrade: it is not a function/,
    );
    // A misspelt option is refused, not ignored (a route left without its hook).
    assert.throws(
      () => app.routing((r) => r.webSocket("/f", () => {}, { beforeUpgrde: () => {} } as never)),
      /Invalid webSocket option "beforeUpgrde": there is no such option/,
    );
  });

  await t.step("beforeUpgrade's result is the handler's context.data, typed", () => {
    const app = new Application();
    app.install(WebSockets);
    app.routing((r) => {
      // The hook's result type reaches the handler (deno check checks these lines).
      r.webSocket("/typed", async (session, { data }) => void await session.send(data.name), {
        beforeUpgrade: async (request: Request) => {
          await Promise.resolve(); // a lookup
          return request.headers.has("authorization")
            ? { name: "Ada" }
            : new Response(null, { status: 401 });
        },
      });
      r.webSocket<{ name: string }>("/given", (_session, { data }) => void data.name, {
        // @ts-expect-error: going on without the data the handler was promised
        beforeUpgrade: () => {},
      });
      r.webSocket("/none", (_session, { data }) => {
        const nothing: undefined = data; // no hook: no data
        return nothing;
      });
      // @ts-expect-error: data typed, but no hook to make it: it would be undefined at run time
      r.webSocket<{ name: string }>("/unmade", (_session, { data }) => void data.name);
      // @ts-expect-error: the same for a raw route
      r.webSocketRaw<{ name: string }>("/unmade-raw", (_session, { data }) => void data.name);
      r.webSocket("/refusing", () => {}, {
        beforeUpgrade: () => new Response(null, { status: 401 }),
      });
      r.webSocket<undefined>("/undefined", () => {}); // no data, said explicitly
      r.webSocketRaw<undefined>("/undefined-raw", () => {});
    });
  });

  for (const engine of wsEngines) {
    await t.step(`routes on the ${engine.name}`, async (t) => {
      /** An app whose route /ws, which closes each session at once, has `beforeUpgrade`. */
      function withHook(beforeUpgrade: () => unknown): Application {
        const app = new Application();
        app.install(WebSockets);
        app.routing((r) =>
          r.webSocket("/ws", (session) => void session.close(), { beforeUpgrade })
        );
        return app;
      }

      /** Serves an app with WebSockets installed; `bind` adds its routes. */
      function serve(
        bind: (app: Application) => void,
        options: WebSocketsOptions = {},
        reports: Queue<unknown> = new Queue(),
      ): Served & { app: Application } {
        const app = new Application({ onWebSocketError: (error) => reports.push(error) });
        app.install(WebSockets, options);
        bind(app);
        return { ...engine.serve(app.handler), app };
      }

      /** What fetch gets for an upgrade request to `url`: a refusal can be read whole. */
      function upgradeByFetch(url: string, headers: Record<string, string> = {}) {
        return fetch(url, {
          headers: {
            upgrade: "websocket",
            connection: "upgrade",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version": "13",
            ...headers,
          },
        });
      }

      await t.step(
        "beforeUpgrade refuses with its Response or an HttpError: no session, no handler",
        async () => {
          const calls = new Queue<string>();
          let handled = 0;
          const server = serve((app) =>
            app.routing((r) =>
              r.webSocket<{ user: string; room: string }>(
                "/rooms/:room",
                async (session, { data }) => {
                  handled++;
                  await session.send(`${data.user} in ${data.room}`);
                },
                {
                  beforeUpgrade: async (request, { params }) => {
                    const token = new URL(request.url).searchParams.get("token");
                    calls.push(token ?? "none");
                    await delay(5); // an async check, as a token lookup is
                    if (token === "banned") throw new HttpError(403, "Cannot join: banned");
                    if (token !== "good") {
                      return new Response("Cannot join: no token", {
                        status: 401,
                        headers: { "www-authenticate": 'Bearer realm="chat"' },
                      });
                    }
                    return { user: "ada", room: params.room! };
                  },
                },
              ).webSocket("/thenable", () => void handled++, {
                // An awaitable that is no Promise (a query builder's), from a plain function:
                // its refusal must hold, not be taken for the handler's data.
                beforeUpgrade: () => {
                  const refusal = new Response(null, { status: 401 });
                  return { then: (resolve: (r: Response) => void) => resolve(refusal) } as never;
                },
              })
            )
          );
          try {
            const ws = wsClient(`${server.wsOrigin}/rooms/lobby`);
            assert.equal(await within(ws.opened, 5000, "ws to be refused"), false);
            assert.match(String(ws.errors[0]), /Unexpected server response: 401/);
            const banned = wsClient(`${server.wsOrigin}/rooms/lobby?token=banned`);
            assert.equal(await within(banned.opened, 5000, "ws to be refused"), false);
            assert.match(String(banned.errors[0]), /Unexpected server response: 403/);
            const deno = denoClient(`${server.wsOrigin}/rooms/lobby`);
            assert.equal(await within(deno.opened, 5000, "Deno's WebSocket to be refused"), false);
            assert.deepEqual(
              [await calls.next(), await calls.next(), await calls.next()].sort(),
              ["banned", "none", "none"],
            );

            const refused = await upgradeByFetch(`${server.origin}/rooms/lobby`);
            assert.equal(refused.status, 401);
            assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="chat"');
            assert.equal(await refused.text(), "Cannot join: no token");
            const forbidden = await upgradeByFetch(`${server.origin}/rooms/lobby?token=banned`);
            assert.equal(forbidden.status, 403);
            assert.equal(await forbidden.text(), "Cannot join: banned\n");
            const thenable = await upgradeByFetch(`${server.origin}/thenable`);
            assert.equal(thenable.status, 401);
            await thenable.body?.cancel();
            assert.equal(handled, 0);
            assert.equal(server.app.sessions, 0);

            // Accepted: what the hook returned is the handler's context.data.
            const good = wsClient(`${server.wsOrigin}/rooms/caf%C3%A9?token=good`);
            assert.equal((await good.messages.next()).data.toString(), "ada in café");
            assert.equal((await within(good.closed, 5000, "ws close")).code, 1000);
            const gooddeno = denoClient(`${server.wsOrigin}/rooms/lobby?token=good`);
            assert.equal(await gooddeno.messages.next(), "ada in lobby");
            await within(gooddeno.closed, 5000, "Deno close");
            assert.equal(handled, 2);
          } finally {
            await server.close();
          }
        },
      );

      await t.step(
        "beforeUpgrade sees only valid upgrades from allowed origins; its other errors are 500",
        async () => {
          let calls = 0;
          const app = withHook(() => {
            calls++;
            throw new Error("bug in the hook");
          });
          const errors: unknown[] = [];
          const server = engine.serve(app.handler, {
            onError: (error) => (errors.push(error), new Response(null, { status: 500 })),
          });
          try {
            const plain = await fetch(`${server.origin}/ws`);
            assert.equal(plain.status, 400);
            await plain.body?.cancel();
            const foreign = wsClient(`${server.wsOrigin}/ws`, [], {
              origin: "https://evil.example",
            });
            assert.equal(await within(foreign.opened, 5000, "ws to be refused"), false);
            assert.match(String(foreign.errors[0]), /Unexpected server response: 403/);
            assert.equal(calls, 0);
            const failed = await upgradeByFetch(`${server.origin}/ws`);
            assert.equal(failed.status, 500);
            await failed.body?.cancel();
            assert.equal(calls, 1);
            assert.deepEqual(errors.map(String), ["Error: bug in the hook"]);
            assert.equal(app.sessions, 0);
          } finally {
            await server.close();
          }
        },
      );

      await t.step(
        "beforeUpgrade is not called for an upgrade refused for its HTTP version or its body",
        async () => {
          let calls = 0;
          const app = withHook(() => void calls++);
          const server = engine.serve(app.handler);
          const head = "upgrade: websocket\r\nconnection: Upgrade\r\n" +
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n";
          const statuses: number[] = [];
          try {
            for (
              const request of [
                `GET /ws HTTP/1.0\r\nhost: a\r\n${head}\r\n`,
                `GET /ws HTTP/1.1\r\nhost: a\r\n${head}content-length: 3\r\n\r\nabc`,
              ]
            ) {
              const client = await dial(Number(new URL(server.origin).port));
              try {
                await client.send(request);
                statuses.push((await client.next())?.status ?? 0);
              } finally {
                await client.close();
              }
            }
            if (engine.name.startsWith("native")) {
              // Deno tells no request's HTTP version: it upgrades HTTP/1.0 (README), and only
              // then is the hook called. The body is refused before the handler.
              assert.deepEqual([statuses, calls], [[101, 400], 1]);
            } else {
              assert.deepEqual([statuses, calls], [[400, 400], 0]);
            }
          } finally {
            await server.close();
          }
        },
      );

      await t.step("an application disposed while beforeUpgrade runs answers 503", async () => {
        const entered = new Queue<void>();
        const server = serve((app) =>
          app.routing((r) =>
            r.webSocket("/ws", (session) => void session.close(), {
              beforeUpgrade: async () => {
                entered.push();
                await delay(50);
              },
            })
          )
        );
        try {
          const answer = upgradeByFetch(`${server.origin}/ws`);
          await entered.next("the hook to run");
          server.app.dispose();
          const response = await answer;
          assert.equal(response.status, 503);
          assert.equal(await response.text(), "Cannot upgrade: the application is stopping\n");
          assert.equal(server.app.sessions, 0);
        } finally {
          await server.close();
        }
      });

      await t.step(
        "an application disposed before the request answers 503, without beforeUpgrade",
        async () => {
          let handled = 0;
          const server = serve((app) =>
            app.routing((r) => r.webSocket("/ws", () => void handled++))
          );
          try {
            server.app.dispose();
            const response = await upgradeByFetch(`${server.origin}/ws`);
            assert.equal(response.status, 503);
            assert.equal(await response.text(), "Cannot upgrade: the application is stopping\n");
            assert.deepEqual([handled, server.app.sessions], [0, 0]);
          } finally {
            await server.close();
          }
        },
      );

      await t.step(
        "ws and Deno's WebSocket talk to a webSocket route with parameters",
        async () => {
          const contexts = new Queue<RouteContext>();
          const server = serve((app) =>
            app.routing((r) =>
              r.webSocket("/rooms/:room", async (session, context) => {
                contexts.push(context);
                await session.send(`welcome to ${context.params.room}`);
                await echo(session);
              })
            )
          );
          const ws = wsClient(`${server.wsOrigin}/rooms/caf%C3%A9?x=1`);
          let deno: ReturnType<typeof denoClient> | null = null;
          try {
            assert.equal(await within(ws.opened, 5000, "ws to open"), true);
            assert.equal((await ws.messages.next()).data.toString(), "welcome to café");
            ws.ws.send("text");
            assert.deepEqual(
              [(await ws.messages.next()).data.toString(), false],
              ["text", false],
            );
            ws.ws.send(Uint8Array.of(1, 2, 3));
            const binary = await ws.messages.next();
            assert.equal(binary.isBinary, true);
            assert.deepEqual([...binary.data], [1, 2, 3]);
            const context = await contexts.next();
            assert.equal(context.url.searchParams.get("x"), "1");
            assert.equal(context.request.headers.get("upgrade"), "websocket");
            assert.ok(context.application instanceof Application);

            deno = denoClient(`${server.wsOrigin}/rooms/lobby`);
            assert.equal(await within(deno.opened, 5000, "Deno's WebSocket to open"), true);
            assert.equal(await deno.messages.next(), "welcome to lobby");
            deno.ws.send("from Deno");
            assert.equal(await deno.messages.next(), "from Deno");
            ws.ws.close(1000, "bye");
            deno.ws.close(4000, "done");
            assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
            assert.equal((await within(deno.closed, 5000, "Deno close")).code, 4000);
          } finally {
            ws.ws.terminate();
            deno?.ws.close();
            await server.close();
          }
        },
      );

      await t.step("the session closes with 1000 when the handler returns", async () => {
        const server = serve((app) =>
          app.routing((r) => r.webSocket("/once", (session) => void session.send("only this")))
        );
        const ws = wsClient(`${server.wsOrigin}/once`);
        try {
          assert.equal((await ws.messages.next()).data.toString(), "only this");
          assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      await t.step(
        "a handler that throws: the session closes with 1011, the error is reported",
        async () => {
          const reports = new Queue<unknown>();
          const server = serve(
            (app) =>
              app.routing((r) =>
                r.webSocket("/fail", async (session) => {
                  await session.send("about to fail");
                  throw new Error("handler bug");
                })
              ),
            {},
            reports,
          );
          const ws = wsClient(`${server.wsOrigin}/fail`);
          const deno = denoClient(`${server.wsOrigin}/fail`);
          try {
            assert.equal((await ws.messages.next()).data.toString(), "about to fail");
            assert.deepEqual(await within(ws.closed, 5000, "ws close"), {
              code: 1011,
              reason: "internal error",
            });
            assert.equal((await within(deno.closed, 5000, "Deno close")).code, 1011);
            for (let i = 0; i < 2; i++) {
              assert.equal(String(await reports.next("the report")), "Error: handler bug");
            }
          } finally {
            ws.ws.terminate();
            await server.close();
          }
        },
      );

      await t.step(
        "another session's WebSocketError, thrown while the session is open, is reported",
        async () => {
          // A broadcast's send to a client that left fails with that session's 1006: the
          // handler that let it through failed, though its own session is fine.
          const reports = new Queue<unknown>();
          const first = new Queue<MessageSession>();
          const server = serve(
            (app) =>
              app.routing((r) =>
                r.webSocket("/first", async (session) => {
                  first.push(session);
                  await session.closed;
                }).webSocket("/second", async (session) => {
                  const gone = await first.next("the first session");
                  await gone.closed;
                  await session.send("sending to the first");
                  await gone.send("are you there?");
                })
              ),
            {},
            reports,
          );
          const leaving = wsClient(`${server.wsOrigin}/first`);
          try {
            assert.equal(await within(leaving.opened, 5000, "the first to open"), true);
            leaving.ws.close(1000);
            await within(leaving.closed, 5000, "the first to close");
            const ws = wsClient(`${server.wsOrigin}/second`);
            try {
              assert.equal((await ws.messages.next()).data.toString(), "sending to the first");
              assert.deepEqual(await within(ws.closed, 5000, "ws close"), {
                code: 1011,
                reason: "internal error",
              });
              const report = await reports.next("the report");
              assert.ok(report instanceof WebSocketError, String(report));
              assert.match(report.message, /Cannot send/);
            } finally {
              ws.ws.terminate();
            }
          } finally {
            leaving.ws.terminate();
            await server.close();
          }
        },
      );

      await t.step("a session failure the handler sees again is not reported", async () => {
        const reports = new Queue<unknown>();
        const ended = new Queue<unknown>();
        const server = serve(
          (app) =>
            app.routing((r) =>
              r.webSocket("/small", async (session) => {
                try {
                  await echo(session);
                  ended.push("returned");
                } catch (error) {
                  ended.push(error);
                  throw error;
                }
              })
            ),
          { maxMessageSize: 8 },
          reports,
        );
        const ws = wsClient(`${server.wsOrigin}/small`);
        try {
          assert.equal(await within(ws.opened, 5000, "ws to open"), true);
          ws.ws.send("more than eight bytes");
          assert.equal((await within(ws.closed, 5000, "ws close")).code, 1009);
          const error = await ended.next("the handler to end");
          assert.ok(error instanceof WebSocketError, String(error));
          assert.equal(error.closeCode, 1009);
          await delay(50);
          await assert.rejects(reports.next("no report", 10), /Timed out/);
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      await t.step("pingInterval and timeout come from the plugin", async () => {
        const server = serve(
          (app) => app.routing((r) => r.webSocket("/ping", echo)),
          { pingInterval: 20, timeout: 2000 },
        );
        const ws = wsClient(`${server.wsOrigin}/ping`);
        try {
          // ws answers pings by itself; two in a row show the pinger runs on.
          await ws.pings.next("the first ping");
          await ws.pings.next("the second ping");
          ws.ws.close(1000);
          assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      await t.step("protocols: the plugin's, a route's own, and none agreed", async () => {
        const sessions = new Queue<MessageSession>();
        const keep = async (session: MessageSession) => {
          sessions.push(session);
          await echo(session);
        };
        const server = serve(
          (app) =>
            app.routing((r) => {
              r.webSocket("/plugin", keep);
              r.webSocket("/route", keep, { protocols: ["v2.chat"] });
            }),
          { protocols: ["v1.chat", "v2.chat"] },
        );
        const cases: [string, string[], string][] = [
          ["/plugin", ["mqtt", "v2.chat", "v1.chat"], "v2.chat"],
          ["/route", ["v1.chat", "v2.chat"], "v2.chat"],
        ];
        try {
          for (const [path, offered, agreed] of cases) {
            const ws = wsClient(`${server.wsOrigin}${path}`, offered);
            try {
              assert.equal(await within(ws.opened, 5000, `${path} to open`), true);
              assert.equal(ws.ws.protocol, agreed, path);
              assert.equal((await sessions.next()).protocol, agreed, path);
              ws.ws.close();
              await within(ws.closed, 5000, "ws close");
            } finally {
              ws.ws.terminate();
            }
          }
          // Nothing in common: the handshake agrees none, which Deno's WebSocket accepts.
          const deno = denoClient(`${server.wsOrigin}/route`, ["v1.chat"]);
          assert.equal(await within(deno.opened, 5000, "Deno's WebSocket to open"), true);
          assert.equal(deno.ws.protocol, "");
          assert.equal((await sessions.next()).protocol, "");
          deno.ws.close();
          await within(deno.closed, 5000, "Deno close");
        } finally {
          await server.close();
        }
      });

      await t.step(
        "origins: 403 for a foreign page; its own, listed and absent ones pass",
        async () => {
          const opened = new Queue<string | null>();
          const server = serve(
            (app) =>
              app.routing((r) =>
                r.webSocket("/ws", (session, { request }) => {
                  opened.push(request.headers.get("origin"));
                  return session.close().then(() => {});
                })
              ),
            { allowedOrigins: ["https://app.example"] },
          );
          const port = new URL(server.origin).port;
          const cases: [string | undefined, boolean][] = [
            [undefined, true],
            [`http://127.0.0.1:${port}`, true],
            ["https://app.example", true],
            ["https://evil.example", false],
            [`http://127.0.0.1:${Number(port) + 1}`, false],
            ["null", false],
          ];
          try {
            for (const [origin, allowed] of cases) {
              const ws = wsClient(`${server.wsOrigin}/ws`, [], origin ? { origin } : {});
              try {
                assert.equal(await within(ws.opened, 5000, `${origin}`), allowed, `${origin}`);
                if (allowed) {
                  assert.equal(await opened.next(), origin ?? null);
                } else {
                  assert.match(
                    String(ws.errors[0]),
                    /Unexpected server response: 403/,
                    `${origin}`,
                  );
                }
                await within(ws.closed, 5000, "ws close");
              } finally {
                ws.ws.terminate();
              }
            }
            const refused = await fetch(`${server.origin}/ws`, {
              headers: {
                origin: "https://evil.example",
                upgrade: "websocket",
                connection: "upgrade",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                "sec-websocket-version": "13",
              },
            });
            assert.equal(refused.status, 403);
            assert.match(await refused.text(), /^Cannot upgrade: origin "https:\/\/evil.example"/);
          } finally {
            await server.close();
          }
          const open = serve(
            (app) => app.routing((r) => r.webSocket("/ws", (session) => void session.close())),
            { allowedOrigins: "*" },
          );
          const ws = wsClient(`${open.wsOrigin}/ws`, [], { origin: "https://evil.example" });
          try {
            assert.equal(await within(ws.opened, 5000, "ws with any origin"), true);
            await within(ws.closed, 5000, "ws close");
          } finally {
            ws.ws.terminate();
            await open.close();
          }
        },
      );

      await t.step(
        "a maxFrameSize under 125 leaves control frames alone: pings and close reasons pass",
        async () => {
          const closed = Promise.withResolvers<unknown>();
          const server = serve(
            (app) =>
              app.routing((r) =>
                r.webSocket("/small", async (session) => {
                  for await (const _ of session.incoming);
                  closed.resolve(await session.closed);
                })
              ),
            { maxFrameSize: 10, maxMessageSize: 1000 },
          );
          const ws = wsClient(`${server.wsOrigin}/small`);
          try {
            assert.equal(await within(ws.opened, 5000, "ws to open"), true);
            ws.ws.ping(Buffer.alloc(50, 1));
            assert.equal((await ws.pongs.next("the pong")).length, 50);
            const reason = "a reason that is thirty bytes!";
            ws.ws.close(1000, reason);
            assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
            assert.deepEqual(await within(closed.promise, 5000, "the session's end"), {
              code: 1000,
              reason,
              wasClean: true,
            });
          } finally {
            ws.ws.terminate();
            await server.close();
          }
        },
      );

      await t.step("bufferedAmount lets a sender skip a client that does not read", async () => {
        const LIMIT = 1_048_576, SIZE = 65_536;
        const offered = Promise.withResolvers<{ sent: number; skipped: number; peak: number }>();
        const drained = Promise.withResolvers<number>();
        const server = serve((app) =>
          app.routing((r) =>
            r.webSocket("/feed", async (session) => {
              let sent = 0, skipped = 0, peak = 0;
              for (let i = 0; i < 600; i++) { // 37.5 MiB offered, past the kernel's buffers
                peak = Math.max(peak, session.bufferedAmount);
                if (session.bufferedAmount > LIMIT) skipped++;
                else {
                  session.send(new Uint8Array(SIZE)).catch(() => {});
                  sent++;
                }
                await delay(1);
              }
              offered.resolve({ sent, skipped, peak });
              for (let i = 0; i < 2000 && session.bufferedAmount > 0; i++) await delay(5);
              drained.resolve(session.bufferedAmount);
            })
          )
        );
        const ws = wsClient(`${server.wsOrigin}/feed`);
        try {
          assert.equal(await within(ws.opened, 5000, "ws to open"), true);
          ws.ws.pause();
          const { sent, skipped, peak } = await within(offered.promise, 20_000, "the offers");
          assert.ok(skipped > 0, `nothing skipped: ${sent} sent`);
          // One message (its bytes, a frame head, its keep of 1024 per write) past the limit.
          assert.ok(peak > LIMIT && peak <= LIMIT + SIZE + 2 * (14 + 1024), `peak ${peak}`);
          ws.ws.resume();
          for (let i = 0; i < sent; i++) {
            assert.equal((await ws.messages.next(`message ${i}`)).data.length, SIZE);
          }
          assert.equal(await within(drained.promise, 15_000, "the queue to drain"), 0);
          assert.equal((await within(ws.closed, 5000, "the close")).code, 1000);
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      await t.step("maxSendQueue reaches the sessions of the routes", async () => {
        const outcome = Promise.withResolvers<{ at: number; error: unknown }>();
        const server = serve(
          (app) =>
            app.routing((r) =>
              r.webSocket("/flood", async (session) => {
                outcome.resolve(await floodUntilRefused(session, 65_536));
              })
            ),
          { maxSendQueue: 1_048_576 },
        );
        const ws = wsClient(`${server.wsOrigin}/flood`);
        try {
          assert.equal(await within(ws.opened, 5000, "ws to open"), true);
          ws.ws.pause(); // the socket's buffers fill, then the session's queue
          const { error } = await within(outcome.promise, 20_000, "a send to be refused");
          assert.ok(error instanceof WebSocketError && error.closeCode === 1011, String(error));
          assert.match(error.message, /more than maxSendQueue \(1048576\)/);
          ws.ws.resume();
          const closed = await within(ws.closed, 10_000, "the close");
          assert.deepEqual(closed, { code: 1011, reason: "send queue full" });
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      if (engine.name.startsWith("native")) {
        let calls = 0;
        const beforeUpgrade = () => void calls++;
        for (
          const [what, bind, options, message] of [
            [
              "webSocketRaw",
              (r: Routing) => r.webSocketRaw("/ws", () => {}, { beforeUpgrade }),
              {},
              /raw: true/,
            ],
            [
              "masking: true",
              (r: Routing) => r.webSocket("/ws", () => {}, { beforeUpgrade }),
              { masking: true },
              /masking: true/,
            ],
          ] as const
        ) {
          await t.step(
            `${what}: each upgrade gets 501 with a body naming the wire engine, after the handshake's 400 and 403, before beforeUpgrade`,
            async () => {
              calls = 0;
              const app = new Application();
              app.install(WebSockets, options);
              app.routing(bind);
              const errors: unknown[] = [];
              const server = engine.serve(app.handler, {
                onError: (error) => (errors.push(error), new Response("no", { status: 500 })),
              });
              const ws = wsClient(`${server.wsOrigin}/ws`);
              try {
                assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
                assert.match(String(ws.errors[0]), /Unexpected server response: 501/);
                const refused = await fetch(`${server.origin}/ws`, {
                  headers: {
                    upgrade: "websocket",
                    connection: "upgrade",
                    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "sec-websocket-version": "13",
                  },
                });
                assert.equal(refused.status, 501);
                const body = await refused.text();
                assert.match(body, message);
                assert.match(body, /on the native engine: .*; use the wire engine/);
                assert.deepEqual(errors, [], "not an engine error (500)");
                // The request's own faults first, as on the wire engine.
                const foreign = wsClient(`${server.wsOrigin}/ws`, [], {
                  origin: "https://evil.example",
                });
                assert.equal(await within(foreign.opened, 5000, "ws to be refused"), false);
                assert.match(String(foreign.errors[0]), /Unexpected server response: 403/);
                const noKey = await fetch(`${server.origin}/ws`, {
                  headers: { upgrade: "websocket", connection: "upgrade" },
                });
                assert.equal(noKey.status, 400);
                await noKey.body?.cancel();
                assert.equal(calls, 0, "beforeUpgrade never ran");
              } finally {
                ws.ws.terminate();
                await server.close();
              }
            },
          );
        }
      } else {
        await t.step(
          "webSocketRaw: beforeUpgrade refuses or accepts as for webSocket",
          async () => {
            const server = serve((app) =>
              app.routing((r) =>
                r.webSocketRaw("/raw", async (session, { data }) => {
                  await session.send(Frame.text(`raw for ${data}`));
                }, {
                  beforeUpgrade: (request: Request) =>
                    request.headers.get("authorization") ?? new Response(null, { status: 401 }),
                })
              )
            );
            const refused = wsClient(`${server.wsOrigin}/raw`);
            const accepted = wsClient(`${server.wsOrigin}/raw`, [], {
              headers: { authorization: "Basic YWRhOg==" },
            });
            try {
              assert.equal(await within(refused.opened, 5000, "ws to be refused"), false);
              assert.match(String(refused.errors[0]), /Unexpected server response: 401/);
              assert.equal(
                (await accepted.messages.next()).data.toString(),
                "raw for Basic YWRhOg==",
              );
            } finally {
              refused.ws.terminate();
              accepted.ws.terminate();
              await server.close();
            }
          },
        );

        // Only here: Deno.serve does not see a client leave before the response, and an upgrade
        // answered after it left never opens nor ends, and holds Deno.serve's shutdown (Deno 2.9).
        await t.step("a client gone while beforeUpgrade runs leaves no session", async () => {
          const entered = new Queue<void>();
          let release!: () => void;
          const released = new Promise<void>((resolve) => (release = resolve));
          let handled = 0;
          const server = serve((app) =>
            app.routing((r) =>
              r.webSocket("/slow", async (session) => {
                handled++;
                for await (const _ of session.incoming);
              }, {
                beforeUpgrade: async () => {
                  entered.push();
                  await released;
                },
              })
            )
          );
          try {
            const gone = wsClient(`${server.wsOrigin}/slow`);
            await entered.next("the hook to run");
            gone.ws.terminate();
            await delay(50);
            release();
            await within(
              (async () => {
                do await delay(20); while (server.app.sessions > 0);
              })(),
              5000,
              "the session to end",
            );
            assert.ok(handled <= 1);
          } finally {
            await server.close();
          }
        });

        await t.step("webSocketRaw: the handler gets every frame, pings and close", async () => {
          const sessions = new Queue<RawWebSocketSession>();
          const server = serve(
            (app) =>
              app.routing((r) =>
                r.webSocketRaw("/raw", async (session) => {
                  sessions.push(session);
                  for await (const frame of session.incoming) {
                    if (frame.opcode === Opcode.Ping) await session.send(Frame.pong(frame.payload));
                    else if (frame.opcode === Opcode.Text) await session.send(frame);
                    else if (frame.opcode === Opcode.Close) {
                      await session.send(Frame.close(4001, "raw"));
                    }
                  }
                })
              ),
            { pingInterval: 10, maxMessageSize: 1 },
          ); // neither applies to raw routes
          const ws = wsClient(`${server.wsOrigin}/raw`);
          try {
            assert.equal(await within(ws.opened, 5000, "ws to open"), true);
            ws.ws.ping("by hand");
            assert.equal((await ws.pongs.next("the pong")).toString(), "by hand");
            ws.ws.send("a frame over maxMessageSize");
            assert.equal((await ws.messages.next()).data.toString(), "a frame over maxMessageSize");
            await delay(40);
            await assert.rejects(ws.pings.next("no ping", 10), /Timed out/);
            ws.ws.close(1000);
            assert.deepEqual(await within(ws.closed, 5000, "ws close"), {
              code: 4001,
              reason: "raw",
            });
            const closed = await within((await sessions.next()).closed, 5000, "session close");
            assert.deepEqual(closed, { code: 1000, reason: "", wasClean: true });
          } finally {
            ws.ws.terminate();
            await server.close();
          }
        });
      }

      await t.step("one path serves a page to GET and a WebSocket to an upgrade", async () => {
        const server = serve((app) =>
          app.routing((r) => {
            r.webSocket("/live", (session) => void session.send("live"));
            r.get("/live", () => new Response("the page"));
          })
        );
        const ws = wsClient(`${server.wsOrigin}/live`);
        try {
          assert.equal(await (await fetch(`${server.origin}/live`)).text(), "the page");
          assert.equal((await ws.messages.next()).data.toString(), "live");
          await within(ws.closed, 5000, "ws close");
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });

      await t.step("server shutdown closes the route's sessions with 1001", async () => {
        const server = serve((app) => app.routing((r) => r.webSocket("/ws", echo)));
        const ws = wsClient(`${server.wsOrigin}/ws`);
        try {
          assert.equal(await within(ws.opened, 5000, "ws to open"), true);
          await server.close();
          assert.equal((await within(ws.closed, 5000, "ws close")).code, 1001);
        } finally {
          ws.ws.terminate();
          await server.close();
        }
      });
    });
  }
});
