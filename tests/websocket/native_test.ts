// Copyright 2026 the wirestream authors. MIT license.
// The native engine's session (NativeWebSocketSession, from upgradeWebSocket on Deno.serve) on
// real sockets on 127.0.0.1: its limits, backpressure, closing, options and streams. The peers
// are npm:ws, Deno's WebSocket and raw TCP; tests/interop/native_test.ts has the echo matrix.
import {
  httpServer,
  type MessageSession,
  MessageTooBigError,
  NativeWebSocketSession,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
  WebSocketError,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { denoClient, wsClient } from "../_util/clients.ts";
import { deferred, delay, dial, textOf, within } from "../_util/http.ts";
import { nativeServer, nextMessage, Queue } from "../_util/ws.ts";
import { retainedBytes } from "../_util/gc.ts";
import { isOpen } from "../../lib/websocket/_open.ts";

const WIRE_ENGINE = /the wire engine \(httpServer or startConnectionPipeline\)/;

/** An upgrade request head; `fields` replace or add field lines (null removes one). */
function upgradeHead(fields: Record<string, string | null> = {}, line = "GET / HTTP/1.1"): string {
  const all: Record<string, string | null> = {
    host: "127.0.0.1",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    ...fields,
  };
  const lines = Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}\r\n`);
  return `${line}\r\n${lines.join("")}\r\n`;
}

/** A valid upgrade Request that no server received (so it goes to the native engine). */
function strayRequest(): Request {
  return new Request("http://127.0.0.1/", {
    headers: {
      host: "127.0.0.1",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
}

/**
 * A stand-in for Deno's WebSocket, open from the start: a test hands the session messages,
 * sets `bufferedAmount`, and reads what was sent and what `close` was called with.
 */
class FakeSocket extends EventTarget {
  readyState: number = WebSocket.OPEN;
  binaryType = "blob";
  bufferedAmount = 0;
  protocol = "";
  sent: unknown[] = [];
  closedWith: [number | undefined, string | undefined] | null = null;
  send(data: unknown): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = WebSocket.CLOSING;
  }
  /** A message from the peer, as Deno reports it with binaryType "arraybuffer". */
  receive(data: string | ArrayBuffer): void {
    this.dispatchEvent(new MessageEvent("message", { data }));
  }
  /** This, typed as what NativeWebSocketSession takes. */
  get socket(): WebSocket {
    return this as unknown as WebSocket;
  }
}

/** A session whose Deno buffer (10,000 bytes) never drains below its maxBufferedAmount (1000). */
function stalled() {
  const fake = new FakeSocket();
  fake.bufferedAmount = 10_000;
  const session = new NativeWebSocketSession(fake.socket, { maxBufferedAmount: 1000, timeout: 50 });
  return { fake, session };
}

/**
 * Reads what `incoming` still gives: the messages, then how it ended; with a reader, or with
 * `for await` (whose iterator reads the session's queue directly).
 */
async function drain(session: MessageSession, how: "reader" | "for await" = "reader") {
  const messages: unknown[] = [];
  if (how === "for await") {
    try {
      await within(
        (async () => {
          for await (const message of session.incoming) messages.push(message);
        })(),
        5000,
        "incoming to end",
      );
      return { messages, error: null };
    } catch (error) {
      return { messages, error };
    }
  }
  const reader = session.incoming.getReader();
  try {
    for (let i = 0; i < 10_000; i++) {
      const { done, value } = await within(reader.read(), 5000, "incoming");
      if (done) return { messages, error: null };
      messages.push(value);
    }
    throw new Error("incoming did not end within 10000 messages");
  } catch (error) {
    return { messages, error };
  } finally {
    reader.releaseLock();
  }
}

Deno.test("NativeWebSocketSession", async (t) => {
  await t.step(
    "does not stay reachable from a socket that never opened, once it ended",
    async () => {
      // Deno keeps a socket whose client left before the 101 (its descriptor too, until the
      // process ends); its `open` listener held the whole ended session: about 6.7 kB more per
      // such client (the leak review's native_upgrade_abandon.mjs).
      const sockets: WebSocket[] = [];
      const refs: WeakRef<NativeWebSocketSession>[] = [];
      /** A session on a socket that never opens, ended (no frame of this test keeps it). */
      const endedSession = async () => {
        const request = new Request("http://localhost/", {
          headers: {
            upgrade: "websocket",
            connection: "Upgrade",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          },
        });
        const { socket } = Deno.upgradeWebSocket(request); // never opens: not from Deno.serve
        const session = new NativeWebSocketSession(socket, { timeout: 10 });
        assert.equal((await session.closed).code, 1006);
        sockets.push(socket);
        refs.push(new WeakRef(session));
      };
      for (let i = 0; i < 3; i++) await endedSession();
      await delay(0);
      retainedBytes(); // a full collection
      assert.deepEqual(refs.map((ref) => ref.deref() === undefined), [true, true, true]);
      assert.equal(sockets.length, 3); // the sockets themselves stay reachable
    },
  );

  await t.step(
    "upgradeWebSocket on Deno.serve gives a server NativeWebSocketSession that echoes",
    async () => {
      const server = nativeServer({}, async (session) => {
        for await (const message of session.incoming) await session.send(message);
      });
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        assert.ok(session instanceof NativeWebSocketSession);
        assert.equal(session.role, "server");
        assert.equal(session.protocol, "");
        client.ws.send("héllo ✓");
        assert.equal(await client.messages.next(), "héllo ✓");
        client.ws.send(Uint8Array.of(1, 2, 3));
        const binary = await client.messages.next();
        assert.ok(binary instanceof ArrayBuffer);
        assert.deepEqual([...new Uint8Array(binary)], [1, 2, 3]);
        client.ws.close(1000);
        assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
          code: 1000,
          reason: "",
          wasClean: true,
        });
      } finally {
        client.ws.close();
        await within(client.closed, 5000, "the client to close");
        await server.close();
      }
    },
  );

  await t.step(
    "refuses bad upgrade requests with 400, 403 and 426 before Deno sees them",
    async () => {
      const server = nativeServer(
        { checkOrigin: (origin) => origin !== "http://evil.example" },
        () => {},
      );
      const c = await dial(server.port);
      const cases: [string, string, number][] = [
        ["Sec-WebSocket-Version 8", upgradeHead({ "sec-websocket-version": "8" }), 426],
        ["no Sec-WebSocket-Key", upgradeHead({ "sec-websocket-key": null }), 400],
        ["a key of 15 bytes", upgradeHead({ "sec-websocket-key": "AAAAAAAAAAAAAAAAAAAA" }), 400],
        ["Upgrade: h2c", upgradeHead({ upgrade: "h2c" }), 400],
        ["Connection without upgrade", upgradeHead({ connection: "keep-alive" }), 400],
        [
          "a subprotocol that is not a token",
          upgradeHead({ "sec-websocket-protocol": "a b" }),
          400,
        ],
        ["POST", upgradeHead({ upgrade: null, "content-length": "0" }, "POST / HTTP/1.1"), 400],
        ["an Origin refused", upgradeHead({ origin: "http://evil.example" }), 403],
      ];
      try {
        for (const [name, head, status] of cases) {
          await c.send(head);
          const response = (await c.next())!;
          assert.equal(response.status, status, name);
          assert.match(textOf(response.body), /^Cannot upgrade: /, name);
          if (status === 426) {
            assert.equal(response.headers.get("sec-websocket-version"), "13", name);
          }
        }
        assert.deepEqual(server.refusals.map((e) => e.status), cases.map(([, , s]) => s));
        assert.deepEqual(server.errors, []);
      } finally {
        await c.close();
        await server.close();
      }
    },
  );

  await t.step(
    "raw: true and masking: true throw a TypeError that names the wire engine",
    async () => {
      assert.throws(() => upgradeWebSocket(strayRequest(), { raw: true }), (e) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /raw: true/);
        assert.match(e.message, WIRE_ENGINE);
        return true;
      });
      assert.throws(() => upgradeWebSocket(strayRequest(), { masking: true }), (e) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /masking: true/);
        assert.match(e.message, WIRE_ENGINE);
        return true;
      });
      const { socket } = Deno.upgradeWebSocket(strayRequest());
      assert.throws(() => new NativeWebSocketSession(socket, { masking: true }), WIRE_ENGINE);
      // And on a request Deno.serve received: refused before Deno upgrades it.
      const server = nativeServer({ raw: true }, () => {});
      try {
        const c = await dial(server.port);
        try {
          await c.send(upgradeHead());
          assert.equal((await c.next())?.status, 500);
        } finally {
          await c.close();
        }
        assert.equal(server.errors.length, 1);
        assert.ok(server.errors[0] instanceof TypeError);
        assert.match((server.errors[0] as TypeError).message, WIRE_ENGINE);
      } finally {
        await server.close();
      }
    },
  );

  await t.step("both engines refuse options out of range with a RangeError", async () => {
    const bad: [string, UpgradeWebSocketOptions][] = [
      ["timeout", { timeout: -1 }],
      ["timeout", { timeout: 0 }],
      ["pingInterval", { pingInterval: 0 }],
      ["maxFrameSize", { maxFrameSize: 0 }],
      ["maxMessageSize", { maxMessageSize: -1 }],
      ["maxQueuedBytes", { maxQueuedBytes: -1 }],
      ["maxBufferedAmount", { maxBufferedAmount: 1.5 }],
    ];
    const noKey = () => {
      const request = strayRequest();
      request.headers.delete("sec-websocket-key"); // a 400 of the request's own
      return request;
    };
    for (const [name, options] of bad) {
      for (const request of [strayRequest(), noKey()]) {
        assert.throws(
          () => upgradeWebSocket(request, options),
          (e) => e instanceof RangeError && e.message.includes(`Invalid ${name}`),
          `native: ${name}, before the request's own fault`,
        );
      }
    }
    const { socket } = Deno.upgradeWebSocket(strayRequest());
    assert.throws(() => new NativeWebSocketSession(socket, { maxQueuedBytes: -1 }), RangeError);
    // The wire engine checks the native-only limits too, so a value fails on both alike.
    // And the session's options before the request's faults, as the native engine does.
    const seen = new Queue<unknown>();
    const options: UpgradeWebSocketOptions[] = [{ maxQueuedBytes: -1 }, { timeout: 0 }];
    let next = 0;
    const server = httpServer({ hostname: "127.0.0.1", port: 0 }, (request) => {
      try {
        upgradeWebSocket(request, options[next++ % 2]);
        seen.push("no error");
      } catch (error) {
        seen.push(error);
      }
      return new Response("no");
    });
    const c = await dial(server.addr.port);
    try {
      for (const head of [upgradeHead(), upgradeHead({ "sec-websocket-key": null })]) {
        for (const name of ["maxQueuedBytes", "timeout"]) {
          await c.send(head);
          assert.equal((await c.next())?.status, 200);
          const error = await seen.next();
          assert.ok(error instanceof RangeError && error.message.includes(name), String(error));
        }
      }
    } finally {
      await c.close();
      await within(server.shutdown(), 5000, "httpServer to shut down");
    }
  });

  await t.step("pingInterval of 1 ms is accepted: the minimum is 1, not 2", async () => {
    const { session } = upgradeWebSocket(strayRequest(), { pingInterval: 1, timeout: 10 });
    assert.ok(session instanceof NativeWebSocketSession);
    assert.equal((await session.closed).code, 1006); // the socket never opens
    assert.throws(
      () => upgradeWebSocket(strayRequest(), { pingInterval: 0.5 }),
      (e) => e instanceof RangeError && e.message.includes("Invalid pingInterval"),
    );
  });

  await t.step(
    "close() checks the code and reason like the core, and sends nothing then",
    async () => {
      const server = nativeServer({}, () => {});
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5]) {
          assert.throws(() => session.close(code), RangeError, `code ${code}`);
        }
        assert.throws(() => session.close(4000, "x".repeat(124)), RangeError);
        await session.send("still open");
        assert.equal(await client.messages.next(), "still open");
        await session.close(4000, "x".repeat(123));
        const closed = await within(client.closed, 5000, "the client's close");
        assert.deepEqual([closed.code, closed.reason.length], [4000, 123]);
      } finally {
        await server.close();
      }
    },
  );

  await t.step("send() waits for the socket to open; early messages arrive first", async () => {
    const server = nativeServer({}, (session) => {
      // Sent before the handler returns the response, so before Deno opens the socket.
      void session.send("early").catch(() => {});
      void session.send(Uint8Array.of(9)).catch(() => {});
    });
    const client = denoClient(server.url);
    try {
      assert.equal(await client.messages.next("the early text"), "early");
      const binary = await client.messages.next("the early binary");
      assert.deepEqual([...new Uint8Array(binary as ArrayBuffer)], [9]);
    } finally {
      client.ws.close();
      await within(client.closed, 5000, "the client to close");
      await server.close();
    }
  });

  await t.step(
    "maxMessageSize counts UTF-8 bytes: N passes, N + 1 gets 1009 at the client",
    async () => {
      const server = nativeServer({ maxMessageSize: 9 }, () => {});
      const ok = denoClient(server.url);
      const big = wsClient(server.url);
      try {
        assert.equal(await within(ok.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        const reader = session.incoming.getReader();
        // Counted exactly past 3 units: 9 bytes (3 × 3), 8 (2 surrogate pairs × 4), 8 (4 × 2).
        for (const text of ["€€€", "😀😀", "éééé"]) {
          ok.ws.send(text);
          assert.equal(await nextMessage(reader), text);
        }
        ok.ws.send(new Uint8Array(9));
        assert.equal(((await nextMessage(reader)) as Uint8Array).length, 9);
        reader.releaseLock();
        ok.ws.send("€€€a"); // 10 bytes
        const closed = await within(ok.closed, 5000, "the client's close");
        assert.equal(closed.code, 1009);
        const info = await within(session.closed, 5000, "the session to end");
        assert.deepEqual([info.code, info.wasClean], [1009, false]);
        assert.match(info.reason, /size of 10 bytes exceeds maxMessageSize of 9 bytes/);
        const { error } = await drain(session);
        assert.ok(error instanceof MessageTooBigError);
        assert.deepEqual([error.closeCode, error.limit, error.size], [1009, 9, 10]);

        assert.equal(await within(big.opened, 5000, "ws to open"), true);
        big.ws.send(new Uint8Array(10));
        assert.equal((await within(big.closed, 5000, "ws's close")).code, 1009);
      } finally {
        big.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "maxMessageSize counts 3 bytes from U+0800 and 4 per surrogate pair: 10 bytes get 1009",
    async () => {
      // Each text is 10 bytes of UTF-8; counting U+0800 as 2 bytes or a pair as 3 would
      // take it under the limit of 9.
      for (const text of ["\u0800\u0800\u0800a", "😀😀aa", "ééééé"]) {
        const server = nativeServer({ maxMessageSize: 9 }, () => {});
        const client = denoClient(server.url);
        try {
          assert.equal(await within(client.opened, 5000, "the client to open"), true);
          const session = await server.sessions.next();
          client.ws.send(text);
          const info = await within(session.closed, 5000, "the session to end");
          assert.equal(info.code, 1009, JSON.stringify(text));
          assert.match(info.reason, /size of 10 bytes exceeds maxMessageSize of 9 bytes/);
          await within(client.closed, 5000, "the client's close");
        } finally {
          await server.close();
        }
      }
    },
  );

  await t.step(
    "maxFrameSize applies to whole messages when it is the smaller limit",
    async () => {
      const server = nativeServer({ maxFrameSize: 4, maxMessageSize: 100 }, () => {});
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        // Five bytes in frames of at most 4: Deno hands over the whole message of 5.
        client.ws.send(Uint8Array.of(1, 2, 3, 4), { fin: false });
        client.ws.send(Uint8Array.of(5), { fin: true });
        assert.equal((await within(client.closed, 5000, "ws's close")).code, 1009);
        const info = await within(session.closed, 5000, "the session to end");
        assert.match(info.reason, /size of 5 bytes exceeds maxFrameSize of 4 bytes/);
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "maxQueuedBytes: a peer that floods a session nobody reads gets 1008; what was queued is read first",
    async () => {
      // 1000 bytes + 256 of bookkeeping per message: 4 fit in 5100 bytes, the 5th does not.
      // With 8, the peer is still sending when we close: Deno ends the connection on a data
      // frame after its close frame, so that peer may read our 1008 or lose it to the reset.
      for (
        const [count, how] of [[5, "reader"], [8, "reader"], [5, "for await"]] as const
      ) {
        const server = nativeServer({ maxQueuedBytes: 5100 }, () => {});
        const client = wsClient(server.url);
        try {
          assert.equal(await within(client.opened, 5000, "ws to open"), true);
          const session = await server.sessions.next();
          for (let i = 0; i < count; i++) client.ws.send(new Uint8Array(1000).fill(i));
          const closed = await within(client.closed, 5000, "ws's close");
          if (count === 5) {
            assert.equal(closed.code, 1008);
            assert.match(closed.reason, /6280 bytes exceed maxQueuedBytes of 5100 bytes/);
          } else {
            assert.ok([1006, 1008].includes(closed.code), `ws saw ${closed.code}`);
          }
          const { messages, error } = await drain(session, how);
          assert.deepEqual(messages.map((m) => (m as Uint8Array)[0]), [0, 1, 2, 3], how);
          assert.ok(error instanceof WebSocketError && error.closeCode === 1008, how);
          assert.equal(session.incoming.locked, false, how);
          // Read again, it fails the same way.
          assert.equal((await drain(session, how)).error, error, how);
          assert.deepEqual(await session.closed, {
            code: 1008,
            reason:
              "Cannot queue message: unread messages of 6280 bytes exceed maxQueuedBytes of 5100 bytes",
            wasClean: false,
          });
        } finally {
          client.ws.terminate();
          await server.close();
        }
      }
    },
  );

  await t.step(
    "maxQueuedBytes: a flood of empty messages is bounded too (256 bytes of bookkeeping each)",
    async () => {
      // 17 empty messages take 4352 bytes: they fit in 4352, and the 17th is refused at 4351.
      for (const [limit, fit] of [[4352, 17], [4351, 16]] as const) {
        const server = nativeServer({ maxQueuedBytes: limit }, () => {});
        const client = wsClient(server.url);
        try {
          assert.equal(await within(client.opened, 5000, "ws to open"), true);
          const session = await server.sessions.next();
          for (let i = 0; i <= fit; i++) client.ws.send(new Uint8Array(0));
          const closed = await within(session.closed, 5000, "the session's close");
          assert.equal(closed.code, 1008);
          const size = (fit + 1) * 256;
          assert.match(
            closed.reason,
            new RegExp(`${size} bytes exceed maxQueuedBytes of ${limit} `),
          );
          const { messages } = await drain(session);
          assert.equal(messages.length, fit, "what was queued before is read first");
        } finally {
          client.ws.terminate();
          await server.close();
        }
      }
    },
  );

  await t.step("maxQueuedBytes never refuses a message alone in the queue", async () => {
    const server = nativeServer({ maxQueuedBytes: 10, maxMessageSize: 5000 }, () => {});
    const client = wsClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const session = await server.sessions.next();
      client.ws.send(new Uint8Array(5000));
      await delay(50); // queued, unread
      const reader = session.incoming.getReader();
      assert.equal(((await nextMessage(reader)) as Uint8Array).length, 5000);
      reader.releaseLock();
      client.ws.close(1000);
      assert.equal((await within(session.closed, 5000, "the session to end")).code, 1000);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    "maxQueuedBytes: a second unread message over the limit gets 1008; at the limit it is queued",
    async () => {
      // 600 bytes + 256 of bookkeeping each: two unread count 1712 bytes.
      for (const [limit, refused] of [[1712, false], [1711, true], [1000, true]] as const) {
        const fake = new FakeSocket();
        const session = new NativeWebSocketSession(fake.socket, {
          maxQueuedBytes: limit,
          timeout: 50,
        });
        fake.receive(new Uint8Array(600).fill(1).buffer); // queued, unread
        fake.receive(new Uint8Array(600).fill(2).buffer);
        const reason =
          `Cannot queue message: unread messages of 1712 bytes exceed maxQueuedBytes of ${limit} bytes`;
        assert.deepEqual(fake.closedWith, refused ? [1008, reason] : null, `limit ${limit}`);
        if (!refused) session.close();
        assert.deepEqual(await session.closed, {
          code: refused ? 1008 : 1006, // the fake never answers a close
          reason: refused ? reason : "",
          wasClean: false,
        }, `limit ${limit}`);
        const { messages, error } = await drain(session);
        assert.deepEqual(
          messages.map((m) => (m as Uint8Array)[0]),
          refused ? [1] : [1, 2],
          `limit ${limit}: what was queued is read first`,
        );
        if (refused) assert.ok(error instanceof WebSocketError && error.closeCode === 1008);
      }
    },
  );

  await t.step(
    "maxQueuedBytes defaults to 8388608: unread messages of 8388608 bytes pass, 8388609 get 1008",
    async () => {
      for (const total of [8_388_608, 8_388_609]) {
        const fake = new FakeSocket();
        const session = new NativeWebSocketSession(fake.socket, {
          maxMessageSize: 16_777_216,
          timeout: 50,
        });
        fake.receive(new Uint8Array(1).buffer); // 257 counted
        fake.receive(new Uint8Array(total - 257 - 256).buffer); // the rest, with its 256
        assert.deepEqual(
          fake.closedWith?.[0] ?? null,
          total > 8_388_608 ? 1008 : null,
          `${total} bytes unread`,
        );
        session.close();
        await session.closed;
      }
    },
  );

  await t.step(
    "is not open (for the router) once Deno marks its socket closing, before the close event",
    async () => {
      // Deno sets readyState, then awaits its close op, then dispatches "close": a send in
      // between fails, and the handler that rethrows that error is seeing its own session end.
      const fake = new FakeSocket();
      const session = new NativeWebSocketSession(fake.socket, { timeout: 50 });
      assert.equal(isOpen(session), true);
      fake.readyState = WebSocket.CLOSED;
      await assert.rejects(session.send("late"), (e) => e instanceof WebSocketError);
      assert.equal(isOpen(session), false);
      fake.dispatchEvent(new CloseEvent("close", { code: 1000, wasClean: true }));
      assert.equal((await session.closed).code, 1000);
    },
  );

  await t.step(
    "bufferedAmount is Deno's send buffer plus the sends waiting for room, as maxSendQueue counts them",
    async () => {
      const fake = new FakeSocket();
      const session = new NativeWebSocketSession(fake.socket, { maxBufferedAmount: 1000 });
      await session.send(new Uint8Array(990)); // room: it goes to Deno at once, using it up
      fake.bufferedAmount = 990; // what Deno holds of it
      assert.equal(session.bufferedAmount, 990);
      fake.bufferedAmount = 5000; // over maxBufferedAmount: the next sends wait
      const waiting = [session.send("é".repeat(100)), session.send(new Uint8Array(300))];
      await delay(5);
      assert.equal(fake.sent.length, 1, "the later sends wait for room");
      // A text waiting counts 3 bytes per UTF-16 unit, each send a 14-byte frame head and 1024.
      assert.equal(session.bufferedAmount, 5000 + (300 + 14 + 1024) + (300 + 14 + 1024));
      fake.bufferedAmount = 0; // Deno's buffer drained
      await within(Promise.all(waiting), 2000, "the waiting sends");
      assert.equal(fake.sent.length, 3);
      assert.equal(session.bufferedAmount, 0);
      session.close();
      fake.dispatchEvent(new CloseEvent("close", { code: 1000, wasClean: true }));
      assert.equal((await session.closed).code, 1000);
    },
  );

  await t.step(
    'a send whose Deno buffer does not drain within timeout closes the socket with 1011 "write timeout"',
    async () => {
      const { fake, session } = stalled();
      await assert.rejects(session.send("x"), (e) => {
        assert.ok(e instanceof WebSocketError, String(e));
        assert.equal(e.closeCode, 1006);
        assert.match(
          e.message,
          /^Cannot send a message: Deno's send buffer of 10000 bytes did not drain within the timeout of 50 ms/,
        );
        return true;
      });
      assert.deepEqual(fake.closedWith, [1011, "write timeout"]);
      assert.deepEqual(fake.sent, []);
      assert.deepEqual(await session.closed, {
        code: 1006,
        reason: "write timeout",
        wasClean: false,
      });
    },
  );

  await t.step(
    'a close behind sends that stall goes out as 1011 "write timeout", not the caller\'s code',
    async () => {
      // The peer must not read a normal close after the messages that never went out (ws and
      // bare Deno deliver them all; the wire engine cuts the connection: 1006).
      const { fake, session } = stalled();
      const sends = [session.send("a"), session.send("b")].map((send) =>
        send.then(() => "sent", () => "rejected")
      );
      const closed = session.close(1000, "all sent");
      assert.equal(fake.closedWith, null, "the close waits behind the sends");
      assert.deepEqual(await within(Promise.all(sends), 2000, "the sends"), [
        "rejected",
        "rejected",
      ]);
      await delay(5); // the close's turn, behind the sends
      assert.deepEqual(fake.closedWith, [1011, "write timeout"]);
      assert.deepEqual(await closed, { code: 1006, reason: "write timeout", wasClean: false });
    },
  );

  await t.step(
    'sends before close() that drain slowly go out, then the close, within 2 × timeout; past it they are dropped and the peer is sent 1011 "close timeout"',
    async () => {
      /** A session whose Deno buffer drains by 100 bytes every 10 ms, from `start`. */
      const draining = (start: number) => {
        const fake = new FakeSocket();
        fake.bufferedAmount = start;
        const timer = setInterval(() => {
          fake.bufferedAmount = Math.max(0, fake.bufferedAmount - 100);
        }, 10);
        const session = new NativeWebSocketSession(fake.socket, {
          maxBufferedAmount: 1000,
          timeout: 200,
        });
        return { fake, session, stop: () => clearInterval(timer) };
      };
      const outcomes = (sends: Promise<void>[]) =>
        Promise.all(sends.map((send) => send.then(() => "sent", () => "rejected")));

      // Below the limit after about 250 ms: longer than timeout, within the cap (400 ms).
      const slow = draining(3500);
      try {
        const sends = outcomes([slow.session.send("a"), slow.session.send("b")]);
        const closed = slow.session.close(1000, "all sent");
        assert.deepEqual(await within(sends, 2000, "the sends"), ["sent", "sent"]);
        await delay(5); // the close's turn, behind the sends
        assert.deepEqual(slow.fake.sent, ["a", "b"]);
        assert.deepEqual(slow.fake.closedWith, [1000, "all sent"]);
        slow.fake.dispatchEvent(
          new CloseEvent("close", { code: 1000, reason: "all sent", wasClean: true }),
        );
        assert.deepEqual(await closed, { code: 1000, reason: "all sent", wasClean: true });
      } finally {
        slow.stop();
      }

      // Below the limit after about 1.9 s: past the cap, though the buffer always drains.
      const slower = draining(20_000);
      try {
        const sends = outcomes([slower.session.send("a"), slower.session.send("b")]);
        const started = Date.now();
        const closed = slower.session.close(1000, "all sent");
        assert.deepEqual(await within(closed, 2000, "the session's end"), {
          code: 1006,
          reason: "close timeout",
          wasClean: false,
        });
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 390 && elapsed < 1500, `ended after ${elapsed} ms`);
        assert.deepEqual(await within(sends, 2000, "the sends"), ["rejected", "rejected"]);
        assert.deepEqual(slower.fake.sent, [], "nothing went to Deno");
        assert.deepEqual(slower.fake.closedWith, [1011, "close timeout"]);
      } finally {
        slower.stop();
      }
    },
  );

  await t.step(
    "a close that went to Deno late, and that the peer never answers, still ends 2 × timeout after close()",
    async () => {
      // Deno's buffer drains steadily and is below the limit 450 ms after close(), so our
      // close goes to Deno then; the close timer alone would end the session 300 ms later,
      // past the cap (600 ms).
      const fake = new FakeSocket();
      const started = Date.now();
      Object.defineProperty(fake, "bufferedAmount", {
        get: () => Math.max(0, 1000 + Math.ceil((450 - (Date.now() - started)) * 10)),
      });
      const session = new NativeWebSocketSession(fake.socket, {
        maxBufferedAmount: 1000,
        timeout: 300,
      });
      const send = session.send("a");
      const info = await within(session.close(1000, "done"), 2000, "the session's end");
      const elapsed = Date.now() - started;
      await send;
      assert.deepEqual(fake.closedWith, [1000, "done"], "the close went to Deno");
      assert.deepEqual(info, { code: 1006, reason: "", wasClean: false });
      assert.ok(elapsed >= 590 && elapsed < 740, `ended ${elapsed} ms after close()`);
    },
  );

  await t.step(
    "bufferedAmount still counts what Deno held once its socket closed, and after a failed end what never went out",
    async () => {
      // Deno's socket reads 0 as soon as close() is called, whatever it still holds.
      const fake = new (class extends FakeSocket {
        override close(code?: number, reason?: string): void {
          super.close(code, reason);
          this.bufferedAmount = 0;
        }
      })();
      const session = new NativeWebSocketSession(fake.socket, {
        maxBufferedAmount: 1000,
        timeout: 50,
      });
      await session.send(new Uint8Array(2000)); // room: it goes to Deno at once
      fake.bufferedAmount = 3000; // what Deno holds: the next send waits for room
      const waiting = session.send(new Uint8Array(100)).catch(() => "rejected");
      await delay(5);
      assert.equal(session.bufferedAmount, 3000 + 100 + 14 + 1024);
      const closed = session.close();
      assert.equal(await within(waiting, 2000, "the stalled send"), "rejected");
      assert.equal((await closed).code, 1006);
      // The stalled send never went out, nor (the peer did not read) what Deno held.
      assert.equal(session.bufferedAmount, 3000 + 100 + 14 + 1024);

      const clean = new (class extends FakeSocket {
        override close(code?: number, reason?: string): void {
          super.close(code, reason);
          this.bufferedAmount = 0;
        }
      })();
      const other = new NativeWebSocketSession(clean.socket, { timeout: 1000 });
      await other.send(new Uint8Array(500));
      clean.bufferedAmount = 500;
      const ending = other.close();
      assert.equal(other.bufferedAmount, 500, "closing: what Deno held when it was closed");
      clean.dispatchEvent(new CloseEvent("close", { code: 1000, wasClean: true }));
      assert.equal((await ending).wasClean, true);
      assert.equal(other.bufferedAmount, 0, "after a clean close everything was written");

      // The peer drops the connection: Deno reads 0 then, so the last amount it reported stays.
      const dropped = new FakeSocket();
      const third = new NativeWebSocketSession(dropped.socket, { timeout: 1000 });
      await third.send(new Uint8Array(700));
      dropped.bufferedAmount = 700;
      assert.equal(third.bufferedAmount, 700);
      dropped.bufferedAmount = 0;
      dropped.readyState = WebSocket.CLOSED;
      dropped.dispatchEvent(new CloseEvent("close", { code: 1006, wasClean: false }));
      assert.equal((await third.closed).code, 1006);
      assert.equal(third.bufferedAmount, 700, "the last amount Deno reported");

      // Never read while open: what was sent to Deno since its last reading counts.
      const unread = new FakeSocket();
      const fourth = new NativeWebSocketSession(unread.socket, { timeout: 1000 });
      for (let i = 0; i < 3; i++) await fourth.send(new Uint8Array(100));
      unread.readyState = WebSocket.CLOSED;
      unread.dispatchEvent(new CloseEvent("close", { code: 1006, wasClean: false }));
      await fourth.closed;
      assert.equal(fourth.bufferedAmount, 3 * (100 + 14), "each send, with its frame head");

      // With no limit to make it look, Deno's count is still read again every MiB sent: the
      // estimate stays within that of what Deno holds (0 here).
      const unbounded = new FakeSocket();
      const fifth = new NativeWebSocketSession(unbounded.socket, {
        timeout: 1000,
        maxBufferedAmount: Infinity,
      });
      for (let i = 0; i < 40; i++) await fifth.send(new Uint8Array(100_000));
      unbounded.readyState = WebSocket.CLOSED;
      unbounded.dispatchEvent(new CloseEvent("close", { code: 1006, wasClean: false }));
      await fifth.closed;
      assert.ok(fifth.bufferedAmount <= 1 << 20, `${fifth.bufferedAmount} of 4 MB sent counted`);
    },
  );

  await t.step(
    "the wait for the peer's close starts when our close frame goes to Deno, behind the sends",
    async () => {
      const fake = new FakeSocket();
      fake.bufferedAmount = 10_000; // full: the sends wait
      const session = new NativeWebSocketSession(fake.socket, {
        maxBufferedAmount: 1000,
        timeout: 400,
      });
      const send = session.send("a");
      const closed = session.close(1000, "done");
      let ended = false;
      closed.then(() => (ended = true));
      // The buffer drains slowly but steadily, so no send stalls, for longer than timeout
      // (within the cap, 2 × timeout).
      for (let i = 9; i >= 0; i--) {
        await delay(50);
        fake.bufferedAmount = i * 1000;
      }
      await within(send, 2000, "the send");
      await delay(5);
      assert.deepEqual(fake.closedWith, [1000, "done"]);
      assert.equal(ended, false, "the timeout counts from our close frame, not from close()");
      fake.dispatchEvent(new CloseEvent("close", { code: 1000, reason: "done", wasClean: true }));
      assert.deepEqual(await closed, { code: 1000, reason: "done", wasClean: true });
    },
  );

  await t.step(
    "npm:ws: a peer that stops reading past timeout gets 1011 after the messages that went out, not our 1000",
    async () => {
      const COUNT = 110, SIZE = 65_536;
      const done = deferred<{ rejected: number; info: unknown }>();
      const server = nativeServer({ timeout: 1000 }, async (session) => {
        let rejected = 0;
        const sends = Array.from(
          { length: COUNT },
          () => session.send(new Uint8Array(SIZE)).catch(() => rejected++),
        );
        const info = await session.close(1000, "all sent");
        await Promise.all(sends);
        done.resolve({ rejected, info });
      });
      const client = wsClient(server.url);
      let received = 0; // the messages come before the close event
      client.ws.on("message", (data: Uint8Array) => data.length === SIZE && received++);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        client.ws.pause(); // the kernel's buffers fill, then Deno's: a send stalls
        const { rejected, info } = await within(done.promise, 10_000, "the session to end");
        assert.ok(rejected > 0, "some sends never went out");
        assert.deepEqual(info, { code: 1006, reason: "write timeout", wasClean: false });
        client.ws.resume();
        const { code, reason } = await within(client.closed, 10_000, "the client's close");
        assert.equal(received, COUNT - rejected, "what went out arrived");
        assert.deepEqual({ code, reason }, { code: 1011, reason: "write timeout" });
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "send() waits while Deno's buffer is above maxBufferedAmount, and goes on once the peer reads",
    async () => {
      const MESSAGE = 60_000;
      const blocked = deferred<number>();
      const released = deferred<void>();
      const server = nativeServer({ maxBufferedAmount: 200_000 }, async (session) => {
        const payload = new Uint8Array(MESSAGE);
        // At most 1000 messages (60 MB): loopback's socket buffers hold a few MB at most.
        for (let i = 0; i < 1000; i++) {
          payload[0] = i & 0xff;
          const send = session.send(payload);
          const state = await Promise.race([
            send.then(() => "sent"),
            delay(300).then(() => "held"),
          ]);
          if (state === "held") {
            blocked.resolve(i);
            await send;
            released.resolve();
            return;
          }
        }
        blocked.resolve(-1);
      });
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        client.ws.pause(); // stop reading: the kernel's buffers fill, then Deno's
        const at = await within(blocked.promise, 20_000, "a send to wait");
        assert.ok(at > 0, "no send was held within 1000 messages of 60 KB");
        // What was sent before the wait is bounded: socket buffers plus maxBufferedAmount.
        assert.ok(at * MESSAGE < 40_000_000, `${at} messages were sent before any wait`);
        client.ws.resume();
        const received: number[] = [];
        for (let i = 0; i <= at; i++) {
          const { data, isBinary } = await client.messages.next(`message ${i}`);
          assert.ok(isBinary && data.length === MESSAGE);
          received.push(data[0]!);
        }
        assert.deepEqual(received, received.map((_, i) => i & 0xff), "in order, none lost");
        await within(released.promise, 5000, "the held send to resolve");
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a send goes out at once exactly while Deno's buffer holds at most maxBufferedAmount",
    async () => {
      // The session reads bufferedAmount only when what it sent since its last reading could
      // have taken it over the limit; whether a send waits must still follow the buffer.
      const MAX = 100_000;
      const outcome = deferred<{ sent: number[]; held: number }>();
      const released = deferred<void>();
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
        const { socket, response } = Deno.upgradeWebSocket(request);
        const session = new NativeWebSocketSession(socket, { maxBufferedAmount: MAX });
        socket.addEventListener("open", async () => {
          const sent: number[] = []; // bufferedAmount before each send that went out at once
          for (let i = 0; i < 5000; i++) {
            const before = socket.bufferedAmount;
            let settled = false;
            // 10,007 bytes, then 3,001 characters of text: the sizes vary, and so does the
            // slack between the session's count and Deno's.
            const send = session.send(i % 2 ? new Uint8Array(10_007).fill(i) : "é".repeat(3001))
              .then(() => void (settled = true));
            for (let tick = 0; tick < 5; tick++) await Promise.resolve(); // not a timer
            if (!settled) {
              outcome.resolve({ sent, held: before });
              await send;
              released.resolve();
              return;
            }
            sent.push(before);
            // Now and then Deno gets to write, and its buffer shrinks under the session's count.
            if (i % 8 === 7) await delay(0);
          }
          outcome.resolve({ sent, held: -1 });
        }, { once: true });
        return response;
      });
      const client = wsClient(`ws://127.0.0.1:${server.addr.port}/`);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        client.ws.pause(); // the kernel's buffers fill, then Deno's
        const { sent, held } = await within(outcome.promise, 20_000, "a send to wait");
        assert.ok(held > MAX, `a send waited with ${held} bytes in Deno's buffer`);
        const over = sent.filter((before) => before > MAX);
        assert.deepEqual(over, [], "sends went out at once while the buffer was over the limit");
        assert.ok(sent.some((before) => before > MAX / 2), "Deno's buffer never filled");
        client.ws.resume();
        for (let i = 0; i <= sent.length; i++) {
          const { data, isBinary } = await client.messages.next(`message ${i}`);
          assert.equal(data.length, i % 2 ? 10_007 : 6002);
          assert.equal(isBinary, i % 2 === 1);
        }
        await within(released.promise, 5000, "the held send to go out");
      } finally {
        client.ws.terminate();
        await within(server.shutdown(), 5000, "Deno.serve to shut down");
      }
    },
  );

  await t.step("a view of part of a buffer, or of a shared one, is sent as its bytes", async () => {
    const server = nativeServer({}, async (session) => {
      const bytes = Uint8Array.of(0, 1, 2, 3, 4, 5);
      await session.send(bytes.subarray(1, 4)); // offset 1
      await session.send(bytes.subarray(0, 2)); // offset 0, shorter than its buffer
      await session.send(bytes); // the whole buffer
      // Deno's socket refuses a view of a SharedArrayBuffer (the wire engine sends it): a copy
      // goes out, where the send once failed as if the connection had.
      const shared = new Uint8Array(new SharedArrayBuffer(8), 2, 3);
      shared.set([7, 8, 9]);
      await session.send(shared);
    });
    const client = wsClient(server.url);
    try {
      for (const want of [[1, 2, 3], [0, 1], [0, 1, 2, 3, 4, 5], [7, 8, 9]]) {
        const { data, isBinary } = await client.messages.next("a message");
        assert.deepEqual([[...data], isBinary], [want, true]);
      }
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    "close() goes out after the sends made before it, held ones included",
    async () => {
      const sends = deferred<Promise<void>[]>();
      const server = nativeServer({ maxBufferedAmount: 0 }, (session) => {
        const pending: Promise<void>[] = [];
        for (let i = 0; i < 20; i++) pending.push(session.send(new Uint8Array(100_000).fill(i)));
        void session.close(4000, "after");
        sends.resolve(pending);
      });
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        client.ws.pause();
        const pending = await within(sends.promise, 5000, "the sends");
        await delay(100);
        client.ws.resume();
        for (let i = 0; i < 20; i++) {
          const { data } = await client.messages.next(`message ${i}`);
          assert.deepEqual([data.length, data[0]], [100_000, i]);
        }
        assert.deepEqual(await within(client.closed, 5000, "ws's close"), {
          code: 4000,
          reason: "after",
        });
        await within(Promise.all(pending), 5000, "every send to resolve");
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a send held longer than timeout by a peer that never reads ends the session with 1006",
    async () => {
      const outcome = deferred<unknown>();
      const server = nativeServer({ maxBufferedAmount: 0, timeout: 300 }, async (session) => {
        const payload = new Uint8Array(65_536);
        try {
          for (let i = 0; i < 2000; i++) await session.send(payload); // 128 MiB at most
          outcome.resolve("all sent");
        } catch (error) {
          outcome.resolve(error);
        }
      });
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        client.ws.pause();
        const session = await server.sessions.next();
        const error = await within(outcome.promise, 20_000, "the send to fail");
        assert.ok(error instanceof WebSocketError, `got ${error}`);
        assert.equal(error.closeCode, 1006);
        assert.match(error.message, /did not drain within the timeout of 300 ms/);
        assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
          code: 1006,
          reason: "write timeout",
          wasClean: false,
        });
        await assert.rejects(session.send("more"), { closeCode: 1006 });
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a peer that never answers our close: closed gives 1006 after timeout",
    async () => {
      const server = nativeServer({ timeout: 150 }, () => {});
      const c = await dial(server.port);
      try {
        await c.send(upgradeHead());
        assert.equal((await c.next())?.status, 101);
        const session = await server.sessions.next();
        const started = Date.now();
        // The close frame reaches the raw client, which never answers it.
        const info = await within(session.close(4000, "bye"), 5000, "the session to end");
        assert.deepEqual(info, { code: 1006, reason: "", wasClean: false });
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 140 && elapsed < 2000, `ended after ${elapsed} ms`);
        const frame = await within(c.responses.bytes(7), 5000, "our close frame");
        assert.deepEqual([...frame!], [0x88, 5, 0x0f, 0xa0, ...new TextEncoder().encode("bye")]);
      } finally {
        await c.close();
        await server.close();
      }
    },
  );

  await t.step("aborting the signal option closes with 1001; session.signal aborts", async () => {
    const controller = new AbortController();
    const server = nativeServer({ signal: controller.signal }, () => {});
    const client = denoClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "the client to open"), true);
      const session = await server.sessions.next();
      assert.equal(session.signal.aborted, false);
      controller.abort();
      const closed = await within(client.closed, 5000, "the client's close");
      assert.deepEqual([closed.code, closed.reason], [1001, "going away"]);
      assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
        code: 1001,
        reason: "going away",
        wasClean: true,
      });
      assert.equal(session.signal.aborted, true);
      const reason = session.signal.reason;
      assert.ok(reason instanceof WebSocketError && reason.closeCode === 1001);
    } finally {
      await server.close();
    }
  });

  await t.step("a signal aborted before the upgrade closes with 1001 at once", async () => {
    const server = nativeServer({ signal: AbortSignal.abort() }, () => {});
    const client = denoClient(server.url);
    try {
      const closed = await within(client.closed, 5000, "the client's close");
      assert.equal(closed.code, 1001);
      const session = await server.sessions.next();
      assert.equal((await within(session.closed, 5000, "the session to end")).code, 1001);
      assert.equal(session.signal.aborted, true);
    } finally {
      await server.close();
    }
  });

  await t.step(
    "pingInterval + timeout become Deno's idleTimeout: a peer that never answers gets 1001",
    async () => {
      const server = nativeServer({ pingInterval: 100, timeout: 100 }, () => {});
      const mute = wsClient(server.url, [], { autoPong: false });
      try {
        assert.equal(await within(mute.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        const started = Date.now();
        await within(mute.pings.next("a ping"), 2000, "Deno's ping");
        const closed = await within(mute.closed, 2000, "ws's close");
        assert.equal(closed.code, 1001);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 1500, `closed after ${elapsed} ms; idleTimeout is 200 ms`);
        const info = await within(session.closed, 5000, "the session to end");
        assert.deepEqual([info.code, info.wasClean], [1001, false]);
        const { error } = await drain(session);
        assert.ok(error instanceof WebSocketError && error.closeCode === 1001);
      } finally {
        mute.ws.terminate();
      }
      // A peer that answers the pings stays.
      const polite = wsClient(server.url);
      try {
        assert.equal(await within(polite.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        await delay(500); // 2.5 idle timeouts
        await polite.pings.next("a ping"); // answered by ws, so Deno kept the session
        assert.equal(session.signal.aborted, false, "the session ended");
        polite.ws.close(1000);
        assert.equal((await within(session.closed, 5000, "the session to end")).code, 1000);
      } finally {
        polite.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "pings from the peer do not reset Deno's idleTimeout: a peer that never answers gets 1001",
    async () => {
      const server = nativeServer({ pingInterval: 100, timeout: 100 }, () => {});
      const client = wsClient(server.url, [], { autoPong: false });
      let pinging: ReturnType<typeof setInterval> | undefined;
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        const started = Date.now();
        pinging = setInterval(() => client.ws.ping(), 50); // 4 pings per idleTimeout of 200 ms
        await within(client.pongs.next("a pong"), 2000, "Deno's pong"); // Deno does see them
        const closed = await within(client.closed, 2000, "ws's close");
        assert.deepEqual(closed, { code: 1001, reason: "No response from ping frame." });
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 1500, `closed after ${elapsed} ms; idleTimeout is 200 ms`);
        const info = await within(session.closed, 5000, "the session to end");
        assert.deepEqual([info.code, info.wasClean], [1001, false]);
      } finally {
        clearInterval(pinging);
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step("without pingInterval Deno sends no pings", async () => {
    const server = nativeServer({ timeout: 50 }, () => {});
    const client = wsClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "ws to open"), true);
      const session = await server.sessions.next();
      await delay(300);
      await assert.rejects(client.pings.next("a ping", 10), /Timed out/);
      assert.equal(session.signal.aborted, false);
      client.ws.close(1000);
      await within(session.closed, 5000, "the session to end");
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    "outgoing: writes send, close() closes with 1000, abort() fails with 1011",
    async () => {
      const server = nativeServer({}, () => {});
      const first = denoClient(server.url);
      let second: ReturnType<typeof denoClient> | undefined;
      try {
        const writer = (await server.sessions.next()).outgoing.getWriter();
        await writer.write("one");
        await writer.write(Uint8Array.of(2));
        await writer.close();
        assert.equal(await first.messages.next(), "one");
        assert.deepEqual([...new Uint8Array((await first.messages.next()) as ArrayBuffer)], [2]);
        assert.equal((await within(first.closed, 5000, "the first close")).code, 1000);
        second = denoClient(server.url);
        const session = await server.sessions.next();
        await session.outgoing.abort(new Error("gave up"));
        assert.equal((await within(second.closed, 5000, "the second close")).code, 1011);
        assert.equal((await within(session.closed, 5000, "the session to end")).code, 1011);
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "outgoing is one stream, made on first use, and refuses writes once the session ended",
    async () => {
      const server = nativeServer({}, () => {});
      const client = denoClient(server.url);
      try {
        const session = await server.sessions.next();
        client.ws.close(1000);
        await within(session.closed, 5000, "the session to end");
        // Never touched while the session was open: made now, it still refuses the write.
        const outgoing = session.outgoing;
        assert.equal(session.outgoing, outgoing, "the same stream on every access");
        const late = outgoing.getWriter();
        await assert.rejects(
          late.write("too late"),
          (e) => e instanceof WebSocketError && e.closeCode === 1006,
        );
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "breaking out of for await cancels incoming: the session closes with 1000",
    async () => {
      const server = nativeServer({}, async (session) => {
        for await (const message of session.incoming) {
          assert.equal(message, "one");
          break;
        }
      });
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        client.ws.send("one");
        assert.equal((await within(client.closed, 5000, "the client's close")).code, 1000);
        assert.equal((await within(session.closed, 5000, "the session to end")).code, 1000);
        assert.equal(session.incoming.locked, false);
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "values({ preventCancel: true }): a loop that breaks leaves the session open; the next reads on",
    async () => {
      const server = nativeServer({}, () => {});
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        assert.ok(session.incoming instanceof ReadableStream);
        for (const text of ["one", "two", "three"]) client.ws.send(text);
        for await (const message of session.incoming.values({ preventCancel: true })) {
          assert.equal(message, "one");
          break;
        }
        assert.equal(session.incoming.locked, false);
        const reader = session.incoming.getReader();
        assert.equal(await nextMessage(reader), "two");
        reader.releaseLock();
        client.ws.close(1000);
        const { messages, error } = await drain(session, "for await");
        assert.deepEqual([messages, error], [["three"], null]);
        assert.equal((await within(session.closed, 5000, "the session to end")).code, 1000);
      } finally {
        await server.close();
      }
    },
  );

  await t.step("an iterator's next() calls made together get the messages in order", async () => {
    const server = nativeServer({}, () => {});
    const client = denoClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "the client to open"), true);
      const session = await server.sessions.next();
      const iterator = session.incoming[Symbol.asyncIterator]();
      // Like the standard's iterators, it inherits %AsyncIteratorPrototype%.
      assert.equal(typeof Reflect.get(iterator, Symbol.asyncDispose), "function");
      assert.equal(session.incoming.locked, true);
      assert.throws(() => session.incoming.getReader(), TypeError);
      const results = [iterator.next(), iterator.next(), iterator.next(), iterator.next()];
      client.ws.send("one");
      client.ws.send(Uint8Array.of(2));
      client.ws.close(1000);
      assert.deepEqual(await within(Promise.all(results), 5000, "the results"), [
        { value: "one", done: false },
        { value: Uint8Array.of(2), done: false },
        { value: undefined, done: true },
        { value: undefined, done: true },
      ]);
      assert.deepEqual(await iterator.next(), { value: undefined, done: true });
      assert.equal(session.incoming.locked, false);
      assert.deepEqual(await session.incoming.getReader().read(), { value: undefined, done: true });
    } finally {
      await server.close();
    }
  });

  await t.step(
    "a message handed to a read whose reader was then released is the first for await gets",
    async () => {
      const server = nativeServer({}, () => {});
      const client = denoClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "the client to open"), true);
        const session = await server.sessions.next();
        const reader = session.incoming.getReader();
        const read = reader.read(); // waits for a message
        reader.releaseLock();
        await assert.rejects(read, TypeError);
        for (const text of ["one", "two"]) client.ws.send(text);
        client.ws.close(1000);
        assert.equal((await within(session.closed, 5000, "the session to end")).code, 1000);
        const { messages, error } = await drain(session, "for await");
        assert.deepEqual([messages, error], [["one", "two"], null]);
      } finally {
        await server.close();
      }
    },
  );

  await t.step("incoming cancelled after a failure ends without the failure", async () => {
    const server = nativeServer({ maxMessageSize: 4 }, () => {});
    const client = denoClient(server.url);
    try {
      assert.equal(await within(client.opened, 5000, "the client to open"), true);
      const session = await server.sessions.next();
      client.ws.send("toolong");
      assert.equal((await within(session.closed, 5000, "the session to end")).code, 1009);
      await session.incoming.cancel();
      for (const how of ["for await", "reader"] as const) {
        assert.deepEqual(await drain(session, how), { messages: [], error: null }, how);
      }
    } finally {
      await server.close();
    }
  });

  await t.step("incoming.cancel() closes with 1000; send() after close rejects", async () => {
    const server = nativeServer({}, () => {});
    const client = denoClient(server.url);
    try {
      const session = await server.sessions.next();
      await session.incoming.cancel();
      await assert.rejects(session.send("late"), (e) => {
        assert.ok(e instanceof WebSocketError);
        assert.equal(e.closeCode, 1006);
        assert.match(e.message, /the session is (closing|closed)/);
        return true;
      });
      assert.equal((await within(client.closed, 5000, "the client's close")).code, 1000);
      await assert.rejects(session.send(42 as unknown as string), TypeError);
    } finally {
      await server.close();
    }
  });

  await t.step(
    "close(1014) throws a RangeError naming the wire engine, and the session stays open",
    async () => {
      const server = nativeServer({}, () => {});
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        assert.throws(() => session.close(1014, "bg"), (e) => {
          assert.ok(e instanceof RangeError, `got ${e}`);
          assert.match(e.message, /Cannot close with code 1014: Deno cannot complete/);
          assert.match(e.message, WIRE_ENGINE);
          return true;
        });
        // Nothing changed: no close frame went out, and the session still sends and closes.
        assert.equal(session.signal.aborted, false);
        await session.send("still open");
        const { data, isBinary } = await client.messages.next("the message after close(1014)");
        assert.deepEqual([data.toString(), isBinary], ["still open", false]);
        const info = await within(session.close(1011, "gateway"), 5000, "the session to end");
        assert.deepEqual(info, { code: 1011, reason: "gateway", wasClean: true });
        assert.deepEqual(await within(client.closed, 5000, "ws's close"), {
          code: 1011,
          reason: "gateway",
        });
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a peer's close 1014 is answered by Deno with 1002: closed gives 1002, not a drop",
    async () => {
      const server = nativeServer({}, () => {});
      const client = wsClient(server.url);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        const session = await server.sessions.next();
        client.ws.close(1014, "bg");
        assert.equal((await within(client.closed, 5000, "ws's close")).code, 1002);
        assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
          code: 1002,
          reason: "",
          wasClean: false,
        });
        const { error } = await drain(session);
        assert.ok(error instanceof WebSocketError, `got ${error}`);
        assert.equal(error.closeCode, 1002);
        assert.match(error.message, /"Invalid close code"/);
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a frame Deno refuses: closed and incoming carry Deno's reason, 1002 for a bad close code",
    async () => {
      const server = nativeServer({}, () => {});
      // Each frame masked with the key 0 (so the payload reads as sent), and what Deno says.
      const MASK = [0, 0, 0, 0];
      const CLOSE_1002 = [0x88, 0x02, 0x03, 0xea]; // FIN close, 2 bytes, code 1002
      const cases: [string, number[], string, number[] | null][] = [
        // FIN close, masked, 2 bytes: code 1005 (may not be sent, §7.4.1)
        [
          "a close with code 1005",
          [0x88, 0x82, ...MASK, 0x03, 0xed],
          "Invalid close code",
          CLOSE_1002,
        ],
        // FIN close, masked, 2 bytes: code 999 (unassigned)
        [
          "a close with code 999",
          [0x88, 0x82, ...MASK, 0x03, 0xe7],
          "Invalid close code",
          CLOSE_1002,
        ],
        // FIN close, masked, 1 byte: a code cut short (§5.5.1)
        ["a 1-byte close payload", [0x88, 0x81, ...MASK, 0x03], "Invalid close frame", null],
        // FIN text, masked, 1 byte: 0xff is never UTF-8 (§8.1)
        ["invalid UTF-8 in a text", [0x81, 0x81, ...MASK, 0xff], "Invalid UTF-8", null],
        // FIN + RSV1 text, masked, 1 byte "a": no extension agreed (§5.2)
        ["RSV1 set", [0xc1, 0x81, ...MASK, 0x61], "Reserved bits are not zero", null],
        // FIN continuation, masked, 1 byte "a": nothing to continue (§5.4)
        [
          "a continuation with no start",
          [0x80, 0x81, ...MASK, 0x61],
          "Invalid continuation frame",
          null,
        ],
        // FIN opcode 3, masked, empty: reserved opcode (§5.2)
        ["opcode 3", [0x83, 0x80, ...MASK], "Invalid value", null],
        // ping without FIN, masked, empty: control frames are never fragmented (§5.5)
        ["a fragmented ping", [0x09, 0x80, ...MASK], "Control frame must not be fragmented", null],
      ];
      try {
        for (const [name, frame, deno, answer] of cases) {
          const c = await dial(server.port);
          try {
            await c.send(upgradeHead());
            assert.equal((await c.next())?.status, 101, name);
            const session = await server.sessions.next();
            await c.send(Uint8Array.from(frame));
            const info = await within(session.closed, 5000, `the session to end (${name})`);
            const code = answer === null ? 1006 : 1002;
            assert.deepEqual(info, { code, reason: "", wasClean: false }, name);
            const { error } = await drain(session);
            assert.ok(error instanceof WebSocketError, `${name}: got ${error}`);
            assert.equal(error.closeCode, code, name);
            assert.ok(error.message.includes(JSON.stringify(deno)), `${name}: ${error.message}`);
            assert.ok(error.cause instanceof Error, name);
            assert.equal(error.cause.message, deno, name);
            assert.match(
              error.message,
              answer === null
                ? /^Cannot read: the connection ended without a close frame \(Deno: /
                : /^Session failed: Deno answered the peer's close frame with code 1002 \(Deno: /,
              name,
            );
            // What Deno wrote: its close 1002, or nothing before it dropped the connection.
            const wire = await within(c.responses.rest(), 5000, `the connection to end (${name})`);
            assert.deepEqual([...wire], answer ?? [], name);
          } finally {
            await c.close();
          }
        }
      } finally {
        await server.close();
      }
    },
  );
});

// Deno never completes its upgrade op when the handler returns another response (it logs
// "Upgrade response was not returned from callback"): that leak is Deno's, so this test runs
// without the op sanitizer.
Deno.test({
  name: "NativeWebSocketSession: a handler that upgrades but returns another response",
  sanitizeOps: false,
  async fn(t) {
    await t.step("the session ends with 1006 after timeout, and early sends reject", async () => {
      const sessions = new Queue<MessageSession>();
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
        const { session } = upgradeWebSocket(request, { timeout: 100 });
        sessions.push(session);
        return new Response("changed my mind", { status: 403 });
      });
      // Deno answers nothing at all then (it logs "Upgrade response was not returned from
      // callback"), so the client is not asked about it.
      const client = await dial(server.addr.port);
      try {
        await client.send(upgradeHead());
        const session = await sessions.next();
        const early = session.send("never");
        assert.deepEqual(await within(session.closed, 5000, "the session to end"), {
          code: 1006,
          reason: "",
          wasClean: false,
        });
        await assert.rejects(early, (e) => e instanceof WebSocketError && e.closeCode === 1006);
        const { error } = await drain(session);
        assert.ok(error instanceof WebSocketError && error.closeCode === 1006);
        assert.match(error.message, /did not open within the timeout of 100 ms/);
      } finally {
        await client.close();
        await within(server.shutdown(), 5000, "Deno.serve to shut down");
      }
    });

    await t.step(
      "a copied request: the socket never opens, and the error says why",
      async () => {
        // What a router that copies requests (Hono's mount) does: Deno answers 101 and leaves
        // the connection silent.
        const sessions = new Queue<MessageSession>();
        const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
          const { response, session } = upgradeWebSocket(new Request(request), { timeout: 100 });
          sessions.push(session);
          return response;
        });
        const client = await dial(server.addr.port);
        try {
          await client.send(upgradeHead());
          const session = await sessions.next();
          assert.equal((await within(session.closed, 5000, "the session to end")).code, 1006);
          const { error } = await drain(session);
          assert.ok(error instanceof WebSocketError && error.closeCode === 1006);
          assert.match(error.message, /never opens the socket of a copied request/);
        } finally {
          await client.close();
          await within(server.shutdown(), 5000, "Deno.serve to shut down");
        }
      },
    );
  },
});
