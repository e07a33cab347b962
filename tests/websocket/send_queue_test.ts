// Copyright 2026 the wirestream authors. MIT license.
// maxSendQueue: sends that are not awaited cannot queue without bound. A send made while more
// than the limit waits to be written fails the session with 1011 and rejects; what was
// accepted before it still goes out, in order, before the close frame.
import assert from "node:assert/strict";
import {
  CloseCode,
  Frame,
  NativeWebSocketSession,
  Opcode,
  RawWebSocketSession,
  readClosePayload,
  type Transport,
  upgradeWebSocket,
  WebSocketError,
  WebSocketSession,
} from "@wirestream/wirestream";
import { within } from "../_util/async.ts";
import { wsClient } from "../_util/clients.ts";
import { directTransport, duplexPair, RawPeer } from "../_util/duplex.ts";
import { wire, wsEngines } from "../_util/engines.ts";
import { floodUntilRefused } from "../_util/ws.ts";

/**
 * A 1000-byte payload takes 1004 bytes on the wire, unmasked (a 4-byte header), and counts
 * 2028 bytes while it waits: each write counts 1024 bytes more (WRITE_OVERHEAD).
 */
const MESSAGE = 1000;
const LIMIT = 5000;

/** Settles `sends` into what each became: "sent", or the rejection's close code. */
async function outcomes(sends: Promise<void>[]): Promise<(string | number)[]> {
  const settled = await Promise.allSettled(sends);
  return settled.map((s) =>
    s.status === "fulfilled"
      ? "sent"
      : s.reason instanceof WebSocketError
      ? s.reason.closeCode
      : String(s.reason)
  );
}

const transports: [string, (t: Transport) => Transport][] = [
  ["a stream transport", (t) => t],
  ["a direct transport", (t) => directTransport(t.readable, t.writable)],
];

/** An open socket whose send buffer never drains: a native session's sends all wait. */
function stalledSocket(): WebSocket {
  return {
    readyState: WebSocket.OPEN,
    bufferedAmount: 1 << 30,
    binaryType: "blob",
    addEventListener() {},
    removeEventListener() {},
    send() {
      throw new Error("nothing may be handed to this socket");
    },
    close() {},
  } as unknown as WebSocket;
}

/**
 * An open socket whose send buffer a test fills and empties: `bufferedAmount` is what the
 * test sets, and what is handed to it is kept in `sent`. Pass it on as `WebSocket`.
 */
function drainableSocket() {
  const sent: unknown[] = [];
  return {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    binaryType: "blob",
    sent,
    addEventListener() {},
    removeEventListener() {},
    send(data: unknown) {
      sent.push(data);
    },
    close() {},
  };
}

