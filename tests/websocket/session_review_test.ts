// Copyright 2026 the wirestream authors. MIT license.
// Regressions found in review: each step reproduces a defect that once existed.
import assert from "node:assert/strict";
import {
  Frame,
  FrameEncoder,
  Opcode,
  pinger,
  RawWebSocketSession,
  readClosePayload,
  type TransportReady,
  WebSocketError,
  WebSocketSession,
} from "@wirestream/wirestream";
import { byteDuplexPair, duplexPair, RawPeer } from "../_util/duplex.ts";
import { concat } from "../_util/random.ts";
import { within } from "../_util/async.ts";
import { echo, ourServer, rawSocket } from "../_util/ws.ts";

/** Encodes frames as a client sends them, in one buffer. */
function clientBytes(...frames: Frame[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const encoder = new FrameEncoder({ role: "client" });
  for (const frame of frames) encoder.encode(frame, { enqueue: (c) => chunks.push(c.slice()) });
  return concat(chunks);
}

/**
 * A transport whose peer never reads nor writes: every write stalls until close(), which
 * fails it, as closing a `Deno.Conn` fails a write under way. Counts its close() calls.
 */
function stalledTransport(): TransportReady & { closes: number } {
  const stalled: ((error: Error) => void)[] = [];
  return {
    readable: new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) }),
    writable: new WritableStream<Uint8Array>({
      write: () => new Promise<void>((_, reject) => void stalled.push(reject)),
    }),
    closes: 0,
    close() {
      this.closes++;
      for (const reject of stalled.splice(0)) reject(new Error("connection closed"));
    },
  };
}

