// Copyright 2026 the wirestream authors. MIT license.
// Real peers against the native engine's session (upgradeWebSocket on Deno.serve, 127.0.0.1):
// npm:ws and Deno's own WebSocket, each echoing text and binary of 0 B to 4 MiB, agreeing on a
// subprotocol, closing with codes both ways, dropping abruptly and sending too much.
import { type MessageSession, upgradeWebSocket, WebSocketError } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { denoClient, trickle, wsClient } from "../_util/clients.ts";
import { within } from "../_util/async.ts";
import { assertEchoes, echo, nativeServer, webPeer, wsPeer } from "../_util/ws.ts";

const MiB = 1 << 20;
const LIMITS = { maxFrameSize: 8 * MiB, maxMessageSize: 8 * MiB } as const;
const SIZES = [0, 1, 125, 126, 65_535, 65_536, MiB, 4 * MiB];

/** Ends `incoming` and tells how: null when it ended normally, else the error. */
async function incomingEnd(session: MessageSession): Promise<unknown> {
  try {
    const reader = session.incoming.getReader();
    for (let i = 0; i < 1000; i++) {
      if ((await within(reader.read(), 5000, "incoming")).done) return null;
    }
    return new Error("incoming did not end within 1000 messages");
  } catch (error) {
    return error;
  }
}

