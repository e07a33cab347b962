// Copyright 2026 the wirestream authors. MIT license.
// Real sockets on 127.0.0.1 against npm:ws, a peer we did not write: ws as a client of our
// server (Deno.listen + acceptWebSocket), and our client (connectWebSocket) against ws's
// WebSocketServer.
import {
  type AcceptWebSocketOptions,
  type CloseInfo,
  connectWebSocket,
  Frame,
  HttpError,
  httpServer,
  Opcode,
  WebSocketError,
} from "@wirestream/wirestream";
import { lendingStats } from "../../lib/_slab.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";
import { within } from "../_util/async.ts";
import { trickle } from "../_util/clients.ts";
import {
  assertEchoes,
  echo,
  nextMessage,
  ourServer,
  Queue,
  sessionPeer,
  upgradeHandler,
  wsPeer,
} from "../_util/ws.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const MiB = 1 << 20;
const LIMITS = { maxFrameSize: 32 * MiB, maxMessageSize: 32 * MiB } as const;
const SIZES = [0, 125, 126, 65_535, 65_536, MiB, 16 * MiB];

interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

/** A ws socket with its messages, pings, pongs and close event as promises and queues. */
function watch(ws: WebSocket): {
  messages: Queue<WsMessage>;
  pings: Queue<Buffer>;
  pongs: Queue<Buffer>;
  closed: Promise<{ code: number; reason: string }>;
} {
  const messages = new Queue<WsMessage>();
  const pings = new Queue<Buffer>();
  const pongs = new Queue<Buffer>();
  ws.on("message", (data: Buffer, isBinary: boolean) => messages.push({ data, isBinary }));
  ws.on("ping", (data: Buffer) => pings.push(data));
  ws.on("pong", (data: Buffer) => pongs.push(data));
  ws.on("error", () => {}); // the close event follows and tells the code
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  );
  return { messages, pings, pongs, closed };
}

/** Connects a ws client; resolves once it is open. */
async function wsClient(url: string, options: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, { maxPayload: 32 * MiB, ...options });
  const events = watch(ws);
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    }),
    5000,
    "the ws client to open",
  );
  return { ws, ...events };
}

/** A ws WebSocketServer on 127.0.0.1 with port 0; resolves once it listens. */
async function wsServer(options: WebSocket.ServerOptions = {}) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 32 * MiB, ...options });
  await within(new Promise((resolve) => wss.once("listening", resolve)), 5000, "ws to listen");
  const connections = new Queue<{ ws: WebSocket } & ReturnType<typeof watch>>();
  wss.on("connection", (ws: WebSocket) => connections.push({ ws, ...watch(ws) }));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    connections,
    async close() {
      for (const client of wss.clients) client.terminate();
      await within(new Promise((resolve) => wss.close(resolve)), 5000, "ws to close");
    },
  };
}

