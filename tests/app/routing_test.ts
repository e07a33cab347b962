// Copyright 2026 the wirestream authors. MIT license.
// Routing: binding errors in memory, then the routes of one application over real sockets on
// every engine (httpServer and Deno.serve, fetch as the client).
import { Application, HttpError, WebSockets } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { engines } from "../_util/engines.ts";

// RFC 6455 §1.3's sample key.
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** The fields of a WebSocket upgrade with `version`, and any others. */
function upgradeHeaders(version: string, more: Record<string, string> = {}): HeadersInit {
  return {
    upgrade: "websocket",
    connection: "upgrade",
    "sec-websocket-key": KEY,
    "sec-websocket-version": version,
    ...more,
  };
}

/** The application under test: a bit of everything a router must tell apart. */
function testApp(): Application {
  const app = new Application();
  app.install(WebSockets);
  return app.routing((r) => {
    r.get("/users/me", () => new Response("me")); // bound first: wins over /users/:id
    r.get("/users/:id", (_request, { params }) => Response.json(params));
    r.post(
      "/users/:id",
      async (request, { params }) =>
        Response.json({ id: params.id, body: await request.text() }, { status: 201 }),
    );
    r.put("/users/:id", () => new Response("put"));
    r.patch("/users/:id", () => new Response("patch"));
    r.delete("/users/:id", () => new Response(null, { status: 204 }));
    r.route("PURGE", "/cache/:key", (_request, { params }) => new Response(`purged ${params.key}`));
    r.get("/files/*", (_request, { params }) => Response.json(params));
    r.get("/items/:id?", (_request, { params }) => Response.json(params));
    r.get("/page", () => new Response("body of the page", { headers: { "x-route": "get" } }));
    r.head("/explicit", () => new Response(null, { headers: { "x-route": "head" } }));
    r.get("/explicit", () => new Response("get", { headers: { "x-route": "get" } }));
    r.options(
      "/cors",
      () => new Response(null, { status: 204, headers: { "access-control-allow-origin": "*" } }),
    );
    r.post("/cors", () => new Response("posted"));
    r.get("/teapot", () => {
      throw new HttpError(418, "Cannot brew: I am a teapot", { headers: { "x-pot": "1" } });
    });
    r.get("/teapot-async", () => Promise.reject(new HttpError(409, "Cannot answer: conflict")));
    r.get("/broken", () => {
      throw new Error("a bug");
    });
    r.get("/no-response", () => "text" as unknown as Response);
    r.webSocket("/chat", () => {});
    r.get("/both", () => new Response("the page"));
    r.webSocket("/both", () => {});
  });
}