Deno.test("maxSendQueue", async (t) => {
  for (const [name, make] of transports) {
    await t.step(`fails the session at the first send over it, on ${name}`, async () => {
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(make(ours), { maxSendQueue: LIMIT, timeout: 2000 });
      const incoming = session.incoming.getReader();
      // Nothing is accepted by the transport within one synchronous loop, so the queue counts
      // 2028 bytes per send: the fourth send (6084 bytes waiting > 5000) is refused.
      const sends = Array.from(
        { length: 6 },
        (_, i) => session.send(new Uint8Array(MESSAGE).fill(i)),
      );
      const refused = await sends[3]!.catch((error) => error);
      assert.ok(refused instanceof WebSocketError, String(refused));
      assert.equal(refused.closeCode, CloseCode.InternalError);
      assert.match(
        refused.message,
        /6084 bytes already wait to be sent \(1024 counted per write on top of its bytes\), more than maxSendQueue \(5000\)/,
      );
      await assert.rejects(incoming.read(), (e) => e === refused, "incoming errors with it");
      // Only now does the peer read: the three accepted messages, in order, then the close.
      const peer = new RawPeer(theirs, "client");
      for (let i = 0; i < 3; i++) {
        const frame = await peer.next();
        assert.equal(frame?.opcode, Opcode.Binary);
        assert.deepEqual(frame!.payload, new Uint8Array(MESSAGE).fill(i));
      }
      const close = await peer.next();
      assert.equal(close?.opcode, Opcode.Close);
      assert.deepEqual(readClosePayload(close!.payload), {
        code: 1011,
        reason: "send queue full",
      });
      assert.deepEqual(await outcomes(sends), ["sent", "sent", "sent", 1011, 1006, 1006]);
      await peer.send(Frame.close(1011));
      assert.deepEqual(await session.closed, {
        code: 1011,
        reason: "send queue full",
        wasClean: false,
      });
      await peer.end();
    });
  }

  for (const [name, make] of transports) {
    await t.step(
      `counts 1024 bytes per write, so empty messages are bounded, on ${name}`,
      async () => {
        // Counted as bytes alone (2 per empty message), 8 MiB let 4 million empty messages wait:
        // 2.5 GB held on a direct transport, 4 GB on a stream one.
        const [ours, theirs] = duplexPair();
        const session = new WebSocketSession(make(ours), { maxSendQueue: 65_536, timeout: 2000 });
        const results = outcomes(Array.from({ length: 1000 }, () => session.send("")));
        const peer = new RawPeer(theirs, "client");
        for (let i = 0; i < 64; i++) assert.equal((await peer.next())?.opcode, Opcode.Text);
        assert.equal((await peer.next())?.opcode, Opcode.Close);
        // 64 sends wait, counted 1026 bytes each (65,664 bytes > 65,536): the 65th is refused.
        assert.deepEqual(await results, [
          ...Array(64).fill("sent"),
          1011,
          ...Array(1000 - 65).fill(1006),
        ]);
        await peer.send(Frame.close(1011));
        assert.equal((await session.closed).code, 1011);
        await peer.end();
      },
    );
  }

  await t.step("counts 1024 bytes per send waiting on the native engine too", async () => {
    const socket = stalledSocket(); // every send waits its turn in the session
    const session = new NativeWebSocketSession(socket, { maxSendQueue: 65_536, timeout: 100 });
    const sends = Array.from({ length: 1000 }, () => session.send(""));
    // Each waits counted 14 + 1024 bytes: 64 wait (66,432 bytes > 65,536), the 65th is refused.
    const first: unknown = await sends[64]!.catch((error: unknown) => error);
    assert.ok(first instanceof WebSocketError && first.closeCode === 1011, String(first));
    const results = await outcomes(sends);
    assert.equal(results.indexOf(1011), 64, `${results.indexOf(1011)} sends waited first`);
    assert.deepEqual(await session.closed, {
      code: 1011,
      reason: "send queue full",
      wasClean: false,
    });
  });

  await t.step(
    "sends that waited for Deno's buffer to drain stop counting once sent: awaited, they never fill it",
    async () => {
      // Each send waits counted 2000 bytes + its frame head + 1024: two such counts left
      // behind would take 4096 past the limit, so the third send would be refused with 1011.
      const socket = drainableSocket();
      const session = new NativeWebSocketSession(socket as unknown as WebSocket, {
        maxSendQueue: 4096,
        maxBufferedAmount: 1000,
        timeout: 200,
      });
      for (let i = 0; i < 10; i++) {
        socket.bufferedAmount = 5000; // Deno's buffer is full: the send waits...
        const drain = setTimeout(() => (socket.bufferedAmount = 0), 5); // ...until it drains
        try {
          await session.send(new Uint8Array(2000).fill(i));
        } catch (error) {
          clearTimeout(drain);
          throw error;
        }
      }
      assert.deepEqual(socket.sent.map((data) => new Uint8Array(data as ArrayBuffer)[0]), [
        ...Array(10).keys(),
      ]);
      assert.equal(session.signal.aborted, false);
      session.close();
      assert.equal((await session.closed).code, 1006); // this socket never answers a close
    },
  );

  await t.step("bounds writes to outgoing that are not awaited, on both sessions", async () => {
    // They waited in the stream's own queue, which nothing bounded: a million such writes of
    // empty messages held 561 MB for a peer that stopped reading.
    for (const raw of [false, true]) {
      const [ours, theirs] = duplexPair();
      const options = { maxSendQueue: 65_536, timeout: 2000 };
      const session = raw
        ? new RawWebSocketSession(ours, options)
        : new WebSocketSession(ours, options);
      const writer = (session.outgoing as WritableStream<unknown>).getWriter();
      await writer.ready;
      const writes = Array.from({ length: 1000 }, () => writer.write(raw ? Frame.text("") : ""));
      const settled = Promise.allSettled(writes);
      // The first write went to the session, which holds it (the peer does not read yet); the
      // next ones wait in the stream, counted 1024 bytes each: the 67th, made while 65 wait
      // (66,560 bytes > 65,536), is refused, and the writes still waiting reject with it.
      const refused: unknown = await writes[66]!.catch((error: unknown) => error);
      assert.ok(refused instanceof WebSocketError && refused.closeCode === 1011, String(refused));
      assert.match(refused.message, /^Cannot write to outgoing: 66560 bytes already wait/);
      const peer = new RawPeer(theirs, "client");
      assert.equal((await peer.next())?.opcode, Opcode.Text);
      const close = await peer.next();
      assert.deepEqual(readClosePayload(close!.payload), {
        code: 1011,
        reason: "send queue full",
      });
      const results = await settled;
      assert.equal(results[0]!.status, "fulfilled", `raw: ${raw}: the write that was sent`);
      for (const result of results.slice(1)) {
        assert.equal(result.status === "rejected" && result.reason, refused);
      }
      await peer.send(Frame.close(1011));
      assert.equal((await session.closed).code, 1011);
      await peer.end();
    }
  });

  await t.step("lets maxSendQueue bytes wait, and refuses a send at one byte more", async () => {
    // 1004 bytes and 1024 of overhead per send: 4 wait 8112 bytes; 3 wait 6084, which 6084 allows.
    for (const [limit, accepted] of [[6084, 4], [6083, 3]] as const) {
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(ours, { maxSendQueue: limit, timeout: 2000 });
      const sends = Array.from(
        { length: accepted + 2 },
        (_, i) => session.send(new Uint8Array(MESSAGE).fill(i)),
      );
      const refused = await sends[accepted]!.catch((error) => error);
      assert.ok(refused instanceof WebSocketError, String(refused));
      assert.ok(
        refused.message.includes(
          `${
            accepted * 2028
          } bytes already wait to be sent (1024 counted per write on top of its bytes), more than maxSendQueue (${limit})`,
        ),
        refused.message,
      );
      const peer = new RawPeer(theirs, "client");
      for (let i = 0; i <= accepted; i++) await peer.next(); // the messages, then the close
      await peer.send(Frame.close(1011));
      assert.deepEqual(await outcomes(sends), [...Array(accepted).fill("sent"), 1011, 1006]);
      assert.equal((await session.closed).code, 1011);
      await peer.end();
    }
  });

  await t.step("bounds writes to outgoing that are not awaited on the native engine", async () => {
    const socket = stalledSocket();
    const session = new NativeWebSocketSession(socket, { maxSendQueue: 65_536, timeout: 100 });
    const writer = session.outgoing.getWriter();
    await writer.ready;
    const writes = Array.from({ length: 1000 }, () => writer.write(""));
    const settled = Promise.allSettled(writes);
    // The first write waits in the session (Deno's buffer never drains), the next ones in the
    // stream: the 67th is refused, as on the wire engine.
    const refused: unknown = await writes[66]!.catch((error: unknown) => error);
    assert.ok(refused instanceof WebSocketError && refused.closeCode === 1011, String(refused));
    assert.match(refused.message, /^Cannot write to outgoing: 66560 bytes already wait/);
    const results = await settled;
    for (const result of results.slice(1)) {
      assert.equal(result.status === "rejected" && result.reason, refused);
    }
    assert.deepEqual(await session.closed, {
      code: 1011,
      reason: "send queue full",
      wasClean: false,
    });
  });

  await t.step("never refuses an awaited send, even at 0", async () => {
    const [ours, theirs] = duplexPair();
    const session = new WebSocketSession(directTransport(ours.readable, ours.writable), {
      maxSendQueue: 0,
      timeout: 2000,
    });
    const peer = new RawPeer(theirs, "client");
    const received = (async () => {
      const payloads: number[] = [];
      for (let i = 0; i < 50; i++) payloads.push((await peer.next())!.payload.length);
      return payloads;
    })();
    for (let i = 0; i < 50; i++) await session.send(new Uint8Array(i * 100));
    assert.deepEqual(await received, Array.from({ length: 50 }, (_, i) => i * 100));
    // Awaited writes to `outgoing` do not trip it either (the stream hands the session one at
    // a time; writes not awaited wait in the stream and count: see the steps above).
    const writer = session.outgoing.getWriter();
    const read = (async () => {
      for (let i = 0; i < 20; i++) assert.equal((await peer.next())!.payload.length, 500);
    })();
    for (let i = 0; i < 20; i++) await writer.write("x".repeat(500));
    await read;
    writer.releaseLock();
    await peer.send(Frame.close(1000));
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    await peer.end();
  });

  await t.step("bounds a raw session's frames too", async () => {
    const [ours, theirs] = duplexPair();
    const session = new RawWebSocketSession(ours, { maxSendQueue: LIMIT, timeout: 2000 });
    const sends = Array.from(
      { length: 5 },
      (_, i) => session.send(Frame.binary(new Uint8Array(MESSAGE).fill(i))),
    );
    const peer = new RawPeer(theirs, "client");
    for (let i = 0; i < 3; i++) assert.equal((await peer.next())!.payload[0], i);
    const close = await peer.next();
    assert.deepEqual(readClosePayload(close!.payload), { code: 1011, reason: "send queue full" });
    assert.deepEqual(await outcomes(sends), ["sent", "sent", "sent", 1011, 1006]);
    await peer.send(Frame.close(1011));
    assert.equal((await session.closed).code, 1011);
    await peer.end();
  });

  await t.step("is checked as a limit", () => {
    const [ours] = duplexPair();
    for (const bad of [-1, 1.5, Number.NaN]) {
      assert.throws(() => new WebSocketSession(ours, { maxSendQueue: bad }), RangeError);
    }
  });

  for (const engine of wsEngines) {
    await t.step(
      `on ${engine.name}, a peer that stops reading ends a sender that does not await`,
      async () => {
        const LIMIT_BYTES = 1 << 20;
        const SIZE = 65_536;
        const refused = Promise.withResolvers<{ at: number; error: unknown }>();
        const ended = Promise.withResolvers<unknown>();
        const server = engine.serve((request) => {
          const { response, session } = upgradeWebSocket(request, {
            maxSendQueue: LIMIT_BYTES,
            timeout: 10_000,
          });
          floodUntilRefused(session, SIZE).then((outcome) => {
            refused.resolve(outcome);
            return session.closed;
          }).then(ended.resolve);
          return response;
        });
        const client = wsClient(`${server.wsOrigin}/`);
        const received: Uint8Array[] = [];
        client.ws.on("message", (data: Uint8Array) => received.push(data));
        try {
          assert.equal(await within(client.opened, 5000, "ws to open"), true);
          client.ws.pause(); // the socket buffers fill, then the session's queue
          const { at, error } = await within(refused.promise, 20_000, "a send to be refused");
          assert.ok(error instanceof WebSocketError && error.closeCode === 1011, String(error));
          // Before the refusal: the socket buffers (a few MB on loopback), Deno's buffer on
          // the native engine (maxBufferedAmount, 1 MiB), and the queue itself.
          assert.ok(at * SIZE < 40_000_000, `${at} messages were sent before the refusal`);
          client.ws.resume();
          assert.deepEqual(
            await within(client.closed, 10_000, "the close"),
            { code: 1011, reason: "send queue full" },
          );
          for (const [i, data] of received.entries()) {
            assert.equal(data.length, SIZE);
            assert.equal(data[0], i & 0xff, `message ${i} in order`);
          }
          const count = received.length;
          if (engine === wire) {
            assert.equal(count, at, "every send made before the refusal arrived");
          } else {
            // Sends still waiting for Deno's buffer when the session failed reject with 1006.
            assert.ok(count > 0 && count <= at, `${count} of ${at} messages arrived`);
          }
          const info = await within(ended.promise, 10_000, "the session to end");
          assert.deepEqual(info, { code: 1011, reason: "send queue full", wasClean: false });
        } finally {
          client.ws.terminate();
          await server.close();
        }
      },
    );
  }
});