Deno.test("interop: npm:ws and the native engine's session", async (t) => {
  await t.step("text and binary of 0 B to 4 MiB come back with their type", async () => {
    const server = nativeServer(LIMITS, echo);
    const client = wsClient(server.url, [], { maxPayload: 16 * MiB });
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      await assertEchoes(wsPeer(client.ws, client.messages), SIZES, 4);
      client.ws.send("héllo ✓ 🎉");
      assert.equal((await client.messages.next()).data.toString(), "héllo ✓ 🎉");
      client.ws.close(1000);
      assert.equal((await within(client.closed, 5000, "ws close")).code, 1000);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("agrees on ws's first supported subprotocol, and on none otherwise", async () => {
    const server = nativeServer({ protocols: ["chat", "superchat"] }, echo);
    const first = wsClient(server.url, ["superchat", "chat"]);
    try {
      assert.equal(await within(first.opened, 5000, "ws to open"), true);
      assert.equal(first.ws.protocol, "superchat");
      assert.equal((await server.sessions.next()).protocol, "superchat");
      const none = wsClient(server.url, ["mqtt"]);
      try {
        // ws refuses a 101 without the subprotocol it asked for (RFC 6455 §4.1).
        assert.equal(await within(none.opened, 5000, "ws's refusal"), false);
        assert.match(String(none.errors[0]), /Server sent no subprotocol/);
        assert.equal((await server.sessions.next()).protocol, "");
      } finally {
        none.ws.terminate();
      }
      first.ws.close();
      await within(first.closed, 5000, "ws close");
    } finally {
      first.ws.terminate();
      await server.close();
    }
  });

  await t.step('ws closes with 4001 "bye": the session ends cleanly, incoming too', async () => {
    const server = nativeServer({}, () => {});
    const client = wsClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const session = await server.sessions.next();
      client.ws.close(4001, "bye");
      assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
        code: 4001,
        reason: "bye",
        wasClean: true,
      });
      assert.equal((await within(client.closed, 5000, "ws close")).code, 4001);
      assert.equal(session.signal.aborted, true);
      assert.equal(await incomingEnd(session), null);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step('we close with 4002 "server bye": ws gets it; incoming ends', async () => {
    const server = nativeServer({}, async (session) => {
      const reader = session.incoming.getReader();
      await reader.read(); // any message asks us to close
      reader.releaseLock();
      await session.close(4002, "server bye");
    });
    const client = wsClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const session = await server.sessions.next();
      client.ws.send("close, please");
      assert.deepEqual(await within(client.closed, 5000, "ws close"), {
        code: 4002,
        reason: "server bye",
      });
      const info = await within(session.closed, 5000, "the session to end");
      assert.deepEqual([info.code, info.wasClean], [4002, true]);
      assert.equal(await incomingEnd(session), null);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    'a ws client that reads too slowly: 2 × timeout after close(), the sends still waiting are dropped and ws gets 1011 "close timeout"',
    async () => {
      // 64 MiB sent before our close; ws reads 64 KiB per 10 ms, so Deno's buffer keeps
      // draining (no send times out at 1 s) but all of it would take about 10 s.
      let started = 0;
      const server = nativeServer({ timeout: 1000, maxSendQueue: 128 * MiB }, async (session) => {
        const message = new Uint8Array(16 * 1024);
        for (let i = 0; i < 4096; i++) session.send(message).catch(() => {});
        started = Date.now();
        await session.close(1000, "done");
      });
      const client = wsClient(server.url);
      let received = 0;
      client.ws.on("message", () => received++);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        const reading = trickle(client.ws);
        try {
          const session = await server.sessions.next();
          const info = await within(session.closed, 8000, "the session to end");
          const elapsed = Date.now() - started;
          reading.stop();
          assert.deepEqual(info, { code: 1006, reason: "close timeout", wasClean: false });
          assert.ok(elapsed >= 1990 && elapsed < 6000, `ended ${elapsed} ms after close()`);
          assert.deepEqual(await within(client.closed, 8000, "ws close"), {
            code: 1011,
            reason: "close timeout",
          });
          assert.ok(received < 4096, `ws received ${received} of the 4096 messages`);
        } finally {
          reading.stop();
        }
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step("ws drops the connection: 1006, and incoming errors with it", async () => {
    const server = nativeServer({}, () => {});
    const client = wsClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const session = await server.sessions.next();
      client.ws.terminate();
      assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
        code: 1006,
        reason: "",
        wasClean: false,
      });
      const error = await incomingEnd(session);
      assert.ok(error instanceof WebSocketError && error.closeCode === 1006, `got ${error}`);
      await assert.rejects(session.send("late"), { closeCode: 1006 });
    } finally {
      await server.close();
    }
  });
});

// Documents a limit of Deno 2.9, not a wish (repro_native_shutdown.ts, repro_native_lost.ts):
// a socket that Deno.serve closes itself looks to the session like a peer's close without a
// code. The class docs say so, and say how to get a close both sides see.
Deno.test("interop: npm:ws and a Deno.serve that closes the session's socket", async (t) => {
  for (const how of ["shutdown", "abort"] as const) {
    await t.step(
      `Deno.serve's ${how} is reported as a close without a code (1005, clean)`,
      async () => {
        const stop = new AbortController();
        const sessions: MessageSession[] = [];
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {}, signal: stop.signal },
          (request) => {
            const { response, session } = upgradeWebSocket(request);
            sessions.push(session);
            return response;
          },
        );
        const client = wsClient(`ws://127.0.0.1:${server.addr.port}/`);
        let stopping: Promise<void> | undefined;
        try {
          assert.equal(await within(client.opened, 5000, "ws to open"), true);
          if (how === "shutdown") stopping = server.shutdown();
          else stop.abort();
          const peer = await within(client.closed, 5000, "ws close");
          assert.equal(peer.code, how === "shutdown" ? 1001 : 1006);
          assert.deepEqual(await within(sessions[0]!.closed, 5000, "the session to end"), {
            code: 1005,
            reason: "",
            wasClean: true,
          });
        } finally {
          client.ws.terminate();
          if (!stop.signal.aborted) stopping ??= server.shutdown();
          await within(server.finished, 5000, "Deno.serve to finish");
          await stopping;
        }
      },
    );
  }

  await t.step("sessions closed before the shutdown end with 1001 on both sides", async () => {
    const sessions: MessageSession[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
      const { response, session } = upgradeWebSocket(request);
      sessions.push(session);
      return response;
    });
    const client = wsClient(`ws://127.0.0.1:${server.addr.port}/`);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const info = await within(sessions[0]!.close(1001, "going away"), 5000, "the close");
      assert.deepEqual(info, { code: 1001, reason: "going away", wasClean: true });
      assert.equal((await within(client.closed, 5000, "ws close")).code, 1001);
    } finally {
      client.ws.terminate();
      await within(server.shutdown(), 5000, "Deno.serve to shut down");
    }
  });
});