Deno.test("WebSocketSession (review regressions)", async (t) => {
  await t.step("a send made before the transport came times out like any write", async () => {
    const ready = Promise.withResolvers<TransportReady>();
    const session = new WebSocketSession(ready.promise, { timeout: 100 });
    const sent = session.send("hello"); // queued until the transport comes
    const transport = stalledTransport();
    ready.resolve(transport);
    await assert.rejects(sent, WebSocketError);
    const info = await within(session.closed, 2000, "the write timeout to end the session");
    assert.deepEqual(info, { code: 1006, reason: "write timeout", wasClean: false });
    assert.equal(transport.closes, 1);
  });

  await t.step("a write timeout ends the transport at once, without a flush", async () => {
    const transport = stalledTransport();
    const session = new WebSocketSession(transport, { timeout: 200 });
    session.send("x").catch(() => {});
    const aborted = new Promise<number>((resolve) => {
      const closes = () => resolve(transport.closes);
      session.signal.addEventListener("abort", () => queueMicrotask(closes), { once: true });
    });
    // A clean end would wait up to `timeout` more for the close frame to flush first.
    assert.equal(await aborted, 1, "close() was called as the session ended");
    assert.equal((await session.closed).code, 1006);
  });

  await t.step(
    "takes a matching pong that shares a read with another pong (BYOB reuse)",
    async () => {
      const [ours, theirs] = byteDuplexPair();
      const session = new WebSocketSession(ours, { pingInterval: 30, timeout: 300 });
      const peer = new RawPeer(theirs, "client");
      try {
        const ping = await peer.next();
        assert.equal(ping?.opcode, Opcode.Ping);
        // An unsolicited pong and the matching one in a single write: one read on our side.
        await peer.bytes(clientBytes(Frame.pong(Uint8Array.of(1)), Frame.pong(ping!.payload)));
        // Without the copy, the second pong's payload was detached by the next read and the
        // session closed with 1011 after `timeout`.
        const second = await peer.next();
        assert.equal(second?.opcode, Opcode.Ping, "a second ping means the first was answered");
        await peer.send(Frame.pong(second!.payload));
        await peer.send(Frame.close(1000));
        const reply = await peer.next();
        assert.deepEqual(readClosePayload(reply!.payload), { code: 1000, reason: "" });
        assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
      } finally {
        await peer.end();
        await session.close().catch(() => {});
      }
    },
  );

  await t.step("holds a fragmented message's bytes, not its fragments' read buffers", async () => {
    const [ours, theirs] = byteDuplexPair();
    const session = new WebSocketSession(ours, { timeout: 300 });
    const peer = new RawPeer(theirs, "client");
    const reader = session.incoming.getReader();
    try {
      // 200 one-byte fragments, each in its own write (so each in its own read).
      await peer.send(new Frame(Opcode.Binary, Uint8Array.of(0), false));
      for (let i = 1; i < 199; i++) await peer.send(Frame.continuation(Uint8Array.of(i), false));
      await peer.send(Frame.continuation(Uint8Array.of(199), true));
      const { value } = await reader.read();
      assert.ok(value instanceof Uint8Array);
      assert.deepEqual([...value], Array.from({ length: 200 }, (_, i) => i));
      assert.equal(
        value.buffer.byteLength,
        200,
        "an exact buffer of its own, no pinned read buffer",
      );
    } finally {
      reader.releaseLock();
      await peer.send(Frame.close(1000));
      await session.closed;
      await peer.end();
    }
  });

  await t.step("copies small binary messages out of the read buffer", async () => {
    const [ours, theirs] = byteDuplexPair();
    const session = new WebSocketSession(ours, { timeout: 300 });
    const peer = new RawPeer(theirs, "client");
    const reader = session.incoming.getReader();
    try {
      await peer.send(Frame.binary(Uint8Array.of(7)));
      const { value } = await reader.read();
      assert.ok(value instanceof Uint8Array);
      assert.equal(value.buffer.byteLength, 1);
    } finally {
      reader.releaseLock();
      await peer.send(Frame.close(1000));
      await session.closed;
      await peer.end();
    }
  });

  await t.step("stops sharing output buffers with a transport that transfers them", async () => {
    // A writable that transfers each chunk's buffer, as a byte stream's enqueue does.
    const received: number[] = [];
    const writable = new WritableStream<Uint8Array>({
      write(chunk) {
        const { byteOffset, length } = chunk; // read before the transfer detaches the view
        const moved = new Uint8Array((chunk.buffer as ArrayBuffer).transfer(), byteOffset, length);
        received.push(moved.length);
      },
    });
    const session = new WebSocketSession({ readable: new ReadableStream(), writable }, {
      timeout: 300,
    });
    await session.send("abc"); // 5 bytes on the wire; the session sees the transfer
    // Sent together, these would share a slab, and the first transfer would empty the rest.
    await Promise.all([1, 2, 3, 4].map(() => session.send("abc")));
    assert.deepEqual(received, [5, 5, 5, 5, 5]);
    session.close().catch(() => {});
    await session.closed;
  });

  await t.step(
    "treats pingInterval Infinity as no pings, and refuses timers beyond 2^31-1 ms",
    async () => {
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(ours, { pingInterval: Infinity, timeout: 300 });
      const peer = new RawPeer(theirs, "client");
      const first = await Promise.race([
        peer.next(),
        new Promise((r) => setTimeout(() => r("quiet"), 60)),
      ]);
      assert.equal(first, "quiet", "no ping may be sent");
      await peer.send(Frame.close(1000));
      await peer.next();
      await session.closed;
      await peer.end();
      for (
        const options of [{ timeout: 2 ** 31 }, { pingInterval: 2 ** 31 }, { timeout: -1 }, {
          pingInterval: 0,
        }]
      ) {
        const [a] = duplexPair();
        assert.throws(() => new WebSocketSession(a, options), RangeError, JSON.stringify(options));
      }
      assert.throws(() => pinger({ period: 2 ** 31, timeout: 10 }), RangeError);
    },
  );

  await t.step("refuses maxFrameSize 0, which could never send anything", () => {
    const [a] = duplexPair();
    assert.throws(() => new WebSocketSession(a, { maxFrameSize: 0 }), RangeError);
  });

  await t.step("rejects a send made before a handshake that then fails", async () => {
    let fail!: (e: unknown) => void;
    const session = new WebSocketSession(new Promise((_, reject) => (fail = reject)), {
      timeout: 300,
    });
    const sent = session.send("early");
    fail(new Error("no upgrade"));
    await assert.rejects(sent, (e) => e instanceof WebSocketError && e.closeCode === 1006);
    assert.equal((await session.closed).code, 1006);
  });
});