Deno.test("maxSendQueue (review regressions)", async (t) => {
  for (const engine of wsEngines) {
    await t.step(
      `on ${engine.name}, writes to outgoing after close() leave the clean close as it is`,
      async () => {
        // A session closing normally refuses sends with 1006; writes to outgoing that waited
        // in the stream past the limit also failed the session then, so `closed` said 1011
        // "send queue full" for a close handshake that went out and came back as 1000.
        const ended = Promise.withResolvers<{ info: unknown; writes: unknown[] }>();
        const server = engine.serve((request) => {
          const { response, session } = upgradeWebSocket(request, {
            maxSendQueue: LIMIT,
            timeout: 5000,
          });
          (async () => {
            await session.send("ready");
            session.close(1000, "bye");
            const writer = session.outgoing.getWriter();
            const writes = Array.from(
              { length: 10 },
              () => writer.write(new Uint8Array(MESSAGE)).then(() => "sent", (e) => e),
            );
            ended.resolve({ info: await session.closed, writes: await Promise.all(writes) });
          })();
          return response;
        });
        const client = wsClient(`${server.wsOrigin}/`);
        try {
          assert.equal(await within(client.opened, 5000, "ws to open"), true);
          assert.deepEqual(
            await within(client.closed, 5000, "the close"),
            { code: 1000, reason: "bye" },
          );
          const { info, writes } = await within(ended.promise, 5000, "the session to end");
          assert.deepEqual(info, { code: 1000, reason: "bye", wasClean: true });
          for (const error of writes) {
            assert.ok(error instanceof WebSocketError && error.closeCode === 1006, String(error));
          }
        } finally {
          client.ws.terminate();
          await server.close();
        }
      },
    );
  }
});

