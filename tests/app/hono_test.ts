// Copyright 2026 the wirestream authors. MIT license.
// An Application inside Hono (npm:hono): as a route's handler with the engine's request
// (`c.req.raw`), and mounted with hono/mount, on each engine that serves WebSockets.
import {
  Application,
  type MessageSession,
  type ServeInfo,
  WebSockets,
} from "@wirestream/wirestream";
import { type Context, Hono, type Next } from "hono";
import { mount } from "hono/mount";
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { wsClient } from "../_util/clients.ts";
import { wsEngines } from "../_util/engines.ts";

/** Echoes messages until the session ends. */
async function echo(session: MessageSession): Promise<void> {
  for await (const message of session.incoming) await session.send(message);
}

/** The applications made, disposed at the end of each engine's steps. */
const made: Application[] = [];
/** The sessions the chat routes started, latest last. */
const opened: MessageSession[] = [];

/** The wirestream application: a WebSocket route with a parameter, and a plain route. */
function chatApp(prefix: string, timeout = 15_000): Application {
  const app = new Application();
  made.push(app);
  app.install(WebSockets, { timeout });
  return app.routing((r) => {
    r.webSocket(`${prefix}/chat/:room`, async (session, { params }) => {
      opened.push(session);
      await session.send(`room ${params.room}`);
      await echo(session);
    });
    r.get(`${prefix}/users/:id`, (_request, { params }) => Response.json({ user: params.id }));
  });
}

Deno.test("Application inside Hono", async (t) => {
  for (const engine of wsEngines) {
    await t.step(`on the ${engine.name}`, async (t) => {
      const errors: unknown[] = [];
      const hono = new Hono<{ Bindings: ServeInfo }>(); // c.env is what the engine passes
      hono.onError((error, c) => {
        errors.push(error);
        return c.text("hono failed", 500);
      });
      // A middleware that sets a header after the handler: Hono then copies the response,
      // which loses the upgrade (as with Hono's own WebSocket helper): keep it off WS paths.
      const via = async (c: Context, next: Next) => {
        await next();
        c.header("x-via", "hono");
      };
      hono.use("/", via);
      hono.use("/api/*", via);
      hono.use("/rewritten/*", via);
      hono.get("/", (c) => c.text("hono home"));
      const direct = chatApp("");
      hono.get("/chat/:room", (c) => direct.fetch(c.req.raw, c.env));
      hono.all("/api/*", mount(chatApp("").fetch)); // the path inside is stripped of /api
      hono.all("/kept/*", mount(chatApp("/kept").fetch, { replaceRequest: false }));
      hono.all("/copied/*", mount(chatApp("", 300).fetch)); // its sessions time out soon
      hono.all("/rewritten/*", mount(chatApp("/rewritten").fetch, { replaceRequest: false }));
      const engineErrors: unknown[] = [];
      const server = engine.serve(hono.fetch, {
        onError: (error) => {
          engineErrors.push(error);
          return new Response("engine failed", { status: 500 });
        },
      });
      const native = engine.name.startsWith("native");
      try {
        await t.step("Hono's own route and middleware run", async () => {
          const response = await fetch(`${server.origin}/`);
          assert.equal(await response.text(), "hono home");
          assert.equal(response.headers.get("x-via"), "hono");
        });

        await t.step("a WebSocket route as a Hono handler (c.req.raw, c.env)", async () => {
          const ws = wsClient(`${server.wsOrigin}/chat/lobby`);
          try {
            assert.equal(await within(ws.opened, 5000, "ws to open"), true);
            assert.equal((await ws.messages.next()).data.toString(), "room lobby");
            ws.ws.send("through hono");
            assert.equal((await ws.messages.next()).data.toString(), "through hono");
            ws.ws.close(1000);
            assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
          } finally {
            ws.ws.terminate();
          }
        });

        await t.step("mounted with hono/mount: plain routes under a prefix", async () => {
          const response = await fetch(`${server.origin}/api/users/7`);
          assert.equal(response.headers.get("x-via"), "hono");
          assert.deepEqual(await response.json(), { user: "7" });
          const missing = await fetch(`${server.origin}/api/nothing`);
          assert.equal(missing.status, 404, "our 404 comes back through Hono");
          assert.match(await missing.text(), /^Cannot route/);
        });

        await t.step("mounted with replaceRequest: false, a WebSocket route upgrades", async () => {
          const ws = wsClient(`${server.wsOrigin}/kept/chat/7`);
          try {
            assert.equal(await within(ws.opened, 5000, "ws to open"), true);
            assert.equal((await ws.messages.next()).data.toString(), "room 7");
            ws.ws.close(1000);
            assert.equal((await within(ws.closed, 5000, "ws close")).code, 1000);
          } finally {
            ws.ws.terminate();
          }
        });

        await t.step(
          native
            ? "a request Hono copied: Deno.serve completes the handshake, but the session never opens"
            : "a request Hono copied cannot upgrade: the engine's error, a 500",
          async () => {
            const ws = wsClient(`${server.wsOrigin}/copied/chat/7`);
            try {
              if (native) {
                // Deno answers 101 on the connection, but the socket Deno.upgradeWebSocket made
                // for the copy is not it: the route's session waits for an open that does not
                // come (and ends with 1006 after `timeout`), so nothing reaches the client.
                assert.equal(await within(ws.opened, 5000, "ws to open"), true);
                await assert.rejects(ws.messages.next("no message", 500), /Timed out/);
                const closed = await within(opened.at(-1)!.closed, 5000, "the session's end");
                assert.equal(closed.code, 1006);
              } else {
                assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
                assert.match(String(ws.errors[0]), /Unexpected server response: 500/);
                assert.equal(engineErrors.length, 1);
                assert.ok(engineErrors[0] instanceof TypeError, String(engineErrors[0]));
                assert.match(String(engineErrors[0]), /only Deno\.serve completes/);
              }
              assert.deepEqual(errors, [], "Hono saw no error");
            } finally {
              ws.ws.terminate();
            }
          },
        );

        await t.step(
          native
            ? "a middleware that copies the 101 response: Deno.serve still upgrades"
            : "a middleware that copies the 101 response: the client gets 200",
          async () => {
            const ws = wsClient(`${server.wsOrigin}/rewritten/chat/7`);
            try {
              if (native) {
                assert.equal(await within(ws.opened, 5000, "ws to open"), true);
                assert.equal((await ws.messages.next()).data.toString(), "room 7");
              } else {
                assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
                assert.match(String(ws.errors[0]), /Unexpected server response: 200/);
              }
            } finally {
              ws.ws.terminate();
            }
          },
        );
      } finally {
        for (const app of made.splice(0)) app.dispose(); // a session that never opened ends
        await server.close();
      }
    });
  }
});