Deno.test("interop: Deno's WebSocket and the native engine's session", async (t) => {
  await t.step("text and binary of 0 B to 4 MiB come back with their type", async () => {
    const server = nativeServer(LIMITS, echo);
    const client = denoClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "Deno's WebSocket to open"), true);
      await assertEchoes(webPeer(client.ws, client.messages), SIZES, 5);
      client.ws.close(1000);
      assert.equal((await within(client.closed, 5000, "Deno's close")).code, 1000);
    } finally {
      client.ws.close();
      await server.close();
    }
  });

  await t.step("agrees on a subprotocol Deno offered", async () => {
    const server = nativeServer({ protocols: ["v2.chat"] }, echo);
    const client = denoClient(server.url, ["v1.chat", "v2.chat"]);
    try {
      assert.equal(await within(client.opened, 5000, "Deno's WebSocket to open"), true);
      assert.equal(client.ws.protocol, "v2.chat");
      assert.equal((await server.sessions.next()).protocol, "v2.chat");
      client.ws.close(1000);
      await within(client.closed, 5000, "Deno's close");
    } finally {
      await server.close();
    }
  });

  await t.step('Deno closes with 4003 "x"; we close another with 4004 "y"', async () => {
    const server = nativeServer({}, echo);
    const first = denoClient(server.url);
    try {
      assert.equal(await within(first.opened, 5000, "Deno's WebSocket to open"), true);
      const session = await server.sessions.next();
      first.ws.close(4003, "x");
      assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
        code: 4003,
        reason: "x",
        wasClean: true,
      });
      const second = denoClient(server.url);
      const other = await server.sessions.next();
      assert.equal(await within(second.opened, 5000, "Deno's WebSocket to open"), true);
      await within(other.close(4004, "y"), 5000, "our close");
      assert.deepEqual(await within(second.closed, 5000, "Deno's close"), {
        code: 4004,
        reason: "y",
        wasClean: true,
      });
      assert.deepEqual(await other.closed, { code: 4004, reason: "y", wasClean: true });
    } finally {
      await server.close();
    }
  });

  await t.step(
    "by default a message of maxMessageSize (4 MiB) in one frame, as Deno sends it, is taken",
    async () => {
      // maxFrameSize follows maxMessageSize unless set: a 1 MiB default refused a 2 MiB message
      // from every browser with 1009.
      const server = nativeServer({}, echo);
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "Deno's WebSocket to open"), true);
        client.ws.send(new Uint8Array(4 * MiB));
        const echoed = await within(client.messages.next(), 5000, "the echo");
        assert.equal((echoed as ArrayBuffer).byteLength, 4 * MiB);
        client.ws.send(new Uint8Array(4 * MiB + 1));
        assert.equal((await within(client.closed, 5000, "Deno's close")).code, 1009);
      } finally {
        await server.close();
      }
    },
  );

  await t.step("a message over maxMessageSize reaches Deno as close 1009", async () => {
    const server = nativeServer({ maxMessageSize: 10 }, echo);
    const client = denoClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "Deno's WebSocket to open"), true);
      client.ws.send(new Uint8Array(10));
      assert.equal(((await client.messages.next()) as ArrayBuffer).byteLength, 10);
      client.ws.send(new Uint8Array(11));
      assert.equal((await within(client.closed, 5000, "Deno's close")).code, 1009);
      const info = await within((await server.sessions.next()).closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [1009, false]);
    } finally {
      await server.close();
    }
  });
});