Deno.test("maxSendQueue: the session's own control frames", async (t) => {
  await t.step(
    "a pong on its way does not make an awaited send refused, even at 0 (wire engine)",
    async () => {
      // ws sends a ping and a text in one write; the session answers the ping, and the
      // handler's awaited echo of the text was refused with 1011 while the pong was being
      // written: the pong counted toward maxSendQueue, though no send was left unawaited.
      const ended = Promise.withResolvers<unknown>();
      const server = wire.serve((request) => {
        const { response, session } = upgradeWebSocket(request, {
          maxSendQueue: 0,
          timeout: 5000,
        });
        (async () => {
          for await (const message of session.incoming) await session.send(message);
        })().then(() => "done", (error) => error).then(ended.resolve);
        return response;
      });
      const client = wsClient(`${server.wsOrigin}/`);
      try {
        assert.equal(await within(client.opened, 5000, "ws to open"), true);
        for (let i = 0; i < 5; i++) {
          // deno-lint-ignore no-explicit-any
          const socket = (client.ws as any)._socket;
          socket.cork();
          client.ws.ping(`ping ${i}`);
          client.ws.send(`echo ${i}`);
          socket.uncork();
          assert.equal(String(await client.pongs.next("the pong", 5000)), `ping ${i}`);
          const echoed = await Promise.race([
            client.messages.next("the echo", 5000),
            client.closed,
          ]);
          assert.deepEqual(
            "data" in echoed ? String(echoed.data) : echoed,
            `echo ${i}`,
            "the echo, not a close",
          );
        }
        client.ws.close(1000);
        assert.deepEqual(await within(client.closed, 5000, "the close"), {
          code: 1000,
          reason: "",
        });
        assert.equal(await within(ended.promise, 5000, "the handler to end"), "done");
      } finally {
        client.ws.terminate();
        await server.close();
      }
    },
  );
});
