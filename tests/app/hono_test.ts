// Copyright 2026 the wirestream authors. MIT license.
// An Application inside Hono (npm:hono): as a route's handler with the engine's request
// (`c.req.raw`), and mounted with hono/mount, on each engine that serves WebSockets.
import {
  Application,
  type ServeInfo,
  WebSockets,
  type WebSocketSession,
} from "@wirestream/wirestream";
import { type Context, Hono, type Next } from "hono";
import { mount } from "hono/mount";
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { wsClient } from "../_util/clients.ts";
import { wsEngines } from "../_util/engines.ts";

/** Echoes messages until the session ends. */
async function echo(session: WebSocketSession): Promise<void> {
  for await (const message of session.incoming) await session.send(message);
}

/** The wirestream application: a WebSocket route with a parameter, and a plain route. */
function chatApp(prefix: string): Application {
  const app = new Application();
  app.install(WebSockets);
  return app.routing((r) => {
    r.webSocket(`${prefix}/chat/:room`, async (session, { params }) => {
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
      hono.all("/copied/*", mount(chatApp("").fetch));
      hono.all("/rewritten/*", mount(chatApp("/rewritten").fetch, { replaceRequest: false }));
      const server = engine.serve(hono.fetch);
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
          "a request Hono copied cannot upgrade: the engine's error, a 500",
          async () => {
            const ws = wsClient(`${server.wsOrigin}/copied/chat/7`);
            try {
              assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
              assert.match(String(ws.errors[0]), /Unexpected server response: 500/);
              assert.equal(errors.length, 1);
              assert.ok(errors[0] instanceof TypeError, String(errors[0]));
            } finally {
              ws.ws.terminate();
            }
          },
        );

        await t.step("a middleware that copies the 101 response: the client gets 200", async () => {
          const ws = wsClient(`${server.wsOrigin}/rewritten/chat/7`);
          try {
            assert.equal(await within(ws.opened, 5000, "ws to fail"), false);
            assert.match(String(ws.errors[0]), /Unexpected server response: 200/);
          } finally {
            ws.ws.terminate();
          }
        });
      } finally {
        await server.close();
      }
    });
  }
});
