// Copyright 2026 the wirestream authors. MIT license.
// Review of 8999944, 44cdc67 and 8877329 (DirectOut, ChunkReader's direct read, PingLoop): each
// Deno.test shows a regression those commits brought (the code before them did not have it),
// fixed since.
import assert from "node:assert/strict";
import {
  Frame,
  Opcode,
  readClosePayload,
  type Transport,
  WebSocketError,
  WebSocketSession,
} from "@wirestream/wirestream";
import { ChunkReader } from "../../lib/websocket/_chunk_reader.ts";
import { duplexPair, RawPeer, streamless } from "../_util/duplex.ts";

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A direct transport whose write throws synchronously, as in session_direct_test.ts. */
function throwingTransport(first?: Uint8Array): Transport & { closes: number } {
  const transport = streamless({
    closes: 0,
    read(buffer: Uint8Array): Promise<number | null> {
      if (first !== undefined) {
        buffer.set(first);
        const n = first.length;
        first = undefined;
        return Promise.resolve(n);
      }
      // Ends once closed, like a Deno.Conn whose read is interrupted by close.
      return new Promise((resolve) => (end = () => resolve(null)));
    },
    write(_bytes: Uint8Array): Promise<number> {
      throw new Deno.errors.BadResource("the connection is gone");
    },
    close(): void {
      transport.closes++;
      end();
    },
  });
  let end = () => {};
  return transport;
}

// 44cdc67 runs the failure synchronously inside SessionCore.send; #sendClose, fail() and
// peerClose() then arm the close timer after #finish cleared the timers (state CLOSED).
Deno.test(
  "DirectOut sync throw: close() over a transport whose write throws leaves no timer behind",
  { sanitizeOps: true, sanitizeResources: true },
  async () => {
    const session = new WebSocketSession(throwingTransport(), { timeout: 2000 });
    const info = await session.close();
    assert.deepEqual(info, { code: 1006, reason: "", wasClean: false });
    // The op sanitizer fails this test: a 2000 ms timer (#closeTimer) is still pending.
  },
);

// The transport's write completes even after close() (a transport that does not interrupt
// writes in flight). The write timeout ends the session hard while A is in flight and B waits.
Deno.test(
  "DirectOut abort: a send dropped after a write timeout rejects, it does not resolve",
  async () => {
    const [ours] = duplexPair();
    const writes: number[] = [];
    let closed = false;
    const transport: Transport = {
      readable: ours.readable,
      writable: ours.writable,
      read: () => new Promise(() => {}),
      async write(bytes: Uint8Array): Promise<number> {
        await delay(150); // slower than the timeout, but it does finish
        writes.push(bytes.length);
        return bytes.length;
      },
      close() {
        closed = true;
      },
    };
    const session = new WebSocketSession(transport, { timeout: 50 });
    const a = session.send(new Uint8Array(10));
    const b = session.send(new Uint8Array(20));
    const aResult = a.then(() => "resolved", (e) => e);
    const bResult = b.then(() => "resolved", (e) => e);
    assert.equal((await session.closed).code, 1006); // the write timeout ended it hard
    assert.ok(closed);
    assert.equal(await aResult, "resolved"); // A's bytes were written
    const bOutcome = await bResult;
    assert.deepEqual(writes, [12], "only A's 12 bytes were written; B's 22 never went");
    // Before 8999944, B rejected with 1006 (its writeAll threw the "Aborted" failure).
    assert.ok(
      bOutcome instanceof WebSocketError && bOutcome.closeCode === 1006,
      `B's bytes were dropped, but its send ${String(bOutcome)}`,
    );
  },
);

