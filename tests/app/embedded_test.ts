// Copyright 2026 the wirestream authors. MIT license.
// embeddedServer on both engines over 127.0.0.1: routes through fetch, WebSocket routes with
// npm:ws, graceful stop and the parent signal (sessions get 1001), and hot reload of a module
// file that the test really rewrites.
import {
  type Application,
  embeddedServer,
  NativeEngine,
  WebSockets,
  WireEngine,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { deferred, delay, drain, endlessEvents, within } from "../_util/async.ts";
import { wsClient } from "../_util/clients.ts";
import { Queue } from "../_util/ws.ts";

/**
 * Either engine, chosen at run time: the union is what these tests pass to embeddedServer, so
 * `deno check` checks that it type-checks (it failed with TS2345 while the engines' onError
 * differed, /tmp/review-user/types2b.ts).
 */
type AnyEngine = typeof WireEngine | typeof NativeEngine;

const ENGINES: AnyEngine[] = [WireEngine, NativeEngine];
/** The engines whose WebSocket routes are tested here: both. */
const WS_ENGINES: AnyEngine[] = [WireEngine, NativeEngine];

/** A module with a page, an echo route tagged with `tag`, and a WebSocket echo. */
function moduleTagged(tag: string) {
  return (app: Application) => {
    app.install(WebSockets);
    app.routing((r) => {
      r.get("/", () => new Response(tag));
      r.webSocket("/ws", async (session) => {
        for await (const message of session.incoming) {
          await session.send(`${tag}:${typeof message === "string" ? message : message.length}`);
        }
      });
    });
  };
}

const listen = { hostname: "127.0.0.1", port: 0, onListen() {} } as const;

/**
 * A module file in a new temporary directory, served by `engine` with `watchPaths` on it:
 * `reload(source)` rewrites the file and gives the reload's outcome (`onReload`'s argument).
 * Disposing it stops the server and removes the directory.
 */
async function reloading(engine: AnyEngine, source: string) {
  const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
  const file = `${dir}/app.ts`;
  await Deno.writeTextFile(file, source);
  let reloaded = deferred<unknown>();
  const server = embeddedServer(engine, {
    ...listen,
    watchPaths: [dir],
    reloadDelay: 20,
    onReload: (error) => reloaded.resolve(error),
  }, file);
  const { port } = await server.start();
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    async reload(next: string): Promise<unknown> {
      reloaded = deferred<unknown>();
      await Deno.writeTextFile(file, next);
      return await within(reloaded.promise, 10_000, "the reload");
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await within(server.stop(), 5000, "stop()");
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("embeddedServer", async (t) => {
  for (const engine of ENGINES) {
    await t.step(`${engine.name}: serves the module's routes and stops gracefully`, async () => {
      const server = embeddedServer(engine, listen, moduleTagged("one"));
      assert.deepEqual([server.addr, server.application], [null, null], "not started yet");
      const addr = await server.start();
      try {
        assert.equal(server.addr?.port, addr.port);
        assert.ok(server.application !== null);
        const response = await fetch(`http://127.0.0.1:${addr.port}/`);
        assert.equal(await response.text(), "one");
        const missing = await fetch(`http://127.0.0.1:${addr.port}/nothing`);
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
        await assert.rejects(server.start(), /started already/);
      } finally {
        await within(server.stop(), 5000, "stop()");
      }
      await within(server.finished, 1000, "finished");
      await assert.rejects(fetch(`http://127.0.0.1:${addr.port}/`), TypeError);
      await server.stop(); // again: the same
    });

    await t.step(
      `${engine.name}: configure edits the engine's settings; onError gets the request`,
      async () => {
        let configured: unknown = null;
        const server = embeddedServer(engine, {
          ...listen,
          configure: (config) => {
            configured = config;
            config.onError = (error, request) =>
              new Response(`handled ${error} at ${new URL(request.url).pathname}`, {
                status: 599,
              });
            // @ts-expect-error: only the native engine has reusePort, and this may be the wire one
            config.reusePort;
          },
        }, (app) => app.routing((r) => r.get("/boom", () => Promise.reject(new Error("boom")))));
        const { port } = await server.start();
        try {
          assert.deepEqual(Object.keys(configured as object), ["onError"]);
          const response = await fetch(`http://127.0.0.1:${port}/boom`);
          assert.equal(response.status, 599);
          assert.equal(await response.text(), "handled Error: boom at /boom");
        } finally {
          await server.stop();
        }
      },
    );
  }

  for (const how of ["stop()", "the parent signal"]) {
    await t.step(
      `wire engine: ${how} cuts a response that streams without end after stopTimeout`,
      async () => {
        const parent = new AbortController();
        const events = endlessEvents(100);
        const server = embeddedServer(WireEngine, {
          ...listen,
          signal: parent.signal,
          stopTimeout: 300,
        }, (app) => app.routing((r) => r.get("/events", () => new Response(events.body))));
        const { port } = await server.start();
        const client = new AbortController(); // ends the read if the server does not
        const response = await fetch(`http://127.0.0.1:${port}/events`, { signal: client.signal });
        const reading = drain(response.body!);
        try {
          await delay(150); // the client reads a few events
          const started = Date.now();
          if (how === "stop()") void server.stop();
          else parent.abort();
          await within(server.finished, 300 + 1000, "finished after stopTimeout");
          const took = Date.now() - started;
          assert.ok(took >= 250, `not before stopTimeout: ${took} ms`);
          assert.match(await within(reading, 1000, "the client's read to end"), /done|error/);
          await within(events.cancelled, 1000, "the body stream to be cancelled");
        } finally {
          client.abort();
          await reading;
          await within(server.stop(), 2000, "").catch(() => {});
        }
      },
    );
  }

  await t.step(
    "native engine: a streaming response that ends on the application's signal lets stop() finish",
    async () => {
      // Deno.serve cannot cut it (see stopTimeout): the documented way is to end it on dispose.
      const server = embeddedServer(
        NativeEngine,
        { ...listen, stopTimeout: 300 },
        (app) =>
          app.routing((r) =>
            r.get("/events", () => {
              const events = endlessEvents(100);
              const reader = events.body.getReader();
              const body = new ReadableStream<Uint8Array>({
                async pull(controller) {
                  const { done, value } = await reader.read();
                  if (done) controller.close();
                  else controller.enqueue(value);
                },
                cancel: () => reader.cancel(),
              });
              app.signal.addEventListener("abort", () => void reader.cancel(), { once: true });
              return new Response(body);
            })
          ),
      );
      const { port } = await server.start();
      const client = new AbortController();
      const response = await fetch(`http://127.0.0.1:${port}/events`, { signal: client.signal });
      const reading = drain(response.body!);
      try {
        await delay(150);
        await within(server.stop(), 1300, "stop()");
        assert.match(await within(reading, 1000, "the client's read to end"), /done|error/);
      } finally {
        client.abort();
        await reading;
        await within(server.stop(), 2000, "").catch(() => {});
      }
    },
  );

  for (const engine of WS_ENGINES) {
    await t.step(
      `${engine.name}: onWebSocketError reaches the applications it builds`,
      async () => {
        const reports = new Queue<[unknown, string]>();
        const server = embeddedServer(engine, {
          ...listen,
          onWebSocketError: (error, request) =>
            reports.push([error, new URL(request.url).pathname]),
        }, (app) => {
          app.install(WebSockets);
          app.routing((r) => r.webSocket("/fail", () => Promise.reject(new Error("handler bug"))));
        });
        const { port } = await server.start();
        const client = wsClient(`ws://127.0.0.1:${port}/fail`);
        const printed: unknown[] = [];
        const print = console.error;
        console.error = (...args) => void printed.push(args); // the default reporter's way out
        try {
          assert.equal((await within(client.closed, 5000, "the close")).code, 1011);
          const [error, path] = await reports.next("the report");
          assert.equal(String(error), "Error: handler bug");
          assert.equal(path, "/fail");
          assert.deepEqual(printed, []);
        } finally {
          console.error = print;
          client.ws.terminate();
          await server.stop();
        }
      },
    );

    for (const how of ["stop()", "the parent signal"]) {
      await t.step(`${engine.name}: ${how} closes WebSocket sessions with 1001`, async () => {
        const parent = new AbortController();
        const server = embeddedServer(
          engine,
          { ...listen, signal: parent.signal },
          moduleTagged("s"),
        );
        const { port } = await server.start();
        const client = wsClient(`ws://127.0.0.1:${port}/ws`);
        try {
          assert.equal(await within(client.opened, 5000, "open"), true);
          client.ws.send("hi");
          assert.equal(String((await client.messages.next()).data), "s:hi");
          if (how === "stop()") await within(server.stop(), 5000, "stop()");
          else parent.abort();
          // The session's own close frame, on both engines: Deno.serve's shutdown once closed
          // the socket first with its own ("Server shutting down").
          assert.deepEqual(await within(client.closed, 5000, "the close"), {
            code: 1001,
            reason: "going away",
          });
          await within(server.finished, 5000, "finished");
        } finally {
          client.ws.terminate();
          await server.stop();
        }
      });
    }
  }

  await t.step(
    "a signal aborted before start: start rejects with the reason as cause, the server is finished",
    async () => {
      const reason = new Error("user navigated away");
      const server = embeddedServer(
        WireEngine,
        { ...listen, signal: AbortSignal.abort(reason) },
        () => {},
      );
      await assert.rejects(server.start(), (error) => {
        assert.ok(error instanceof Error);
        assert.equal(error.message, "Cannot start: the signal was aborted");
        assert.equal(error.cause, reason);
        return true;
      });
      await within(server.finished, 1000, "finished");
    },
  );

  for (const how of ["stop()", "the parent signal"]) {
    await t.step(
      `${how} while the module loads: start rejects with AbortError and nothing listens`,
      async () => {
        const parent = new AbortController();
        const loading = deferred<void>();
        const entered = deferred<void>();
        let listened = false;
        const server = embeddedServer(WireEngine, {
          ...listen,
          signal: parent.signal,
          onListen: () => void (listened = true),
        }, async () => {
          entered.resolve();
          await loading.promise;
        });
        const starting = server.start();
        await within(entered.promise, 1000, "the module to load");
        const stopping = how === "stop()" ? server.stop() : (parent.abort(), server.finished);
        loading.resolve();
        await assert.rejects(
          within(starting, 1000, "start()"),
          (e) =>
            e instanceof DOMException && e.name === "AbortError" &&
            /while starting/.test(e.message),
        );
        await within(stopping, 1000, "the stop");
        assert.equal(listened, false, "the engine never started");
        assert.equal(server.addr, null);
        assert.equal(
          server.application?.signal.aborted ?? true,
          true,
          "the application is disposed",
        );
      },
    );
  }

  await t.step("a port in use: start rejects, the module's application is disposed", async () => {
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    let app: Application | null = null;
    const server = embeddedServer(WireEngine, { ...listen, port: taken.addr.port }, (a) => {
      app = a;
    });
    await assert.rejects(server.start(), Deno.errors.AddrInUse);
    assert.equal((app as Application | null)?.signal.aborted, true);
    await within(server.finished, 1000, "finished");
    await assert.rejects(server.start(), /Cannot start: the server was stopped already/);
  });

  await t.step(
    "a watched path that does not exist fails start before anything listens",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "wirestream_embedded_" });
      try {
        const file = `${dir}/app.ts`;
        await Deno.writeTextFile(file, "export default () => {};\n");
        const server = embeddedServer(
          WireEngine,
          { ...listen, watchPaths: [`${dir}/missing`] },
          file,
        );
        await assert.rejects(server.start(), Deno.errors.NotFound);
        assert.equal(server.addr, null, "nothing listens");
        await within(server.finished, 1000, "finished");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("stop() during a reload waits for it, and disposes what it made", async () => {
    // A stop that came while a module was loading resolved at once, and the application the
    // reload made was disposed later, after `finished` had said every one was.
    const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
    const file = `${dir}/app.ts`;
    await Deno.writeTextFile(file, "export default () => {};\n");
    const server = embeddedServer(
      WireEngine,
      { ...listen, watchPaths: [dir], reloadDelay: 20 },
      file,
    );
    const made = globalThis as { wirestreamSlowReload?: { signal: AbortSignal } };
    try {
      await server.start();
      await Deno.writeTextFile(
        file,
        "export default async (app) => {\n" +
          "  await new Promise((resolve) => setTimeout(resolve, 400));\n" +
          "  globalThis.wirestreamSlowReload = app;\n};\n",
      );
      await delay(150); // the reload is under way, its module configuring
      await within(server.stop(), 5000, "stop()");
      assert.equal(made.wirestreamSlowReload?.signal.aborted, true, "the reload's application");
      await within(server.finished, 1000, "finished");
    } finally {
      delete made.wirestreamSlowReload;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("stop() during a reload longer than stopTimeout keeps to stopTimeout", async () => {
    // The reload's wait took a stopTimeout of its own before the engine's shutdown took
    // another: 2 s for a stopTimeout of 1 s, with nothing disposed meanwhile.
    const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
    const file = `${dir}/app.ts`;
    const hooks = globalThis as {
      wirestreamGate?: Promise<void>;
      wirestreamGatedReload?: { signal: AbortSignal };
    };
    const gate = deferred<void>();
    hooks.wirestreamGate = gate.promise;
    // An endless response in flight: the engine's shutdown waits the whole stopTimeout too.
    await Deno.writeTextFile(
      file,
      "export default (app) => app.routing((r) => r.get('/stream', () => {\n" +
        "  let timer;\n  const tick = new TextEncoder().encode('tick\\n');\n" +
        "  return new Response(new ReadableStream({\n" +
        "    start(c) { c.enqueue(tick); timer = setInterval(() => c.enqueue(tick), 50); },\n" +
        "    cancel() { clearInterval(timer); },\n  }));\n}));\n",
    );
    const server = embeddedServer(
      WireEngine,
      { ...listen, watchPaths: [dir], reloadDelay: 20, stopTimeout: 500 },
      file,
    );
    let stream: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const { port } = await server.start();
      const first = server.application!;
      stream = (await fetch(`http://127.0.0.1:${port}/stream`)).body!.getReader();
      await stream.read();
      await Deno.writeTextFile(
        file,
        "export default async (app) => {\n  await globalThis.wirestreamGate;\n" +
          "  globalThis.wirestreamGatedReload = app;\n};\n",
      );
      await delay(150); // the reload waits at the gate
      const started = performance.now();
      await within(server.stop(), 2000, "stop()");
      const took = performance.now() - started;
      // Twice the stopTimeout before; a margin for a loaded machine short of that.
      assert.ok(took < 500 + 350, `stop() took ${Math.round(took)} ms for a stopTimeout of 500`);
      assert.equal(first.signal.aborted, true, "the application serving was disposed at once");
      gate.resolve(); // the reload finishes late, sees the stop, and disposes what it made
      await delay(50);
      assert.equal(hooks.wirestreamGatedReload?.signal.aborted, true);
    } finally {
      await stream?.cancel().catch(() => {});
      gate.resolve();
      delete hooks.wirestreamGate;
      delete hooks.wirestreamGatedReload;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("without onReload, a failed reload is printed and a good one is not", async () => {
    const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
    const file = `${dir}/app.ts`;
    const source = (tag: string) =>
      `export default (app) => app.routing((r) => r.get("/", () => new Response("${tag}")));\n`;
    await Deno.writeTextFile(file, source("v1"));
    const printed: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void printed.push(args);
    const server = embeddedServer(
      WireEngine,
      { ...listen, watchPaths: [file], reloadDelay: 20 },
      file,
    );
    /** Waits (polling) until `done` holds, for at most 10 s. */
    const until = async (done: () => boolean, what: string) => {
      for (const start = Date.now(); !done();) {
        if (Date.now() - start > 10_000) assert.fail(`timed out waiting for ${what}`);
        await delay(10);
      }
    };
    try {
      const { port } = await server.start();
      const first = server.application;
      await Deno.writeTextFile(file, source("v2"));
      await until(() => server.application !== first, "the good reload");
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2");
      assert.deepEqual(printed, [], "a good reload printed something");
      await Deno.writeTextFile(file, "export default (app) => {\n");
      await until(() => printed.length > 0, "the failed reload's report");
      assert.equal(printed.length, 1);
      assert.equal(printed[0]![0], "Reload failed; the previous application serves on:");
      const reported = printed[0]![1] as object;
      assert.ok(reported instanceof Error, String(reported));
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2");
    } finally {
      console.error = original;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("an onReload that throws is reported, and later reloads still happen", async () => {
    const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
    const file = `${dir}/app.ts`;
    const source = (tag: string) =>
      `export default (app) => app.routing((r) => r.get("/", () => new Response("${tag}")));\n`;
    await Deno.writeTextFile(file, source("v1"));
    const reports: unknown[] = [];
    let reloaded = deferred<void>();
    const original = console.error;
    console.error = (...args: unknown[]) => void reports.push(args[0]);
    const server = embeddedServer(WireEngine, {
      ...listen,
      watchPaths: [dir],
      reloadDelay: 50,
      onReload: () => {
        reloaded.resolve();
        throw new Error("a reporter's bug");
      },
    }, file);
    try {
      const { port } = await server.start();
      const first = server.application!;
      await Deno.writeTextFile(file, source("v2"));
      await within(reloaded.promise, 10_000, "the first reload");
      assert.equal(first.signal.aborted, true, "replaced with no session open: disposed");
      reloaded = deferred<void>();
      await Deno.writeTextFile(file, source("v3"));
      await within(reloaded.promise, 10_000, "the second reload");
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v3");
      assert.equal(reports.filter((r) => r === "onReload failed:").length, 2);
    } finally {
      console.error = original;
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "watchPaths on a file: atomic saves (a temporary file renamed over it) and an in-place write each reload",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
      const file = `${dir}/app.ts`;
      const source = (tag: string) =>
        `export default (app) => app.routing((r) => r.get("/", () => new Response("${tag}")));\n`;
      await Deno.writeTextFile(file, source("v0"));
      let reloaded = deferred<unknown>();
      const server = embeddedServer(WireEngine, {
        ...listen,
        watchPaths: [file],
        reloadDelay: 20,
        onReload: (error) => reloaded.resolve(error),
      }, file);
      try {
        const { port } = await server.start();
        const check = async (tag: string, how: string) => {
          assert.equal(await within(reloaded.promise, 5000, `the reload after ${how}`), null);
          reloaded = deferred<unknown>();
          assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), tag, how);
        };
        for (const tag of ["v1", "v2", "v3"]) {
          await Deno.writeTextFile(`${file}.tmp`, source(tag));
          await Deno.rename(`${file}.tmp`, file);
          await check(tag, `the atomic save of ${tag}`);
        }
        await Deno.writeTextFile(file, source("v4"));
        await check("v4", "the in-place write of v4");
        // A file beside it is not watched.
        await Deno.writeTextFile(`${dir}/other.ts`, "export {};\n");
        await assert.rejects(within(reloaded.promise, 300, "no reload"), /Timed out/);
      } finally {
        await within(server.stop(), 5000, "stop()");
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("a module that throws fails start", async () => {
    const server = embeddedServer(WireEngine, listen, () => {
      throw new RangeError("bad module");
    });
    await assert.rejects(server.start(), RangeError);
    await within(server.finished, 1000, "finished");
  });

  await t.step("bad options throw at once", () => {
    assert.throws(
      () => embeddedServer(WireEngine, { ...listen, watchPaths: ["."] }, () => {}),
      (e) => e instanceof TypeError && /specifier/.test(e.message),
    );
    assert.throws(
      () => embeddedServer(WireEngine, { ...listen, reloadDelay: -1 }, () => {}),
      RangeError,
    );
    assert.throws(
      () => embeddedServer(WireEngine, { ...listen, stopTimeout: NaN }, () => {}),
      /stopTimeout/,
    );
    assert.throws(
      // @ts-expect-error: not a module
      () => embeddedServer(WireEngine, listen, 42),
      TypeError,
    );
    assert.throws(
      // @ts-expect-error: not a function
      () => embeddedServer(WireEngine, { ...listen, onWebSocketError: "console" }, () => {}),
      /Invalid onWebSocketError: it is not a function/,
    );
  });

  await t.step(
    "a module specifier may export its function as `module` instead of default",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "wirestream_embedded_" });
      try {
        const file = `${dir}/named.ts`;
        await Deno.writeTextFile(
          file,
          'export const module = (app) => app.routing((r) => r.get("/", () => new Response("named")));\n',
        );
        const server = embeddedServer(WireEngine, listen, file);
        await server.start();
        try {
          const response = await fetch(`http://127.0.0.1:${server.addr!.port}/`);
          assert.equal(await response.text(), "named");
        } finally {
          await server.stop();
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step(
    "a module specifier without a module function fails start with TypeError",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "wirestream_embedded_" });
      try {
        const file = `${dir}/empty.ts`;
        await Deno.writeTextFile(file, "export const nothing = 1;\n");
        const server = embeddedServer(WireEngine, listen, file);
        await assert.rejects(
          server.start(),
          (e) => e instanceof TypeError && /exports no/.test(e.message),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  for (const engine of ENGINES) {
    await t.step(
      `${engine.name}: a reload keeps the application of a response still streaming, and disposes it after`,
      async () => {
        // An event stream that ends on app.signal, as the stopTimeout docs advise: a reload
        // must not end it (the application is kept while its response streams), a stop does.
        const source = (tag: string) =>
          `export default (app) => app.routing((r) => {\n` +
          `  r.get("/", () => new Response(${JSON.stringify(tag)}));\n` +
          `  r.get("/events", () => {\n` +
          `    const encoder = new TextEncoder();\n` +
          `    let timer, onAbort;\n` +
          `    const stop = () => {\n` +
          `      clearInterval(timer);\n` +
          `      app.signal.removeEventListener("abort", onAbort);\n` +
          `    };\n` +
          `    return new Response(new ReadableStream({\n` +
          `      start(c) {\n` +
          `        timer = setInterval(() => c.enqueue(encoder.encode("data: ${tag}\\n\\n")), 20);\n` +
          `        onAbort = () => {\n` +
          `          stop();\n` +
          `          c.enqueue(encoder.encode("data: bye\\n\\n"));\n` +
          `          c.close();\n` +
          `        };\n` +
          `        app.signal.addEventListener("abort", onAbort);\n` +
          `      },\n` +
          `      cancel: stop,\n` +
          `    }), { headers: { "content-type": "text/event-stream" } });\n` +
          `  });\n` +
          `});\n`;
        await using served = await reloading(engine, source("v1"));
        const first = served.server.application!;
        const events = await fetch(`${served.origin}/events`);
        const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
        assert.equal(await served.reload(source("v2")), null);
        assert.equal(await (await fetch(`${served.origin}/`)).text(), "v2");
        assert.equal(first.signal.aborted, false, "kept while its response streams");
        let text = "";
        while (!text.endsWith("data: v1\n\n") || text.length < 100) {
          const { done, value } = await within(reader.read(), 5000, "an event");
          assert.equal(done, false, `the stream went on after the reload: ${text}`);
          text += value;
        }
        assert.doesNotMatch(text, /bye/);
        await reader.cancel();
        // Done with: the next reload disposes it (the engine sees the response done first).
        await delay(100);
        assert.equal(await served.reload(source("v3")), null);
        assert.equal(first.signal.aborted, true, "disposed once its response was done");
      },
    );
  }

  for (const engine of ENGINES) {
    await t.step(
      `${engine.name}: a reload disposes the application of a long poll, which then answers`,
      async () => {
        // Deno.serve settles info.completed only once the handler returned, and this one
        // returns only when its application is disposed: a handler still running does not
        // keep its application (its client may have left: Deno.serve cannot tell without a
        // notice on request.signal's legacy behaviour).
        const source = (tag: string) =>
          `export default (app) => app.routing((r) => {\n` +
          `  r.get("/", () => new Response(${JSON.stringify(tag)}));\n` +
          `  r.get("/poll", async () => {\n` +
          `    await new Promise((done) => app.signal.addEventListener("abort", done));\n` +
          `    return new Response("bye");\n` +
          `  });\n` +
          `});\n`;
        await using served = await reloading(engine, source("v1"));
        const first = served.server.application!;
        const poll = fetch(`${served.origin}/poll`);
        await delay(200); // the handler waits
        assert.equal(await served.reload(source("v2")), null);
        assert.equal(await (await fetch(`${served.origin}/`)).text(), "v2");
        assert.equal(first.signal.aborted, true, "disposed at the reload");
        assert.equal(await (await within(poll, 5000, "the poll's answer")).text(), "bye");
      },
    );
  }

  for (const engine of ENGINES) {
    await t.step(
      `${engine.name}: watchPaths reloads the module on a real file change; open sessions carry on`,
      async () => {
        const dir = await Deno.makeTempDir({ prefix: "wirestream_reload_" });
        const file = `${dir}/app.ts`;
        const mod = new URL("../../mod.ts", import.meta.url).href;
        const source = (tag: string) =>
          `import { WebSockets } from ${JSON.stringify(mod)};\n` +
          `export default (app) => {\n` +
          `  app.install(WebSockets);\n` +
          `  app.routing((r) => {\n` +
          `    r.get("/", () => new Response(${JSON.stringify(tag)}));\n` +
          `    r.webSocket("/ws", async (session) => {\n` +
          `      for await (const m of session.incoming) await session.send(${
            JSON.stringify(tag)
          } + ":" + m);\n` +
          `    });\n` +
          `  });\n` +
          `};\n`;
        await Deno.writeTextFile(file, source("v1"));
        let reloaded = deferred<unknown>();
        const server = embeddedServer(engine, {
          ...listen,
          watchPaths: [dir],
          reloadDelay: 50,
          onReload: (error) => reloaded.resolve(error),
        }, file);
        const { port } = await server.start();
        const withWs = WS_ENGINES.includes(engine);
        const old = withWs ? wsClient(`ws://127.0.0.1:${port}/ws`) : null;
        try {
          assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v1");
          const first = server.application;
          if (old !== null) {
            assert.equal(await within(old.opened, 5000, "open"), true);
            assert.equal(first?.sessions, 1);
          }

          await Deno.writeTextFile(file, source("v2"));
          assert.equal(await within(reloaded.promise, 10_000, "the reload"), null);
          assert.notEqual(server.application, first);
          // Replaced with a session open (where the engine serves WebSockets): kept for it.
          assert.equal(first?.signal.aborted, old !== null ? false : true);
          assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2");
          if (old !== null) {
            old.ws.send("still");
            assert.equal(String((await old.messages.next()).data), "v1:still");
            const fresh = wsClient(`ws://127.0.0.1:${port}/ws`);
            try {
              assert.equal(await within(fresh.opened, 5000, "open"), true);
              fresh.ws.send("new");
              assert.equal(String((await fresh.messages.next()).data), "v2:new");
            } finally {
              fresh.ws.close();
              await within(fresh.closed, 5000, "close");
            }
          }

          // A module that no longer compiles: the error is reported, v2 serves on.
          reloaded = deferred<unknown>();
          await Deno.writeTextFile(file, "export default (app) => { this is not TypeScript\n");
          const failure = await within(reloaded.promise, 10_000, "the failed reload");
          assert.ok(failure instanceof Error, String(failure));
          assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2");
        } finally {
          await within(server.stop(), 5000, "stop()");
          if (old !== null) {
            // The session made by v1 is closed by the stop, as the others.
            assert.equal((await within(old.closed, 5000, "the old session's close")).code, 1001);
          }
          await Deno.remove(dir, { recursive: true });
        }
      },
    );
  }
});
