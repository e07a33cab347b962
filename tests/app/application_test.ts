// Copyright 2026 the wirestream authors. MIT license.
// Application: plugins, and the application as a fetch handler on every way of serving it:
// `deno serve` on its default export (what Deno Deploy runs), Deno.serve and httpServer.
import { Application, type Plugin, PluginError, WebSockets } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { denoServe } from "../_util/serve.ts";
import { engines } from "../_util/engines.ts";
import { dial } from "../_util/http.ts";

const FIXTURE_FILE = "tests/app/fixtures/serve_app.ts";

/** A plugin that records what it was installed with. */
function recorder(key: string): Plugin<{ n: number }, { app: Application; n: number | undefined }> {
  return { key, install: (app, options) => ({ app, n: options?.n }) };
}

Deno.test("Application", async (t) => {
  await t.step("install runs the plugin with the app and options; plugin() finds it", () => {
    const app = new Application();
    const Counter = recorder("Counter");
    assert.equal(app.pluginOrNull(Counter), null);
    const state = app.install(Counter, { n: 3 });
    assert.equal(state.app, app);
    assert.equal(state.n, 3);
    assert.equal(app.plugin(Counter), state);
    assert.equal(app.pluginOrNull(Counter), state);
    assert.equal(new Application().install(recorder("Other")).n, undefined);
  });

  await t.step("installing a plugin twice throws a PluginError naming it", () => {
    const app = new Application();
    app.install(WebSockets);
    const before = app.plugin(WebSockets);
    assert.throws(() => app.install(WebSockets, { timeout: 1 }), (error) => {
      assert.ok(error instanceof PluginError);
      assert.equal(error.key, "WebSockets");
      assert.match(error.message, /"WebSockets".*installed already/);
      return true;
    });
    assert.equal(app.plugin(WebSockets), before, "the first installation stays");
    // Another plugin object with the same key is the same plugin, as far as keys go.
    app.install(recorder("Twin"));
    assert.throws(() => app.install(recorder("Twin")), PluginError);
  });

  await t.step("plugin() throws a PluginError for a plugin not installed", () => {
    const app = new Application();
    assert.throws(() => app.plugin(WebSockets), (error) => {
      assert.ok(error instanceof PluginError);
      assert.equal(error.key, "WebSockets");
      assert.match(error.message, /not installed/);
      return true;
    });
    app.install(recorder("Shared"));
    const impostor = recorder("Shared");
    assert.throws(() => app.plugin(impostor), PluginError, "a different object under its key");
    assert.equal(app.pluginOrNull(impostor), null);
  });

  await t.step("a plugin whose install throws is not installed", () => {
    const app = new Application();
    assert.throws(() => app.install(WebSockets, { timeout: -1 }), RangeError);
    assert.equal(app.pluginOrNull(WebSockets), null);
    app.install(WebSockets, { timeout: 1 });
    assert.equal(app.plugin(WebSockets).timeout, 1);
  });

  await t.step("a plugin that installs itself gets a PluginError, not a stack overflow", () => {
    const app = new Application();
    let calls = 0;
    const Recursive: Plugin<undefined, string> = {
      key: "Recursive",
      install(application) {
        calls++;
        assert.throws(() => application.install(Recursive), (error) => {
          assert.ok(error instanceof PluginError, String(error));
          assert.equal(error.key, "Recursive");
          assert.match(error.message, /"Recursive".*installed already.*still running/);
          return true;
        });
        return "installed";
      },
    };
    assert.equal(app.install(Recursive), "installed");
    assert.equal(calls, 1);
    assert.equal(app.plugin(Recursive), "installed");
    assert.throws(() => app.install(Recursive), /installed already$/);
  });

  await t.step("a plugin whose install throws after installing itself leaves no key", () => {
    const app = new Application();
    let fail = true;
    const Flaky: Plugin<undefined, string> = {
      key: "Flaky",
      install(application) {
        if (fail) application.install(Flaky); // the PluginError propagates
        return "ok";
      },
    };
    assert.throws(() => app.install(Flaky), PluginError);
    assert.equal(app.pluginOrNull(Flaky), null);
    fail = false;
    assert.equal(app.install(Flaky), "ok", "it can be installed again");
  });

  await t.step("install rejects what is not a plugin, and bad options with TypeError", () => {
    const app = new Application();
    for (
      const bad of [null, {}, { key: 1, install() {} }, { key: "X" }, { key: "X", install: 1 }]
    ) {
      assert.throws(() => app.install(bad as never), TypeError, JSON.stringify(bad));
    }
    assert.throws(() => app.install((() => {}) as never), TypeError, "a function with no key");
    assert.throws(() => app.install("X" as never), TypeError);
    assert.throws(() => new Application({ onWebSocketError: "log" as never }), TypeError);
  });

  await t.step("a class whose key and install are static is a plugin", () => {
    class Greeter {
      static readonly key = "Greeter";
      static install(app: Application, options: { name: string } | undefined): Greeter {
        return new Greeter(app, options?.name ?? "world");
      }
      constructor(readonly app: Application, readonly name: string) {}
    }
    const app = new Application();
    const greeter = app.install(Greeter, { name: "you" });
    assert.ok(greeter instanceof Greeter);
    assert.deepEqual([greeter.app, greeter.name], [app, "you"]);
    assert.equal(app.plugin(Greeter), greeter);
    assert.throws(() => app.install(Greeter), PluginError);
  });

  await t.step("a PluginError names itself and its key", () => {
    const app = new Application();
    app.install(recorder("Named"));
    let caught: unknown;
    try {
      app.install(recorder("Named"));
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof PluginError);
    assert.equal(caught.name, "PluginError");
    assert.equal(caught.key, "Named");
    assert.match(String(caught), /^PluginError: Cannot install plugin "Named"/);
  });

  await t.step("fetch and handler are one function, bound to the app", async () => {
    const app = new Application().routing((r) => r.get("/", () => new Response("root")));
    const { fetch, handler } = app;
    assert.equal(handler, fetch);
    assert.equal(await (await fetch(new Request("http://localhost/"))).text(), "root");
    assert.equal(app.routing(() => {}), app, "routing() returns the app");
  });

  await t.step("`deno serve` serves the default export, with params and remoteAddr", async () => {
    const server = await denoServe(FIXTURE_FILE);
    try {
      const port = server.port;
      const base = `http://127.0.0.1:${port}`;
      const hello = await fetch(`${base}/hello/w%C3%B6rld`);
      assert.equal(hello.status, 200);
      assert.deepEqual(await hello.json(), { hello: "wörld", remote: "127.0.0.1" });
      const echo = await fetch(`${base}/echo`, { method: "POST", body: "body" });
      assert.equal(await echo.text(), "body");
      const refused = await fetch(`${base}/echo`);
      assert.equal(refused.status, 405);
      assert.equal(refused.headers.get("allow"), "POST, OPTIONS");
      await refused.body?.cancel();
      const missing = await fetch(`${base}/nowhere`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    } finally {
      await server.stop();
    }
  });

  for (const engine of engines) {
    await t.step(`app.handler serves on the ${engine.name}`, async () => {
      const app = new Application().routing((r) => {
        r.get("/who", (_request, { info, remoteAddr, url }) =>
          Response.json({
            host: remoteAddr?.hostname,
            completed: info?.completed instanceof Promise,
            path: url.pathname,
            query: url.searchParams.get("q"),
          }));
      });
      const server = engine.serve(app.handler);
      try {
        const response = await fetch(`${server.origin}/who?q=1`);
        assert.deepEqual(await response.json(), {
          host: "127.0.0.1",
          completed: true,
          path: "/who",
          query: "1",
        });
      } finally {
        await server.close();
      }
    });

    await t.step(`app.handler answers TRACE and TRACK 501 on the ${engine.name}`, async () => {
      // Bare Deno.serve hands them to the handler, which the routes answered 405; the wire
      // engine refuses them (cross-site tracing) before any handler.
      const app = new Application().routing((r) => r.get("/", () => new Response("page")));
      const server = engine.serve(app.handler);
      try {
        for (const method of ["TRACE", "trace", "TRACK"]) {
          const client = await dial(Number(new URL(server.origin).port));
          try {
            await client.send(
              `${method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
            );
            assert.equal((await client.next())?.status, 501, method);
          } finally {
            await client.close();
          }
        }
      } finally {
        await server.close();
      }
    });
  }
});