// recycle()'s contract: "no view of the last chunk is held any more". Called while the next
// direct read is under way, it now frees the buffer of that read (#whole), not the last one's.
Deno.test(
  "ChunkReader direct read: recycle() during a read does not free the buffer being read into",
  async () => {
    const chunks = [[1, 1, 1], [2, 2, 2], [3, 3, 3]];
    let release = () => {};
    const source = {
      async read(buffer: Uint8Array): Promise<number | null> {
        await new Promise<void>((resolve) => (release = resolve));
        const next = chunks.shift();
        if (next === undefined) return null;
        buffer.set(next);
        return next.length;
      },
    };
    const reader = new ChunkReader(source, 16);
    const first = reader.read();
    release();
    assert.deepEqual([...(await first)!], [1, 1, 1]);
    const pending = reader.read();
    reader.recycle(); // the first chunk is no longer held
    release();
    const second = (await pending)!;
    assert.deepEqual([...second], [2, 2, 2]);
    // The second chunk is held (no recycle): the next read must not write into its buffer.
    const third = reader.read();
    release();
    assert.deepEqual([...(await third)!], [3, 3, 3]);
    assert.deepEqual([...second], [2, 2, 2], "the third read overwrote the held second chunk");
  },
);

Deno.test("ChunkReader direct read: one read at a time, also after a failed read", async () => {
  let fail = true;
  const reader = new ChunkReader({
    read(buffer: Uint8Array): Promise<number | null> {
      if (fail) return Promise.reject(new Error("reset"));
      buffer[0] = 9;
      return new Promise((resolve) => setTimeout(() => resolve(1), 5));
    },
  }, 16);
  await assert.rejects(reader.read(), /reset/);
  fail = false;
  const read = reader.read(); // the failed read does not count as under way
  assert.throws(() => reader.read(), TypeError); // two at once would share a buffer
  assert.deepEqual([...(await read)!], [9]);
});

// Before 8877329 the session's pinger loop stopped at its next frame once the session was no
// longer open (`if (!this.#core.open) break`), so a ping timeout during the close handshake
// did not fail the session. PingLoop's sink calls core.fail regardless of the state.
Deno.test(
  "PingLoop: a ping timeout during our close handshake does not turn a clean close into 1011",
  async () => {
    const [ours, theirs] = duplexPair();
    const session = new WebSocketSession(ours, { pingInterval: 20, timeout: 200 });
    const peer = new RawPeer(theirs, "client");
    try {
      const ping = await peer.next(); // at ~20 ms; its pong is due by ~220 ms
      assert.equal(ping?.opcode, Opcode.Ping);
      await delay(100);
      const closed = session.close(1000); // our close timer: ~320 ms
      const close = await peer.next();
      assert.deepEqual(readClosePayload(close!.payload), { code: 1000, reason: "" });
      await delay(150); // ~270 ms: past the ping's deadline, within the close timeout
      await peer.send(Frame.close(1000)); // the peer completes the handshake
      assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true });
    } finally {
      await peer.end();
    }
  },
);

// The same reentrancy on the path of a transport given as a promise: #attach writes the early
// chunks, the first throws and ends the session inside the loop, and #attach then arms the
// write watchdog and calls #endTransport a second time.
Deno.test(
  "DirectOut sync throw: a transport that arrives later and throws leaves no timer behind",
  { sanitizeOps: true, sanitizeResources: true },
  async () => {
    const transport = throwingTransport();
    let arrive!: (t: Transport) => void;
    const session = new WebSocketSession(new Promise<Transport>((r) => (arrive = r)), {
      timeout: 2000,
    });
    const sent = session.send("early"); // waits for the transport
    arrive(transport);
    await assert.rejects(sent, (e) => e instanceof WebSocketError && e.closeCode === 1006);
    assert.equal((await session.closed).code, 1006);
    assert.equal(transport.closes, 1, "the transport was ended more than once");
  },
);

// fail() (here for a protocol error: an unmasked client frame) sends its close frame; the
// write throws and ends the session inside send, and fail() then arms the close and quiet timers.
Deno.test(
  "DirectOut sync throw: a protocol error over a transport whose write throws leaves no timer",
  { sanitizeOps: true, sanitizeResources: true },
  async () => {
    // FIN text frame, MASK bit clear (a server must fail it with 1002), length 1, "a".
    const session = new WebSocketSession(throwingTransport(Uint8Array.of(0x81, 0x01, 0x61)), {
      timeout: 2000,
    });
    await assert.rejects(
      session.incoming.getReader().read(),
      (e) => e instanceof WebSocketError && e.closeCode === 1002,
    );
    assert.equal((await session.closed).code, 1002);
  },
);