Deno.test("Routing", async (t) => {
  await t.step("rejects bad methods, paths and handlers, and a route bound twice", () => {
    const app = new Application();
    const ok = () => new Response();
    const cases: [string, () => unknown][] = [
      ["a method with a space", () => app.routing((r) => r.route("GE T", "/", ok))],
      ["an empty method", () => app.routing((r) => r.route("", "/", ok))],
      // No request reaches them: both engines answer 501 first.
      ["TRACE", () => app.routing((r) => r.route("TRACE", "/", ok))],
      ["track", () => app.routing((r) => r.route("track", "/", ok))],
      ["CONNECT", () => app.routing((r) => r.route("CONNECT", "/", ok))],
      ["a path without /", () => app.routing((r) => r.get("users", ok))],
      ["a path that is not a string", () => app.routing((r) => r.get(1 as never, ok))],
      ["an invalid pattern", () => app.routing((r) => r.get("/users/(unclosed", ok))],
      ["a handler that is not a function", () => app.routing((r) => r.get("/", "hi" as never))],
    ];
    for (const [what, bind] of cases) assert.throws(bind, TypeError, what);
    app.routing((r) => r.get("/twice", ok));
    assert.throws(() => app.routing((r) => r.get("/twice", ok)), /bound already/);
    assert.throws(() => app.routing((r) => r.route("get", "/twice", ok)), /bound already/);
    app.routing((r) => r.post("/twice", ok)); // another method is another route
  });

  await t.step("matches non-ASCII paths as URLs encode them, and regexp groups", async () => {
    const app = new Application().routing((r) => {
      r.get("/café", () => new Response("café"));
      r.get("/n/:id(\\d+)", (_request, { params }) => new Response(`number ${params.id}`));
    });
    const at = (path: string) => app.fetch(new Request(`http://localhost${path}`));
    assert.equal(await (await at("/café")).text(), "café");
    assert.equal(await (await at("/caf%C3%A9")).text(), "café");
    // RFC 3986 §6.2.2.1: percent-encoded hex digits are case-insensitive.
    assert.equal(await (await at("/caf%c3%a9")).text(), "café");
    assert.equal(await (await at("/caf%C3%a9")).text(), "café");
    assert.equal(await (await at("/n/12")).text(), "number 12");
    for (const path of ["/n/ab", "/CAFÉ"]) {
      const response = await at(path);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
  });

  await t.step("matches a path bound with lower-case escapes, as requests have them", async () => {
    // A review: the request's escapes were upper-cased and the pattern's kept, so a route
    // bound as /a%2fb or /caf%c3%a9 matched nothing, not even the same bytes.
    const app = new Application().routing((r) => {
      r.get("/a%2fb", () => new Response("a/b"));
      r.get("/caf%c3%a9", () => new Response("café"));
      // In a regexp group too, but for a character class: a review found [%abcdef0-9]
      // had become [%ABcdef0-9], and another that (caf%c3%a9) had then stopped matching.
      r.get("/files/:name(%c3%a9.*)", (_request, { params }) => new Response(params.name));
      r.get("/x/:p(caf%c3%a9)", (_request, { params }) => new Response(params.p));
      r.get("/hex/:h([%abcdef0-9]+)", (_request, { params }) => new Response(params.h));
      // An escaped `%` is a literal `%`, and so still begins an escape.
      r.get("/b/\\%c3%a9", () => new Response("b é"));
    });
    const at = (path: string) => app.fetch(new Request(`http://localhost${path}`));
    for (const path of ["/a%2fb", "/a%2Fb"]) assert.equal(await (await at(path)).text(), "a/b");
    for (const path of ["/caf%c3%a9", "/caf%C3%A9", "/café"]) {
      assert.equal(await (await at(path)).text(), "café", path);
    }
    assert.equal(await (await at("/files/%c3%a9t%c3%a9")).text(), "été");
    for (const path of ["/x/caf%c3%a9", "/x/caf%C3%A9", "/x/café"]) {
      assert.equal(await (await at(path)).text(), "café", path);
    }
    assert.equal(await (await at("/hex/ab12")).text(), "ab12");
    for (const path of ["/b/%c3%a9", "/b/%C3%A9", "/b/é"]) {
      assert.equal(await (await at(path)).text(), "b é", path);
    }
    const upper = await at("/hex/AB");
    assert.equal(upper.status, 404);
    await upper.body?.cancel();
    // The same path in either case is bound once.
    assert.throws(() => app.routing((r) => r.get("/a%2Fb", () => new Response())), /bound already/);
  });

  await t.step("answers 404, not 405, on a path that only OPTIONS routes match", async () => {
    // A review: a CORS catch-all (options "/*") turned every 404 into "405 Allow: OPTIONS".
    const app = new Application().routing((r) => {
      r.options("/*", () => new Response(null, { status: 204, headers: { "x-cors": "yes" } }));
      r.get("/api/items", () => new Response("items"));
    });
    const at = (path: string, method = "GET") =>
      app.fetch(new Request(`http://localhost${path}`, { method }));
    const typo = await at("/typo");
    assert.equal(typo.status, 404);
    assert.match(await typo.text(), /no route matches the path/);
    assert.equal((await at("/typo", "OPTIONS")).headers.get("x-cors"), "yes");
    const removed = await at("/api/items", "DELETE");
    assert.equal(removed.status, 405);
    assert.equal(removed.headers.get("allow"), "OPTIONS, GET, HEAD");
    await removed.body?.cancel();
  });

  await t.step("upper-cases the methods Request upper-cases, and only those", async () => {
    const app = new Application().routing((r) => {
      r.route("get", "/a", () => new Response("GET"));
      r.route("patch", "/a", () => new Response("lower patch"));
    });
    const get = await app.fetch(new Request("http://localhost/a", { method: "get" }));
    assert.equal(await get.text(), "GET");
    // Request keeps "patch" as is (Fetch normalizes six methods), and so does the route.
    const patch = await app.fetch(new Request("http://localhost/a", { method: "patch" }));
    assert.equal(await patch.text(), "lower patch");
    const upper = await app.fetch(new Request("http://localhost/a", { method: "PATCH" }));
    assert.equal(upper.status, 405);
    assert.equal(upper.headers.get("allow"), "GET, patch, HEAD, OPTIONS");
    await upper.body?.cancel();
  });

  await t.step(
    "answers HEAD with the first GET route that matches; Allow names each once",
    async () => {
      // Two GET routes match /users/me: HEAD must take the first, as GET does.
      const app = new Application().routing((r) => {
        r.get("/users/me", () => new Response("me", { headers: { "x-route": "me" } }));
        r.get("/users/:id", () => new Response("id", { headers: { "x-route": "id" } }));
        r.delete("/users/:id", () => new Response(null, { status: 204 }));
      });
      const at = (method: string) =>
        app.fetch(new Request("http://localhost/users/me", { method }));
      const head = await at("HEAD");
      assert.equal(head.headers.get("x-route"), "me");
      await head.body?.cancel();
      const post = await at("POST");
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, DELETE, HEAD, OPTIONS");
      await post.body?.cancel();
    },
  );

  for (const engine of engines) {
    const app = testApp();
    await t.step(`on the ${engine.name}`, async (t) => {
      const errors: unknown[] = [];
      const server = engine.serve(app.handler, {
        onError: (error) => {
          errors.push(error);
          return new Response("failed", { status: 500 });
        },
      });
      const at = (path: string, init?: RequestInit) => fetch(server.origin + path, init);
      try {
        await t.step("passes the path's parameters, percent-decoded", async () => {
          assert.deepEqual(await (await at("/users/42")).json(), { id: "42" });
          assert.deepEqual(await (await at("/users/J%C3%B6rg")).json(), { id: "Jörg" });
          assert.deepEqual(await (await at("/users/a%2Fb")).json(), { id: "a/b" });
          assert.deepEqual(await (await at("/files/a/b.txt")).json(), { "0": "a/b.txt" });
          assert.deepEqual(await (await at("/items/7")).json(), { id: "7" });
          assert.deepEqual(await (await at("/items")).json(), {}, "an absent optional parameter");
        });

        await t.step("answers 400 for a parameter that is not valid percent-encoding", async () => {
          const response = await at("/users/%E0%A4%A");
          assert.equal(response.status, 400);
          assert.match(await response.text(), /^Cannot route: parameter id is not valid/);
        });

        await t.step("takes the first route bound that matches", async () => {
          assert.equal(await (await at("/users/me")).text(), "me");
        });

        await t.step("routes by method: POST with a body, PUT, PATCH, DELETE, PURGE", async () => {
          const created = await at("/users/7", { method: "POST", body: "hello" });
          assert.equal(created.status, 201);
          assert.deepEqual(await created.json(), { id: "7", body: "hello" });
          assert.equal(await (await at("/users/7", { method: "PUT", body: "x" })).text(), "put");
          assert.equal(
            await (await at("/users/7", { method: "PATCH", body: "x" })).text(),
            "patch",
          );
          const deleted = await at("/users/7", { method: "DELETE" });
          assert.equal(deleted.status, 204);
          await deleted.body?.cancel();
          assert.equal(await (await at("/cache/k1", { method: "PURGE" })).text(), "purged k1");
        });

        await t.step("answers 404 when no route matches the path", async () => {
          for (const path of ["/nowhere", "/users", "/users/1/more", "/page/"]) {
            const response = await at(path);
            assert.equal(response.status, 404, path);
            assert.equal(response.headers.get("allow"), null, path);
            assert.match(await response.text(), /^Cannot route: no route matches/, path);
          }
          // The method does not matter to a 404.
          const posted = await at("/nowhere", { method: "POST", body: "x" });
          assert.equal(posted.status, 404);
          await posted.body?.cancel();
        });

        await t.step("answers 405 with Allow listing the path's methods", async () => {
          const cases: [string, string, string][] = [
            ["/users/7", "QUERY", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"],
            ["/page", "POST", "GET, HEAD, OPTIONS"],
            ["/cache/k", "GET", "PURGE, OPTIONS"],
            ["/cors", "GET", "OPTIONS, POST"],
            // A WebSocket route answers HEAD as it answers a GET without an upgrade (a review:
            // HEAD got 405 where GET got 400; RFC 9110 §9.3.2).
            ["/chat", "POST", "GET, HEAD, OPTIONS"],
          ];
          for (const [path, method, allow] of cases) {
            const response = await at(path, { method });
            assert.equal(response.status, 405, `${method} ${path}`);
            assert.equal(response.headers.get("allow"), allow, `${method} ${path}`);
            assert.match(await response.text(), /^Cannot route: method ".*" is not allowed/);
          }
        });

        await t.step("answers HEAD with the GET route, without its body", async () => {
          const response = await at("/page", { method: "HEAD" });
          assert.equal(response.status, 200);
          assert.equal(response.headers.get("x-route"), "get");
          assert.equal(await response.text(), "");
          const explicit = await at("/explicit", { method: "HEAD" });
          assert.equal(explicit.headers.get("x-route"), "head", "a HEAD route wins over GET");
          await explicit.body?.cancel();
          assert.equal(await (await at("/explicit")).text(), "get");
          const ws = await at("/chat", { method: "HEAD" });
          assert.equal(ws.status, 400, "a WebSocket route answers HEAD as a GET without upgrade");
          assert.equal(await ws.text(), "");
          // And as the same GET with another version: 426 (a review found 400 there).
          const version = await at("/chat", {
            method: "HEAD",
            headers: upgradeHeaders("8"),
          });
          assert.equal(version.status, 426);
          assert.equal(version.headers.get("sec-websocket-version"), "13");
          await version.body?.cancel();
          const whole = await at("/chat", {
            method: "HEAD",
            headers: upgradeHeaders("13"),
          });
          assert.equal(whole.status, 400, "a HEAD never upgrades");
          await whole.body?.cancel();
        });

        await t.step(
          "answers OPTIONS with 204 and Allow, unless an options route is bound",
          async () => {
            const response = await at("/users/7", { method: "OPTIONS" });
            assert.equal(response.status, 204);
            assert.equal(
              response.headers.get("allow"),
              "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
            );
            assert.equal(await response.text(), "");
            const bound = await at("/cors", { method: "OPTIONS" });
            assert.equal(bound.status, 204);
            assert.equal(bound.headers.get("access-control-allow-origin"), "*");
            assert.equal(bound.headers.get("allow"), null, "the route's own answer");
            await bound.body?.cancel();
            const missing = await at("/nowhere", { method: "OPTIONS" });
            assert.equal(missing.status, 404);
            await missing.body?.cancel();
          },
        );

        await t.step(
          "answers an HttpError thrown or rejected with its status and headers",
          async () => {
            const thrown = await at("/teapot");
            assert.equal(thrown.status, 418);
            assert.equal(thrown.headers.get("x-pot"), "1");
            assert.equal(await thrown.text(), "Cannot brew: I am a teapot\n");
            const rejected = await at("/teapot-async");
            assert.equal(rejected.status, 409);
            await rejected.body?.cancel();
          },
        );

        await t.step("leaves other errors to the engine: 500", async () => {
          const broken = await at("/broken");
          assert.equal(broken.status, 500);
          assert.equal(await broken.text(), "failed");
          const wrong = await at("/no-response");
          assert.equal(wrong.status, 500);
          await wrong.body?.cancel();
          assert.deepEqual(errors.map(String), [
            "Error: a bug",
            'TypeError: Route GET "/no-response" did not return a Response',
          ]);
        });

        await t.step(
          "answers a GET to a WebSocket route without an upgrade from the handshake",
          async () => {
            const plain = await at("/chat");
            assert.equal(plain.status, 400);
            assert.match(await plain.text(), /^Cannot upgrade: Upgrade does not hold websocket/);
            // The page and the WebSocket on one path: a GET without an upgrade gets the page.
            assert.equal(await (await at("/both")).text(), "the page");
            const version = await at("/chat", {
              headers: upgradeHeaders("8"),
            });
            assert.equal(version.status, 426);
            assert.equal(version.headers.get("sec-websocket-version"), "13");
            assert.equal(version.headers.get("upgrade"), "websocket"); // RFC 9110 §15.5.22
            await version.body?.cancel();
            const extensions = await at("/chat", {
              headers: upgradeHeaders("13", {
                "sec-websocket-extensions": 'permessage-deflate; x="not a token"',
              }),
            });
            assert.equal(extensions.status, 400, "RFC 6455 §9.1: malformed offers fail");
            assert.match(await extensions.text(), /Sec-WebSocket-Extensions/);
          },
        );
      } finally {
        await server.close();
      }
    });
  }
});
