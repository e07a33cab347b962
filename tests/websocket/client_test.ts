// Copyright 2026 the wirestream authors. MIT license.
// connectWebSocket against a raw server over real sockets.
import assert from "node:assert/strict";
import { acceptKey, connectWebSocket, type Frame, FrameDecoder } from "@wirestream/wirestream";
import { within } from "../_util/async.ts";
import { Queue } from "../_util/ws.ts";

/**
 * A one-connection WebSocket server on 127.0.0.1 written by hand: it answers the handshake,
 * writes what `write` is given, and gives each frame the client sends with the time it
 * arrived.
 */
function rawServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames = new Queue<{ frame: Frame; at: number } | null>();
  let accepted!: Deno.Conn;
  const serving = (async () => {
    const conn = accepted = await listener.accept();
    try {
      const buffer = new Uint8Array(65_536);
      let head = "";
      const decoder = new FrameDecoder({ role: "server" });
      const sink = { enqueue: (frame: Frame) => frames.push({ frame, at: performance.now() }) };
      for (let n; (n = await conn.read(buffer)) !== null;) {
        let chunk = buffer.subarray(0, n);
        if (!head.endsWith("\r\n\r\n")) {
          const text = new TextDecoder("latin1").decode(chunk);
          const end = (head + text).indexOf("\r\n\r\n");
          if (end < 0) {
            head += text;
            continue;
          }
          chunk = chunk.subarray(end + 4 - head.length);
          head = (head + text).slice(0, end + 4);
          const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
          const answer = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n" +
            `connection: Upgrade\r\nsec-websocket-accept: ${await acceptKey(key)}\r\n\r\n`;
          await conn.write(new TextEncoder().encode(answer));
        }
        decoder.push(chunk, sink);
      }
    } catch {
      // Reset, or closed below.
    } finally {
      frames.push(null);
      try {
        conn.close();
      } catch {
        // Closed by close().
      }
    }
  })();
  return {
    url: `ws://127.0.0.1:${listener.addr.port}/`,
    frames,
    /** Writes bytes as given, in one write. */
    write: (bytes: Uint8Array) => accepted.write(bytes),
    async close() {
      listener.close();
      try {
        accepted?.close();
      } catch {
        // Closed already.
      }
      await serving;
    },
  };
}

Deno.test("connectWebSocket", async (t) => {
  // Without TCP_NODELAY, a small write that follows another before its ACK waits for Nagle's
  // algorithm: the reviewer saw a pong, then the echo 40 ms later (the server's delayed ACK).
  await t.step("turns Nagle's algorithm off: the echo follows the pong at once", async () => {
    const server = rawServer();
    const session = await connectWebSocket(server.url, { timeout: 2000 });
    const echoing = (async () => {
      for await (const message of session.incoming) await session.send(message);
    })().catch(() => {});
    try {
      const gaps: number[] = [];
      for (let round = 0; round < 5; round++) {
        // Ping "p" and text "t", unmasked as a server sends them, in one write.
        await server.write(Uint8Array.of(0x89, 1, 0x70, 0x81, 1, 0x74));
        const pong = await within(server.frames.next(), 2000, "the pong");
        const echo = await within(server.frames.next(), 2000, "the echo");
        assert.deepEqual([pong!.frame.opcode, echo!.frame.opcode], [0xa, 0x1]);
        gaps.push(echo!.at - pong!.at);
      }
      // Tolerant of a noisy machine: the median of five rounds.
      const median = gaps.toSorted((x, y) => x - y)[2]!;
      assert.ok(median < 30, `the echo came ${gaps.map((g) => g.toFixed(1))} ms after the pong`);
    } finally {
      await server.close();
      await session.closed;
      await echoing;
    }
  });
});