Deno.test("RawWebSocketSession (review regressions)", async (t) => {
  await t.step("ends after timeout when the user never answers the peer's close", async () => {
    const [ours, theirs] = duplexPair();
    const session = new RawWebSocketSession(ours, { timeout: 100 });
    const peer = new RawPeer(theirs, "client");
    const frames = session.incoming.getReader();
    await peer.send(Frame.close(4000, "bye"));
    assert.equal((await frames.read()).value?.opcode, Opcode.Close);
    const started = Date.now();
    const info = await session.closed;
    assert.ok(Date.now() - started < 1000, "ended within about timeout");
    assert.equal(info.code, 4000);
    await peer.end();
  });
});

/** A frame as its opcode and its text, or its code for a close frame; null for the end. */
function describe(frame: Frame | null): [number, string | number] | null {
  if (frame === null) return null;
  return frame.opcode === Opcode.Close
    ? [frame.opcode, readClosePayload(frame.payload).code]
    : [frame.opcode, new TextDecoder().decode(frame.payload)];
}

Deno.test("WebSocketSession over a socket (review regressions)", async (t) => {
  const A = new TextEncoder().encode("A"), B = new TextEncoder().encode("B");

  // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
  // response, unless it already received a Close frame. It SHOULD respond with Pong frame as
  // soon as is practical." Here pong B once came after the echo (8a 01 41, 81 01 74,
  // 8a 01 42), and with a close instead of the text, was never sent.
  await t.step("answers two pings of one TCP write before the echo that follows", async () => {
    const server = ourServer({}, echo);
    const client = await rawSocket(Number(new URL(server.url).port));
    try {
      await client.send(clientBytes(Frame.ping(A), Frame.ping(B), Frame.text("t")));
      const frames = [await client.next(), await client.next(), await client.next()];
      assert.deepEqual(frames.map(describe), [
        [Opcode.Pong, "A"],
        [Opcode.Pong, "B"],
        [Opcode.Text, "t"],
      ]);
      await client.send(clientBytes(Frame.close(1000)));
      assert.deepEqual(describe(await client.next()), [Opcode.Close, 1000]);
      assert.equal(await client.next(), null);
    } finally {
      await client.close();
      await server.close();
    }
  });

  await t.step("answers two pings of one TCP write before the close reply", async () => {
    const server = ourServer({}, echo);
    const client = await rawSocket(Number(new URL(server.url).port));
    try {
      await client.send(clientBytes(Frame.ping(A), Frame.ping(B), Frame.close(1000)));
      const frames = [await client.next(), await client.next(), await client.next()];
      assert.deepEqual(frames.map(describe), [
        [Opcode.Pong, "A"],
        [Opcode.Pong, "B"],
        [Opcode.Close, 1000],
      ]);
      assert.equal(await client.next(), null, "then the server ends the connection");
    } finally {
      await client.close();
      await server.close();
    }
  });

  // RFC 6455 §7.1.7: after Failing the WebSocket Connection an endpoint "MUST NOT continue to
  // attempt to process data (including a responding Close frame)". After 1007 the server
  // once kept the connection until the peer answered or `timeout` (here 15 s) passed.
  await t.step("ends TCP within a second of a 1007 to a silent peer, timeout 15 s", async () => {
    const server = ourServer({ timeout: 15_000 }, echo);
    const client = await rawSocket(Number(new URL(server.url).port));
    try {
      const session = await server.accepted.next();
      const started = Date.now();
      await client.send(clientBytes(Frame.text(Uint8Array.of(0xff)))); // invalid UTF-8
      assert.deepEqual(describe(await client.next()), [Opcode.Close, 1007]);
      assert.equal(await client.next(1000), null, "the server ends the connection");
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1000, `ended after ${elapsed} ms`);
      const info = await session.closed;
      assert.deepEqual([info.code, info.wasClean], [1007, false]);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