Deno.test("interop: a ws client and our server (acceptWebSocket)", async (t) => {
  await t.step("text and binary of 0 B to 16 MiB come back intact", async () => {
    const server = ourServer(LIMITS, echo);
    const client = await wsClient(server.url);
    try {
      await assertEchoes(wsPeer(client.ws, client.messages), SIZES, 6455);
      client.ws.send("héllo wörld ✓ 🎉");
      assert.equal((await client.messages.next()).data.toString(), "héllo wörld ✓ 🎉");
      client.ws.close(1000);
      assert.equal((await within(client.closed, 5000, "ws close")).code, 1000);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("fragmented messages from ws are reassembled", async () => {
    const server = ourServer(LIMITS, echo);
    const client = await wsClient(server.url);
    try {
      client.ws.send("hel", { fin: false });
      client.ws.send("lo ", { fin: false });
      client.ws.send("€", { fin: true });
      const text = await client.messages.next("the fragmented text echo");
      assert.deepEqual([text.isBinary, text.data.toString()], [false, "hello €"]);
      // A character cut between fragments: each fragment alone is not valid UTF-8.
      const euro = Buffer.from("€");
      client.ws.send(euro.subarray(0, 1), { binary: false, fin: false });
      client.ws.send(euro.subarray(1), { binary: false, fin: true });
      assert.equal((await client.messages.next("the cut character")).data.toString(), "€");
      client.ws.send(Uint8Array.of(1, 2), { binary: true, fin: false });
      client.ws.send(new Uint8Array(0), { binary: true, fin: false });
      client.ws.send(Uint8Array.of(3), { binary: true, fin: true });
      const binary = await client.messages.next("the fragmented binary echo");
      assert.deepEqual([binary.isBinary, [...binary.data]], [true, [1, 2, 3]]);
      client.ws.close(1000);
      await within(client.closed, 5000, "ws close");
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("a ping from ws gets a pong with the same payload", async () => {
    const server = ourServer(LIMITS, echo);
    const client = await wsClient(server.url);
    try {
      for (const payload of [Buffer.from("ping from ws"), Buffer.alloc(0), Buffer.alloc(125, 7)]) {
        client.ws.ping(payload);
        const pong = await client.pongs.next("the pong");
        assert.ok(sameBytes(pong, payload), `pong of ${payload.length} bytes differs`);
      }
      client.ws.close(1000);
      await within(client.closed, 5000, "ws close");
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("our pings are answered by ws, so the session stays open", async () => {
    const server = ourServer({ ...LIMITS, pingInterval: 20, timeout: 300 }, echo);
    const client = await wsClient(server.url);
    try {
      for (let i = 0; i < 5; i++) await client.pings.next(`our ping ${i}`, 2000);
      const session = await server.accepted.next();
      assert.equal(session.signal.aborted, false);
      client.ws.send("still open");
      assert.equal((await client.messages.next()).data.toString(), "still open");
      client.ws.close(1000);
      assert.equal((await within(session.closed, 5000, "our close")).code, 1000);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("a ws client that does not answer pings gets 1011", async () => {
    const server = ourServer({ ...LIMITS, pingInterval: 20, timeout: 60 }, echo);
    const client = await wsClient(server.url, { autoPong: false });
    try {
      const { code } = await within(client.closed, 5000, "the ping timeout");
      assert.equal(code, 1011);
      const session = await server.accepted.next();
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [1011, false]);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    "by default a message of maxMessageSize (4 MiB) in one frame, as ws sends it, is taken",
    async () => {
      // maxFrameSize follows maxMessageSize unless set: a 1 MiB default refused a 2 MiB message
      // from ws and every browser with 1009.
      const server = ourServer({}, echo);
      const client = await wsClient(server.url);
      try {
        client.ws.send(Buffer.alloc(4 * MiB, 7));
        const echoed = await within(client.messages.next(), 5000, "the echo");
        assert.equal(echoed.data.length, 4 * MiB);
        client.ws.send(Buffer.alloc(4 * MiB + 1));
        assert.equal((await within(client.closed, 5000, "ws close")).code, 1009);
      } finally {
        client.ws.terminate();
        await server.close();
      }
      // However small maxMessageSize is, a control frame of 125 bytes is taken.
      const small = ourServer({ maxMessageSize: 10 }, echo);
      const pinger = await wsClient(small.url);
      try {
        pinger.ws.ping(Buffer.alloc(125, 1));
        assert.equal((await pinger.pongs.next("the pong")).length, 125);
        pinger.ws.close(4000, "r".repeat(123));
        assert.equal((await within(pinger.closed, 5000, "ws close")).code, 4000);
      } finally {
        pinger.ws.terminate();
        await small.close();
      }
    },
  );

  await t.step(
    "a frame over maxMessageSize gets 1009 at its header, though maxFrameSize is larger",
    async () => {
      // ws writes the header of a 1 MiB frame and 1000 bytes of it; the rest never comes. The
      // session took the frame up to maxFrameSize (1 MiB) and waited for the rest before the
      // message's check: buffered, never answered.
      const server = ourServer({ maxMessageSize: 1024, maxFrameSize: 1 << 20, timeout: 200 }, echo);
      const client = await wsClient(server.url);
      try {
        const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4]);
        (client.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(
          Buffer.concat([header, Buffer.alloc(1000)]),
        );
        const closed = await within(client.closed, 3000, "ws close");
        assert.equal(closed.code, 1009);
        assert.match(closed.reason, /exceeds maxMessageSize of 1024 bytes/);
        const session = await server.accepted.next();
        const info = await within(session.closed, 5000, "our close");
        assert.deepEqual([info.code, info.wasClean], [1009, false]);
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a message over maxMessageSize sent before our close reached ws is discarded (1000, clean)",
    async () => {
      // After our close, the peer may still send what it sent before reading it (RFC 6455
      // §5.5.1); a closing session discards data. Held to maxMessageSize at its header (1024
      // here), a 2000-byte message then failed the closing session with 1009, and the close
      // handshake could no longer be read: {1009, wasClean: false} after the quiet time.
      const closing = Promise.withResolvers<void>();
      const options = { maxMessageSize: 1024, maxFrameSize: 1 << 20, timeout: 2000 };
      const server = ourServer(options, async (session) => {
        for await (const message of session.incoming) {
          if (message === "close now") {
            void session.close(1000, "bye");
            closing.resolve();
          }
        }
      });
      const client = await wsClient(server.url);
      try {
        const session = await server.accepted.next();
        client.ws.pause(); // our close waits unread in ws's socket
        client.ws.send("close now");
        await within(closing.promise, 5000, "our close() to be called");
        client.ws.send(Buffer.alloc(2000));
        client.ws.resume(); // ws reads our close and answers it
        assert.deepEqual(await within(client.closed, 5000, "ws close"), {
          code: 1000,
          reason: "bye",
        });
        const info = await within(session.closed, 5000, "our close");
        assert.deepEqual(info, { code: 1000, reason: "bye", wasClean: true });
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step('ws closes with 4001 "x": our session ends with {4001, "x", clean}', async () => {
    const server = ourServer(LIMITS, echo);
    const client = await wsClient(server.url);
    try {
      const session = await server.accepted.next();
      client.ws.close(4001, "x");
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual(info, { code: 4001, reason: "x", wasClean: true });
      assert.equal((await within(client.closed, 5000, "ws close")).code, 4001);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("we close with 4002: ws's close event gets 4002 and the reason", async () => {
    const server = ourServer(LIMITS, async (session) => {
      const reader = session.incoming.getReader();
      await reader.read(); // any message asks us to close
      await session.close(4002, "server says bye");
    });
    const client = await wsClient(server.url);
    try {
      client.ws.send("close, please");
      const closed = await within(client.closed, 5000, "ws close");
      assert.deepEqual(closed, { code: 4002, reason: "server says bye" });
      const session = await server.accepted.next();
      const info: CloseInfo = await within(session.closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [4002, true]);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step(
    "a ws client that reads too slowly: close() cuts the connection 2 × timeout after it, ws sees 1006",
    async () => {
      // 64 MiB queued before our close; ws reads 64 KiB per 10 ms, so every write progresses
      // (no write timeout: 1 s) but all of it would take about 10 s.
      let started = 0;
      const server = ourServer(
        { ...LIMITS, timeout: 1000, maxSendQueue: 128 * MiB },
        async (session) => {
          const message = new Uint8Array(16 * 1024);
          for (let i = 0; i < 4096; i++) session.send(message).catch(() => {});
          started = Date.now();
          await session.close(1000, "done");
        },
      );
      const client = await wsClient(server.url);
      let received = 0;
      client.ws.on("message", () => received++);
      const reading = trickle(client.ws);
      try {
        const session = await server.accepted.next();
        const info = await within(session.closed, 8000, "our session to end");
        const elapsed = Date.now() - started;
        reading.stop();
        assert.deepEqual(info, { code: 1006, reason: "close timeout", wasClean: false });
        assert.ok(elapsed >= 1990 && elapsed < 6000, `ended ${elapsed} ms after close()`);
        assert.equal((await within(client.closed, 8000, "ws close")).code, 1006);
        assert.ok(received < 4096, `ws received ${received} of the 4096 messages`);
      } finally {
        reading.stop();
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step(
    "a ws close without a code gives 1005; ours answers with an empty close",
    async () => {
      const server = ourServer(LIMITS, echo);
      const client = await wsClient(server.url);
      try {
        const session = await server.accepted.next();
        client.ws.close();
        const info = await within(session.closed, 5000, "our close");
        assert.deepEqual(info, { code: 1005, reason: "", wasClean: true });
        assert.equal((await within(client.closed, 5000, "ws close")).code, 1005);
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );

  await t.step("our messages split by maxFrameSize reach ws whole", async () => {
    const text = "€".repeat(10_000); // 30000 bytes in frames of 1000: characters span frames
    const bytes = randomBytes(seeded(7), 30_000);
    const server = ourServer({ maxFrameSize: 1000 }, async (session) => {
      await session.send(text);
      await session.send(bytes);
      await echo(session);
    });
    const client = await wsClient(server.url);
    try {
      const got = await client.messages.next("the split text");
      assert.deepEqual([got.isBinary, got.data.toString() === text], [false, true]);
      const back = await client.messages.next("the split binary");
      assert.deepEqual([back.isBinary, sameBytes(back.data, bytes)], [true, true]);
      client.ws.close(1000);
      await within(client.closed, 5000, "ws close");
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  await t.step("aborting our signal option reaches ws as close 1001", async () => {
    const controller = new AbortController();
    const server = ourServer({ signal: controller.signal }, echo);
    const client = await wsClient(server.url);
    try {
      const session = await server.accepted.next();
      controller.abort();
      assert.equal((await within(client.closed, 5000, "ws close")).code, 1001);
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [1001, true]);
    } finally {
      client.ws.terminate();
      await server.close();
    }
  });

  const violations: [string, number, AcceptWebSocketOptions, (ws: WebSocket) => void][] = [
    [
      "a message over maxMessageSize",
      1009,
      { maxMessageSize: 10 },
      (ws) => ws.send(new Uint8Array(11)),
    ],
    ["a frame over maxFrameSize", 1009, { maxFrameSize: 10 }, (ws) => ws.send("x".repeat(11))],
    [
      "fragments over maxMessageSize",
      1009,
      { maxMessageSize: 10 },
      (ws) => {
        ws.send(new Uint8Array(6), { binary: true, fin: false });
        ws.send(new Uint8Array(6), { binary: true, fin: true });
      },
    ],
    [
      "text that is not UTF-8",
      1007,
      {},
      (ws) => ws.send(Buffer.from([0x61, 0xff]), { binary: false }), // ws does not check what it sends
    ],
  ];
  for (const [what, code, options, violate] of violations) {
    await t.step(`${what} reaches ws as close ${code}`, async () => {
      // timeout: after failing, our server waits this long for ws's close (see session_test).
      const server = ourServer({ ...LIMITS, ...options, timeout: 200 }, echo);
      const client = await wsClient(server.url);
      try {
        client.ws.send("before");
        assert.equal((await client.messages.next()).data.toString(), "before");
        violate(client.ws);
        assert.equal((await within(client.closed, 5000, "ws close")).code, code);
        const session = await server.accepted.next();
        const info = await within(session.closed, 5000, "our close");
        assert.deepEqual([info.code, info.wasClean], [code, false]);
      } finally {
        client.ws.terminate();
        await server.close();
      }
    });
  }
});

Deno.test("interop: our client (connectWebSocket) and a ws WebSocketServer", async (t) => {
  await t.step("text and binary of 0 B to 16 MiB come back intact", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { ...LIMITS, timeout: 5000 });
    try {
      assert.equal(session.role, "client");
      const peer = await server.connections.next("the ws connection");
      peer.ws.on(
        "message",
        (data: Buffer, isBinary: boolean) => peer.ws.send(data, { binary: isBinary }),
      );
      const reader = session.incoming.getReader();
      await assertEchoes(sessionPeer(session, reader), SIZES, 1455);
      reader.releaseLock();
      const closed = session.close(1000);
      assert.deepEqual(await within(closed, 5000, "our close"), {
        code: 1000,
        reason: "",
        wasClean: true,
      });
      assert.equal((await within(peer.closed, 5000, "ws close")).code, 1000);
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step(
    "raw: true gives every frame: ws's ping and fragments, our own fragments and the close",
    async () => {
      const server = await wsServer();
      const session = await connectWebSocket(server.url, { raw: true, timeout: 5000 });
      try {
        const peer = await server.connections.next("the ws connection");
        const frames = session.incoming.getReader();
        const writer = session.outgoing.getWriter();
        // ws's ping reaches us as a frame, and nothing answers it but us.
        peer.ws.ping(Buffer.from("ping?"));
        const ping = (await frames.read()).value!;
        assert.deepEqual([ping.opcode, new TextDecoder().decode(ping.payload)], [0x9, "ping?"]);
        await writer.write(Frame.pong(ping.payload));
        assert.equal((await peer.pongs.next("ws's pong")).toString(), "ping?");
        // A text in three frames of ours, which ws reassembles; ws's fragments reach us as such.
        await writer.write(new Frame(Opcode.Text, utf8("hel"), false));
        await writer.write(new Frame(Opcode.Continuation, utf8("lo "), false));
        await writer.write(new Frame(Opcode.Continuation, utf8("€"), true));
        assert.equal((await peer.messages.next("the text")).data.toString(), "hello €");
        peer.ws.send("ab", { fin: false });
        peer.ws.send("cd", { fin: true });
        const parts = [(await frames.read()).value!, (await frames.read()).value!];
        assert.deepEqual(
          parts.map((f) => [f.opcode, f.fin, new TextDecoder().decode(f.payload)]),
          [[Opcode.Text, false, "ab"], [Opcode.Continuation, true, "cd"]],
        );
        // ws closes: its close frame is the last one, and we answer it ourselves.
        peer.ws.close(4001, "raw");
        const close = (await frames.read()).value!;
        assert.equal(close.opcode, Opcode.Close);
        assert.equal((await frames.read()).done, true);
        await writer.write(Frame.close(4001));
        assert.deepEqual(await within(session.closed, 5000, "our session's end"), {
          code: 4001,
          reason: "raw",
          wasClean: true,
        });
        assert.equal((await within(peer.closed, 5000, "ws close")).code, 4001);
      } finally {
        await server.close();
        await session.closed;
      }
    },
  );

  await t.step("fragmented messages from ws are reassembled", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { ...LIMITS, timeout: 5000 });
    try {
      const peer = await server.connections.next("the ws connection");
      const reader = session.incoming.getReader();
      peer.ws.send("frag", { fin: false });
      peer.ws.send("ment", { fin: false });
      peer.ws.send("ed ✓", { fin: true });
      assert.equal(await nextMessage(reader), "fragmented ✓");
      peer.ws.send(Uint8Array.of(9), { binary: true, fin: false });
      peer.ws.send(Uint8Array.of(8, 7), { binary: true, fin: true });
      assert.deepEqual(await nextMessage(reader), Uint8Array.of(9, 8, 7));
      reader.releaseLock();
      session.close(1000);
      await within(peer.closed, 5000, "ws close");
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("our masked frames, split by maxFrameSize, reach ws whole", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { maxFrameSize: 1000, timeout: 5000 });
    try {
      const peer = await server.connections.next("the ws connection");
      const text = "€".repeat(10_000); // 30000 bytes in frames of 1000: characters span frames
      await session.send(text);
      const got = await peer.messages.next("our split message");
      assert.equal(got.data.toString(), text);
      session.close(1000);
      await within(peer.closed, 5000, "ws close");
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("a ping from the ws server gets a pong with the same payload", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { timeout: 5000 });
    try {
      const peer = await server.connections.next("the ws connection");
      for (const payload of [Buffer.from("ping from ws"), Buffer.alloc(0), Buffer.alloc(125, 1)]) {
        peer.ws.ping(payload);
        const pong = await peer.pongs.next("the pong");
        assert.ok(sameBytes(pong, payload), `pong of ${payload.length} bytes differs`);
      }
      session.close(1000);
      await within(peer.closed, 5000, "ws close");
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("our pings are answered by the ws server, so the session stays open", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { pingInterval: 20, timeout: 300 });
    try {
      const peer = await server.connections.next("the ws connection");
      for (let i = 0; i < 5; i++) await peer.pings.next(`our ping ${i}`, 2000);
      assert.equal(session.signal.aborted, false);
      peer.ws.on(
        "message",
        (data: Buffer, isBinary: boolean) => peer.ws.send(data, { binary: isBinary }),
      );
      await session.send("still open");
      const reader = session.incoming.getReader();
      assert.equal(await nextMessage(reader), "still open");
      reader.releaseLock();
      session.close(1000);
      await within(peer.closed, 5000, "ws close");
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step(
    'the ws server closes with 4001 "x": ours ends with {4001, "x", clean}',
    async () => {
      const server = await wsServer();
      const session = await connectWebSocket(server.url, { timeout: 5000 });
      try {
        const peer = await server.connections.next("the ws connection");
        peer.ws.close(4001, "x");
        const info = await within(session.closed, 5000, "our close");
        assert.deepEqual(info, { code: 4001, reason: "x", wasClean: true });
        assert.equal((await within(peer.closed, 5000, "ws close")).code, 4001);
      } finally {
        await server.close();
        await session.closed;
      }
    },
  );

  await t.step("we close with 4002: the ws server's close event gets 4002", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { timeout: 5000 });
    try {
      const peer = await server.connections.next("the ws connection");
      const closed = session.close(4002, "client says bye");
      assert.deepEqual(await within(peer.closed, 5000, "ws close"), {
        code: 4002,
        reason: "client says bye",
      });
      const info = await within(closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [4002, true]);
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("a message over our maxMessageSize reaches the ws server as 1009", async () => {
    const server = await wsServer();
    const session = await connectWebSocket(server.url, { maxMessageSize: 10, timeout: 200 });
    try {
      const peer = await server.connections.next("the ws connection");
      const reader = session.incoming.getReader();
      peer.ws.send("small");
      assert.equal(await nextMessage(reader), "small");
      peer.ws.send("a message of 28 bytes at all");
      await assert.rejects(within(reader.read(), 5000, "our failure"), { closeCode: 1009 });
      assert.equal((await within(peer.closed, 5000, "ws close")).code, 1009);
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [1009, false]);
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("the ws server picks a subprotocol we offered", async () => {
    const server = await wsServer({
      handleProtocols: (protocols: Set<string>) => (protocols.has("v2.chat") ? "v2.chat" : false),
    });
    const session = await connectWebSocket(server.url, {
      protocols: ["v1.chat", "v2.chat"],
      timeout: 5000,
    });
    try {
      assert.equal(session.protocol, "v2.chat");
      const peer = await server.connections.next("the ws connection");
      assert.equal(peer.ws.protocol, "v2.chat");
      session.close(1000);
      await within(peer.closed, 5000, "ws close");
    } finally {
      await server.close();
      await session.closed;
    }
  });

  await t.step("connecting leaves nothing on a long-lived signal (3 connections)", async () => {
    // Deno keeps every signal made with AbortSignal.any for as long as its sources live: one
    // made per connection from the caller's signal (an application's, say) stayed as long as
    // that signal, about 360 bytes each.
    const server = await wsServer();
    const any = AbortSignal.any;
    let made = 0;
    AbortSignal.any = (signals) => (made++, any.call(AbortSignal, signals));
    const lifetime = new AbortController();
    try {
      for (let i = 0; i < 3; i++) {
        const session = await connectWebSocket(server.url, {
          signal: lifetime.signal,
          timeout: 5000,
        });
        const peer = await server.connections.next("the ws connection");
        peer.ws.on("close", () => {});
        assert.equal((await within(session.close(1000), 5000, "our close")).code, 1000);
      }
    } finally {
      AbortSignal.any = any;
      await server.close();
    }
    assert.equal(made, 0, `${made} signals made with AbortSignal.any for 3 connections`);
  });

  await t.step(
    "a server that never answers: 1006 at the timeout or when signal aborts",
    async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const conns: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) conns.push(conn); // accepted, never answered
      })();
      const url = `ws://127.0.0.1:${listener.addr.port}/`;
      try {
        const started = performance.now();
        await assert.rejects(connectWebSocket(url, { timeout: 100 }), (e) => {
          assert.ok(e instanceof WebSocketError && e.closeCode === 1006, String(e));
          assert.equal((e.cause as DOMException).name, "TimeoutError");
          return true;
        });
        assert.ok(performance.now() - started < 2000, "the timeout ended the handshake");
        const controller = new AbortController();
        const connecting = connectWebSocket(url, { signal: controller.signal, timeout: 10_000 });
        setTimeout(() => controller.abort(new Error("stop")), 50);
        await assert.rejects(connecting, (e) => {
          assert.ok(e instanceof WebSocketError && e.closeCode === 1006, String(e));
          assert.equal((e.cause as Error).message, "stop");
          return true;
        });
      } finally {
        listener.close();
        await accepting.catch(() => {});
        for (const conn of conns) conn.close();
      }
    },
  );

  await t.step(
    "refuses subprotocols that are not distinct tokens, and an extension offer, before connecting",
    async () => {
      // No server listens: each is refused before any connection is tried.
      const url = "ws://127.0.0.1:9/";
      for (const protocols of [["chat", "chat"], ["a b"], [""], ["chät"], ["v1,v2"]]) {
        await assert.rejects(
          connectWebSocket(url, { protocols, timeout: 1000 }),
          (e) => e instanceof TypeError && /is not a token or is offered twice/.test(e.message),
          JSON.stringify(protocols),
        );
      }
      await assert.rejects(
        connectWebSocket(url, {
          headers: { "sec-websocket-extensions": "permessage-deflate" },
          timeout: 1000,
        }),
        (e) =>
          e instanceof TypeError &&
          /sec-websocket-extensions: no extension is supported/.test(e.message),
      );
    },
  );

  await t.step("a ws server that refuses the upgrade gives an HttpError", async () => {
    const server = await wsServer({ verifyClient: () => false });
    try {
      await assert.rejects(
        connectWebSocket(server.url, { timeout: 5000 }),
        (e) => e instanceof HttpError && e.status === 401,
      );
    } finally {
      await server.close();
    }
  });
});

Deno.test("interop: ws clients and httpServer's sessions", async (t) => {
  await t.step(
    "4 KiB messages built in pooled buffers each come back to their own client",
    async () => {
      // On the connections httpServer accepts, and on our client's, a 4 KiB message's frame is
      // built in a block lent from a process-wide pool (lib/_slab.ts) and given back once
      // written, to be lent to any connection next: 8 ws clients and our client at once, each
      // message its own bytes, must each get exactly their own echoes, and the loans must happen
      // (the server, the upgrade's hand-over and our client mark their connections). The rules
      // of reuse themselves are tested in memory (session_direct_test, pipeline_test).
      const { handler } = upgradeHandler(LIMITS, echo);
      const server = httpServer({ hostname: "127.0.0.1", port: 0 }, handler);
      const url = `ws://127.0.0.1:${server.addr.port}/`;
      const before = lendingStats.loans;
      const ROUNDS = 25;
      const message = (client: number, round: number) =>
        new Uint8Array(4096).map((_, i) => (client * 31 + round * 7 + i) & 0xff);
      const clients = await Promise.all(Array.from({ length: 8 }, () => wsClient(url)));
      const ours = await connectWebSocket(url, LIMITS);
      try {
        await Promise.all([
          ...clients.map(async ({ ws, messages }, c) => {
            for (let round = 0; round < ROUNDS; round++) {
              ws.send(message(c, round));
              const echoed = await within(messages.next(), 5000, `client ${c}'s echo ${round}`);
              assert.ok(
                echoed.isBinary && sameBytes(echoed.data, message(c, round)),
                `${c}/${round}`,
              );
            }
          }),
          (async () => {
            const incoming = ours.incoming[Symbol.asyncIterator]();
            for (let round = 0; round < ROUNDS; round++) {
              await ours.send(message(8, round));
              const { value } = await within(incoming.next(), 5000, `our client's echo ${round}`);
              assert.ok(value instanceof Uint8Array && sameBytes(value, message(8, round)));
            }
          })(),
        ]);
        // Each echo and each of our client's frames could borrow (one whose connection's last
        // write was still under way would not; all 250 did in three runs): more than the server's
        // 225 echoes, so our client's frames borrowed too.
        const loans = lendingStats.loans - before;
        assert.ok(loans > ROUNDS * 9, `${loans} loans for ${ROUNDS * 10} large frames`);
      } finally {
        for (const { ws } of clients) ws.close(1000);
        await ours.close();
        await Promise.all(clients.map(({ closed }) => within(closed, 5000, "a ws client's close")));
        await within(server.shutdown(), 5000, "the server to shut down");
      }
    },
  );
});
