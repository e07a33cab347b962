// Copyright 2026 the wirestream authors. MIT license.
import {
  Frame,
  FrameDecoder,
  FrameEncoder,
  Opcode,
  RawWebSocketSession,
  readClosePayload,
  type Role,
  type Transport,
  WebSocketError,
  WebSocketSession,
  type WebSocketSessionOptions,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { duplexPair, RawPeer } from "../_util/duplex.ts";
import { concat, hex } from "../_util/random.ts";
import { delay, within } from "../_util/async.ts";

const text = new TextDecoder();
const utf8 = new TextEncoder();

/** A server session (or `role`) and a raw peer of the other role on an in-memory duplex. */
function open(options: WebSocketSessionOptions = {}): { session: WebSocketSession; peer: RawPeer } {
  const [ours, theirs] = duplexPair();
  const session = new WebSocketSession(ours, { timeout: 1000, ...options });
  const peer = new RawPeer(theirs, session.role === "server" ? "client" : "server");
  return { session, peer };
}

/** `transport` with a writable whose close takes `ms` (after every chunk was passed on). */
function slowClosing(transport: Transport, ms: number): Transport {
  const writer = transport.writable.getWriter();
  return {
    readable: transport.readable,
    writable: new WritableStream<Uint8Array>({
      write: (chunk) => writer.write(chunk),
      close: () => delay(ms).then(() => writer.close()),
      abort: (reason) => writer.abort(reason),
    }),
  };
}

/** The next frame the peer receives; fails at the end of the stream. */
async function next(peer: RawPeer): Promise<Frame> {
  const frame = await peer.next();
  assert.ok(frame !== null, "expected a frame, got the end of the stream");
  return frame;
}

/** The code and reason of the next frame, which must be a close frame. */
async function nextClose(peer: RawPeer): Promise<{ code: number; reason: string }> {
  const frame = await next(peer);
  assert.equal(frame.opcode, Opcode.Close, `expected a close frame, got opcode ${frame.opcode}`);
  return readClosePayload(frame.payload);
}

/** Asserts that the peer's input has ended (the session ended the transport). */
async function assertEnded(peer: RawPeer): Promise<void> {
  const frame = await peer.next();
  assert.equal(frame, null, `expected the end of the stream, got opcode ${frame?.opcode}`);
}

/** Decodes bytes a server wrote, as a client would. */
function decodeServerBytes(chunks: readonly Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  new FrameDecoder({ role: "client", maxFrameSize: Infinity }).push(concat(chunks), {
    enqueue: (frame) => frames.push(new Frame(frame.opcode, frame.payload.slice(), frame.fin)),
  });
  return frames;
}

/** Encodes frames as a peer of `role` would send them. */
function encode(role: Role, ...frames: Frame[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const encoder = new FrameEncoder({ role });
  for (const frame of frames) encoder.encode(frame, { enqueue: (c) => chunks.push(c.slice()) });
  return concat(chunks);
}

/** A frame as its opcode and its text, or its code for a close frame. */
function describe(frame: Frame): [number, string | number] {
  return frame.opcode === Opcode.Close
    ? [frame.opcode, readClosePayload(frame.payload).code]
    : [frame.opcode, text.decode(frame.payload)];
}

/** Whether `promise` settles within a few turns of the event loop. */
async function settlesSoon(promise: Promise<unknown>, ms = 10): Promise<boolean> {
  let settled = false;
  const done = () => void (settled = true);
  promise.then(done, done);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

/**
 * A writable whose writes wait while the gate is shut; records every chunk written. `close()`
 * rejects the write in flight, like a `Deno.Conn` closed under a pending write.
 */
class GatedSink {
  readonly chunks: Uint8Array[] = [];
  readonly writable: WritableStream<Uint8Array>;
  writes = 0;
  closeCalls = 0;
  #open: () => void = () => {};
  #gate: Promise<void> | null = null;
  #fail: (error: unknown) => void = () => {};

  constructor(shut: boolean) {
    if (shut) this.shut();
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => {
        this.writes++;
        this.chunks.push(chunk.slice());
        if (this.#gate === null) return;
        return new Promise<void>((resolve, reject) => {
          this.#fail = reject;
          this.#gate!.then(resolve);
        });
      },
    });
  }

  shut(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  open(): void {
    this.#gate = null;
    this.#open();
  }

  /** What a `Deno.Conn`'s close does to a write in flight. */
  close = (): void => {
    this.closeCalls++;
    this.#fail(new Error("connection closed"));
  };
}

/** A close-frame exchange from the peer's side: read our close, answer it, read the end. */
async function answerClose(peer: RawPeer, code: number): Promise<void> {
  assert.equal((await nextClose(peer)).code, code);
  await peer.send(Frame.close(code));
  await assertEnded(peer);
}

Deno.test("WebSocketSession", async (t) => {
  await t.step("delivers text as a string and binary as a Uint8Array", async () => {
    const { session, peer } = open();
    const reader = session.incoming.getReader();
    const sending = peer.send(Frame.text("héllo ✓"), Frame.binary(Uint8Array.of(0, 1, 255)));
    assert.equal((await reader.read()).value, "héllo ✓");
    const binary = (await reader.read()).value;
    assert.ok(binary instanceof Uint8Array);
    assert.deepEqual([...binary], [0, 1, 255]);
    await sending;
    await peer.send(Frame.close(1000));
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    assert.equal((await nextClose(peer)).code, 1000);
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step(
    "reassembles fragmented messages, with control frames between fragments",
    async () => {
      const { session, peer } = open();
      const reader = session.incoming.getReader();
      const euro = utf8.encode("€"); // 3 bytes, split across fragments
      const sending = peer.send(
        Frame.text(Uint8Array.of(0x61, euro[0]!), false), // "a" and the first byte of "€"
        Frame.ping(Uint8Array.of(7)),
        Frame.continuation(euro.subarray(1), false),
        Frame.continuation(utf8.encode("b")),
        Frame.binary(Uint8Array.of(1, 2), false),
        Frame.continuation(new Uint8Array(0), false),
        Frame.continuation(Uint8Array.of(3)),
      );
      assert.equal((await reader.read()).value, "a€b");
      assert.deepEqual([...(await reader.read()).value as Uint8Array], [1, 2, 3]);
      await sending;
      const pong = await next(peer);
      assert.equal(pong.opcode, Opcode.Pong);
      assert.deepEqual([...pong.payload], [7]);
      session.close();
      await answerClose(peer, 1000);
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    },
  );

  await t.step("delivers empty text and binary messages, whole or fragmented", async () => {
    const { session, peer } = open();
    const reader = session.incoming.getReader();
    const sending = peer.send(
      Frame.text(""),
      Frame.binary(new Uint8Array(0)),
      Frame.text("", false),
      Frame.continuation(new Uint8Array(0)),
      Frame.binary(new Uint8Array(0), false),
      Frame.continuation(new Uint8Array(0)),
    );
    assert.equal((await reader.read()).value, "");
    assert.deepEqual((await reader.read()).value, new Uint8Array(0));
    assert.equal((await reader.read()).value, "");
    assert.deepEqual((await reader.read()).value, new Uint8Array(0));
    await sending;
    // A write completes once the peer reads it (the in-memory pipe has no buffer to speak of).
    const sent = Promise.all([session.send(""), session.send(new Uint8Array(0))]);
    const [t0, b0] = [await next(peer), await next(peer)];
    await sent;
    assert.deepEqual([t0.opcode, t0.payload.length, t0.fin], [Opcode.Text, 0, true]);
    assert.deepEqual([b0.opcode, b0.payload.length, b0.fin], [Opcode.Binary, 0, true]);
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });

  await t.step("splits outgoing messages larger than maxFrameSize into continuations", async () => {
    const { session, peer } = open({ maxFrameSize: 4 });
    const sent = Promise.all([
      session.send("abcdefghij"), // 10 bytes: 4 + 4 + 2
      session.send(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), // 8 bytes: 4 + 4
      session.send("wxyz"), // exactly maxFrameSize: one frame
    ]);
    const frames = [];
    for (let i = 0; i < 6; i++) {
      const f = await next(peer);
      frames.push([f.opcode, text.decode(f.payload), f.fin]);
    }
    await sent;
    assert.deepEqual(frames, [
      [Opcode.Text, "abcd", false],
      [Opcode.Continuation, "efgh", false],
      [Opcode.Continuation, "ij", true],
      [Opcode.Binary, "\x01\x02\x03\x04", false],
      [Opcode.Continuation, "\x05\x06\x07\x08", true],
      [Opcode.Text, "wxyz", true],
    ]);
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });

  await t.step("answers a ping with a pong carrying the same payload", async () => {
    const { session, peer } = open();
    const payload = utf8.encode("are you there?");
    await peer.send(Frame.ping(payload), Frame.ping());
    const pong = await next(peer);
    assert.equal(pong.opcode, Opcode.Pong);
    assert.deepEqual(pong.payload, payload);
    const empty = await next(peer);
    assert.deepEqual([empty.opcode, empty.payload.length], [Opcode.Pong, 0]);
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });

  // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
  // response, unless it already received a Close frame. It SHOULD respond with Pong frame as
  // soon as is practical." Two pings in one read once got pong A, the echo, then pong B; and
  // with a close after them, pong A and the close reply: ping B was never answered.
  for (const role of ["server", "client"] as const) {
    const peerRole = role === "server" ? "client" : "server";
    const frames = (peer: RawPeer, count: number) =>
      Promise.all(Array.from({ length: count }, () => next(peer))).then((frames) =>
        frames.map(describe)
      );

    await t.step(
      `(${role}) answers two pings of one read before the echo that follows`,
      async () => {
        const { session, peer } = open({ role });
        const echoing = (async () => {
          for await (const message of session.incoming) await session.send(message);
        })();
        // Ping "A", ping "B", text "t": one write, so one read on the session's side.
        await peer.bytes(
          encode(
            peerRole,
            Frame.ping(utf8.encode("A")),
            Frame.ping(utf8.encode("B")),
            Frame.text("t"),
          ),
        );
        assert.deepEqual(await frames(peer, 3), [
          [Opcode.Pong, "A"],
          [Opcode.Pong, "B"],
          [Opcode.Text, "t"],
        ]);
        await peer.send(Frame.close(1000));
        assert.equal((await nextClose(peer)).code, 1000);
        await echoing;
        if (role === "client") await peer.end();
        await assertEnded(peer);
        assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
      },
    );

    await t.step(`(${role}) answers two pings of one read before the close reply`, async () => {
      const { session, peer } = open({ role });
      // Ping "A", ping "B", close 1000: one write.
      await peer.bytes(
        encode(
          peerRole,
          Frame.ping(utf8.encode("A")),
          Frame.ping(utf8.encode("B")),
          Frame.close(1000),
        ),
      );
      assert.deepEqual(await frames(peer, 3), [
        [Opcode.Pong, "A"],
        [Opcode.Pong, "B"],
        [Opcode.Close, 1000],
      ]);
      if (role === "client") await peer.end();
      await assertEnded(peer);
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    });
  }

  /** A server session whose writes block until `sink.open()`, and its peer's writer. */
  function blockedSession() {
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const sink = new GatedSink(true);
    const session = new WebSocketSession(
      { readable: up.readable, writable: sink.writable },
      { timeout: 1000 },
    );
    return { session, sink, writer: up.writable.getWriter() };
  }

  /** Pings "ping 0" to "ping n-1". */
  const numberedPings = (n: number) =>
    Array.from({ length: n }, (_, i) => Frame.ping(utf8.encode(`ping ${i}`)));

  // §5.5.3 lets an endpoint answer only the most recent ping: past 8 pongs waiting to be
  // written (a peer that does not read), only the newest ping is kept, so a flood holds at
  // most 8 pongs, and the last ping is answered once one of them is written.
  await t.step(
    "holds at most 8 pongs for a ping flood it cannot write, then answers the last ping",
    async () => {
      const { session, sink, writer } = blockedSession();
      await writer.write(encode("client", ...numberedPings(10_000)));
      // Read once the text after the pings comes out: every ping was handled by then.
      await writer.write(encode("client", Frame.text("after")));
      const reader = session.incoming.getReader();
      assert.equal((await reader.read()).value, "after");
      reader.releaseLock();
      assert.equal(sink.writes, 1, "the first pong's write is blocked: the others wait");
      sink.open();
      await delay(10);
      // Every pong encoded: the 8 answered at once, then the last ping's.
      const pongs = decodeServerBytes(sink.chunks);
      assert.deepEqual(pongs.map((f) => [f.opcode, text.decode(f.payload)]), [
        ...Array.from({ length: 8 }, (_, i) => [Opcode.Pong, `ping ${i}`]),
        [Opcode.Pong, "ping 9999"],
      ]);
      await writer.write(encode("client", Frame.close(1000)));
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    },
  );

  await t.step("writes a pong still owed before the reply to the peer's close", async () => {
    const { session, sink, writer } = blockedSession();
    await writer.write(encode("client", ...numberedPings(20), Frame.close(1000)));
    await delay(10);
    sink.open();
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    const frames = decodeServerBytes(sink.chunks);
    assert.deepEqual(frames.map(describe), [
      ...Array.from({ length: 8 }, (_, i) => [Opcode.Pong, `ping ${i}`]),
      [Opcode.Pong, "ping 19"],
      [Opcode.Close, 1000],
    ]);
  });

  await t.step("sends pings every pingInterval and stays open while the peer answers", async () => {
    const { session, peer } = open({ pingInterval: 15, timeout: 100 });
    const reader = session.incoming.getReader();
    let pings = 0;
    while (pings < 4) {
      const frame = await next(peer);
      assert.equal(frame.opcode, Opcode.Ping);
      pings++;
      await peer.send(Frame.pong(frame.payload));
    }
    await peer.send(Frame.text("still here"));
    assert.equal((await reader.read()).value, "still here");
    assert.equal(session.signal.aborted, false);
    session.close();
    // A ping may have been sent before our close.
    const rest = await (async () => {
      for (let f = await next(peer);; f = await next(peer)) {
        if (f.opcode === Opcode.Close) return readClosePayload(f.payload);
      }
    })();
    assert.equal(rest.code, 1000);
    await peer.send(Frame.close(1000));
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("closes with 1011 when a ping is not answered within timeout", async () => {
    const { session, peer } = open({ pingInterval: 10, timeout: 30 });
    await peer.send(Frame.text("before"));
    const ping = await next(peer);
    assert.equal(ping.opcode, Opcode.Ping);
    const close = await nextClose(peer);
    assert.equal(close.code, 1011);
    assert.match(close.reason, /ping timeout/i);
    await peer.send(Frame.close(1011));
    await assertEnded(peer);
    const info = await session.closed;
    assert.equal(info.code, 1011);
    assert.equal(info.wasClean, false);
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "before");
    await assert.rejects(reader.read(), (e) => e instanceof WebSocketError && e.closeCode === 1011);
  });

  await t.step(
    "answers the peer's close with its code and reason and ends the transport (server)",
    async () => {
      const { session, peer } = open();
      const reader = session.incoming.getReader();
      const sending = peer.send(Frame.text("last"), Frame.close(4000, "bye"));
      assert.equal((await reader.read()).value, "last");
      assert.deepEqual(await reader.read(), { done: true, value: undefined });
      await sending;
      // The reason is echoed too, as ws and Deno's own server do (a browser reports it).
      assert.deepEqual(await nextClose(peer), { code: 4000, reason: "bye" });
      await assertEnded(peer);
      assert.deepEqual(await session.closed, { code: 4000, reason: "bye", wasClean: true });
    },
  );

  await t.step(
    "a pipe into outgoing given the session's signal ends with the session",
    async () => {
      // The documented recipe for a source that may stay quiet (a review: without the signal,
      // the pipe waits for the source's next chunk). And once the session ended, a close
      // through outgoing resolves (erroring outgoing at the end made unawaited closes crash).
      const { session, peer } = open();
      let cancelled: unknown = "not cancelled";
      const source = new ReadableStream<string>({
        start: (controller) => controller.enqueue("first"),
        cancel: (reason) => void (cancelled = reason),
      });
      const piping = source.pipeTo(session.outgoing, { signal: session.signal });
      assert.equal(new TextDecoder().decode((await next(peer)).payload), "first");
      await peer.send(Frame.close(1000));
      await assert.rejects(within(piping, 2000, "the pipe to end"), WebSocketError);
      assert.ok(cancelled instanceof WebSocketError, String(cancelled));
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
      const ended = open();
      await ended.peer.send(Frame.close(1000));
      await ended.session.closed;
      await within(ended.session.outgoing.close(), 2000, "outgoing's close after the end");
    },
  );

  await t.step(
    "outgoing is one stream, made on first use, and refuses writes once the session ended",
    async () => {
      const { session, peer } = open();
      assert.equal(session.outgoing, session.outgoing, "the same stream on every access");
      const writer = session.outgoing.getWriter();
      await writer.write("via outgoing");
      assert.equal(text.decode((await next(peer)).payload), "via outgoing");
      writer.releaseLock();
      const ended = open();
      await ended.peer.send(Frame.close(1000));
      await ended.session.closed;
      // Never touched while the session was open: made now, it still refuses the write.
      const late = ended.session.outgoing.getWriter();
      await assert.rejects(
        late.write("too late"),
        (e) => e instanceof WebSocketError && e.closeCode === 1006,
      );
    },
  );

  await t.step("answers a close without a code with an empty close frame", async () => {
    const { session, peer } = open();
    await peer.send(Frame.close());
    const close = await next(peer);
    assert.deepEqual([close.opcode, close.payload.length], [Opcode.Close, 0]);
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1005, reason: "", wasClean: true });
  });

  await t.step(
    "close() sends a close frame, discards data after it, and ends on the reply",
    async () => {
      const { session, peer } = open();
      const reader = session.incoming.getReader();
      const closed = session.close(1000, "done");
      assert.deepEqual(await reader.read(), { done: true, value: undefined });
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      await peer.send(Frame.text("too late"), Frame.ping(Uint8Array.of(1)));
      assert.equal(await settlesSoon(closed), false, "closed before the peer's close frame");
      await peer.send(Frame.close(1000));
      await assertEnded(peer); // no pong, no data: only the end
      assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true });
      assert.equal(session.close(), session.closed, "a second close returns closed");
    },
  );

  await t.step(
    "after our close, a frame over maxMessageSize but within maxFrameSize is discarded",
    async () => {
      // The peer may still send what it sent before it read our close (RFC 6455 §5.5.1): such a
      // frame must not fail the closing session with 1009 and hide the peer's close.
      const { session, peer } = open({ maxMessageSize: 1024, maxFrameSize: 65_536 });
      session.close(1000);
      assert.equal((await nextClose(peer)).code, 1000);
      await peer.send(Frame.binary(new Uint8Array(2000)), Frame.close(1000, "ok"));
      await assertEnded(peer);
      assert.deepEqual(await session.closed, { code: 1000, reason: "ok", wasClean: true });
    },
  );

  await t.step("answers every ping in turn, also past the eight pongs it may hold", async () => {
    const { session, peer } = open();
    for (let i = 1; i <= 12; i++) {
      await peer.send(Frame.ping(Uint8Array.of(i)));
      const frame = await next(peer);
      assert.equal(frame.opcode, Opcode.Pong, `ping ${i}`);
      assert.deepEqual([...frame.payload], [i]);
    }
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });

  await t.step("the pinger sends nothing once our close frame is out", async () => {
    const { session, peer } = open({ timeout: 300, pingInterval: 50 });
    session.close(1000); // the peer never answers: the session ends after `timeout`
    const frames: number[] = [];
    for (let frame = await peer.next(); frame !== null; frame = await peer.next()) {
      frames.push(frame.opcode);
    }
    assert.deepEqual(frames, [Opcode.Close], "the close frame is the last frame sent");
    assert.equal((await session.closed).code, 1006);
  });

  await t.step("close() without a reply within timeout ends with 1006", async () => {
    const { session, peer } = open({ timeout: 50 });
    const started = Date.now();
    session.close(4000);
    assert.equal((await nextClose(peer)).code, 4000);
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
    assert.ok(Date.now() - started >= 40, `ended after ${Date.now() - started} ms`);
  });

  await t.step(
    "close()'s timeout counts from our close frame's write: a peer that reads slowly but steadily gets all, then the handshake",
    async () => {
      // The frames queued before our close take longer than `timeout` to be read (but less
      // than twice it, the cap); each write progresses, so no write times out, and the wait
      // for the peer's close starts after ours.
      const { session, peer } = open({ timeout: 400 });
      const sends = Array.from({ length: 10 }, (_, i) => session.send(`message ${i}`));
      const closed = session.close(1000, "done");
      const started = Date.now();
      for (let i = 0; i < 10; i++) {
        await delay(50);
        assert.equal(text.decode((await next(peer)).payload), `message ${i}`);
      }
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      assert.ok(Date.now() - started > 400, "the reads took longer than timeout");
      await peer.send(Frame.close(1000, "done"));
      assert.deepEqual(await closed, { code: 1000, reason: "done", wasClean: true });
      await Promise.all(sends);
      await assertEnded(peer);
    },
  );

  await t.step(
    "close() before the transport came still ends within timeout (nothing watches writes then)",
    async () => {
      const session = new WebSocketSession(new Promise(() => {}), { timeout: 50 });
      const started = Date.now();
      const info = await within(session.close(1000), 2000, "close() to end the session");
      assert.deepEqual(info, { code: 1006, reason: "", wasClean: false });
      assert.ok(Date.now() - started >= 40, `ended after ${Date.now() - started} ms`);
    },
  );

  await t.step(
    "close() before a transport that then comes late: the wait restarts from our close frame's write",
    async () => {
      // The transport comes after most of timeout; the frames queued before our close then
      // take longer than what is left of it, each write making progress.
      const [ours, theirs] = duplexPair();
      const late = delay(300).then(() => ours);
      const session = new WebSocketSession(late, { timeout: 400 });
      const sends = Array.from({ length: 8 }, (_, i) => session.send(`message ${i}`));
      const closed = session.close(1000, "done");
      const peer = new RawPeer(theirs, "client");
      for (let i = 0; i < 8; i++) {
        await delay(25);
        assert.equal(text.decode((await next(peer)).payload), `message ${i}`);
      }
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      await peer.send(Frame.close(1000, "done"));
      assert.deepEqual(await closed, { code: 1000, reason: "done", wasClean: true });
      await Promise.all(sends);
      await assertEnded(peer);
    },
  );

  await t.step(
    "close() ends within 2 × timeout however the peer reads: a close frame not yet written by then fails with 1006 'close timeout' and the transport is cut",
    async () => {
      // Each write progresses (no write timeout), but the peer reads one frame per 40 ms:
      // the 20 messages before our close would take 800 ms, past the cap of 200 ms.
      const { session, peer } = open({ timeout: 100 });
      const sends = Array.from({ length: 20 }, (_, i) => session.send(`message ${i}`));
      const settled = Promise.allSettled(sends);
      const started = Date.now();
      const closed = session.close(1000, "done");
      const frames: Frame[] = [];
      let end: unknown = "the end of the stream";
      try {
        for (let frame; (frame = await peer.next()) !== null; await delay(40)) frames.push(frame);
      } catch (error) {
        end = error; // the in-memory transport's abort
      }
      const elapsed = Date.now() - started;
      assert.equal(end, undefined, "the transport was aborted, not ended");
      assert.deepEqual(await closed, { code: 1006, reason: "close timeout", wasClean: false });
      assert.ok(elapsed >= 190 && elapsed < 2000, `ended after ${elapsed} ms`);
      assert.ok(frames.length > 0 && frames.length < 20, `the peer read ${frames.length} frames`);
      assert.ok(frames.every((f) => f.opcode === Opcode.Text), "no close frame went out");
      assert.ok(session.signal.aborted);
      const results = await settled;
      assert.ok(results.some((r) => r.status === "rejected"), "the unwritten sends reject");
    },
  );

  await t.step(
    "a peer's close that comes while ours waits behind slow writes: the flush still ends within 2 × timeout, not clean",
    async () => {
      // The peer reads a frame per 20 ms (30 queued: 600 ms) and sends its close at 360 ms;
      // the server then flushes what is left, but only up to the cap (400 ms).
      const { session, peer } = open({ timeout: 200 });
      const sends = Array.from({ length: 30 }, (_, i) => session.send(`message ${i}`));
      const settled = Promise.allSettled(sends);
      const started = Date.now();
      const closed = session.close(1000, "done");
      const peerClose = delay(360).then(() => peer.send(Frame.close(1000, "bye")));
      let frames = 0;
      try {
        for (let frame; (frame = await peer.next()) !== null; await delay(20)) {
          assert.equal(frame.opcode, Opcode.Text, "our close frame never went out");
          frames++;
        }
      } catch {
        // The in-memory transport's abort.
      }
      const info = await within(closed, 2000, "the session's end");
      const elapsed = Date.now() - started;
      await peerClose;
      assert.deepEqual(info, { code: 1000, reason: "bye", wasClean: false });
      assert.ok(elapsed >= 390 && elapsed < 1000, `ended ${elapsed} ms after close()`);
      assert.ok(frames < 30, `the peer read ${frames} frames`);
      await settled;
    },
  );

  await t.step(
    "a writable that transfers what it is given gets every frame whole, sent at once or not",
    async () => {
      // A byte stream's enqueue transfers the chunk's buffer: frames that shared one buffer
      // were detached by the first one's transfer (a TypeError, and the session ended 1006).
      const [ours, theirs] = duplexPair();
      const writer = ours.writable.getWriter();
      const transferring = new WritableStream<Uint8Array>({
        write(chunk) {
          const copy = chunk.slice();
          (chunk.buffer as ArrayBuffer).transfer();
          return writer.write(copy);
        },
        close: () => writer.close(),
      });
      const session = new WebSocketSession({ readable: ours.readable, writable: transferring });
      const peer = new RawPeer(theirs, "client");
      const sends = Promise.all(["one", "two", "three"].map((m) => session.send(m)));
      for (const m of ["one", "two", "three"]) {
        assert.equal(text.decode((await next(peer)).payload), m);
      }
      await sends;
      const closed = session.close(1000, "done");
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      await peer.send(Frame.close(1000, "done"));
      assert.deepEqual(await closed, { code: 1000, reason: "done", wasClean: true });
    },
  );

  await t.step(
    "a handshake whose frames all went is clean though the transport's own close outlasts the flush",
    async () => {
      // The server's writable passes every chunk on at once, but its close takes 400 ms: the
      // final flush gives up after timeout (200 ms) with nothing unwritten.
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(slowClosing(ours, 400), { timeout: 200 });
      const peer = new RawPeer(theirs, "client");
      const closed = session.close(1000, "done");
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      await peer.send(Frame.close(1000, "done"));
      assert.deepEqual(await within(closed, 2000, "the session's end"), {
        code: 1000,
        reason: "done",
        wasClean: true,
      });
    },
  );

  await t.step(
    "a client whose close was written late, and answered, is still clean when the cap ends its wait for the server's end",
    async () => {
      // Our close is written after about 300 ms (15 frames read one per 20 ms): the cap (400
      // ms) comes before the close timer (500 ms), with the handshake complete.
      // The client's transport takes a few ms to close: the cap leaves the flush no time, and
      // the handshake is still clean (every frame went).
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(slowClosing(ours, 5), { role: "client", timeout: 200 });
      const peer = new RawPeer(theirs, "server");
      const sends = Array.from({ length: 15 }, (_, i) => session.send(`message ${i}`));
      const closed = session.close(1000, "done");
      for (let i = 0; i < 15; i++) {
        assert.equal(text.decode((await next(peer)).payload), `message ${i}`);
        await delay(20);
      }
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "done" });
      await peer.send(Frame.close(1000, "done")); // the server answers, and keeps the connection
      assert.deepEqual(await within(closed, 2000, "the session's end"), {
        code: 1000,
        reason: "done",
        wasClean: true,
      });
      await Promise.all(sends);
    },
  );

  await t.step(
    "a client waits for the server to end the transport after the handshake",
    async () => {
      const { session, peer } = open({ role: "client" });
      assert.equal(session.role, "client");
      const closed = session.close(1000);
      const frame = await next(peer); // the peer is a server: it checks our frames are masked
      assert.equal(frame.opcode, Opcode.Close);
      await peer.send(Frame.close(1000));
      assert.equal(await settlesSoon(closed, 20), false, "closed before the server ended");
      assert.equal(session.signal.aborted, false);
      await peer.end();
      await assertEnded(peer);
      assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true });
    },
  );

  await t.step(
    "a client ends the transport itself when the server does not, after timeout",
    async () => {
      const { session, peer } = open({ role: "client", timeout: 50 });
      await peer.send(Frame.close(4001, "bye"));
      assert.equal((await nextClose(peer)).code, 4001);
      await assertEnded(peer);
      assert.deepEqual(await session.closed, { code: 4001, reason: "bye", wasClean: true });
      await peer.end();
    },
  );

  const violations: [string, number, WebSocketSessionOptions, (peer: RawPeer) => Promise<void>][] =
    [
      ["an unmasked frame to a server", 1002, {}, (p) => p.bytes(hex("81 02 6869"))], // FIN text "hi", no mask
      ["invalid UTF-8", 1007, {}, (p) => p.send(Frame.text(Uint8Array.of(0x61, 0xff)))],
      [
        "invalid UTF-8 in the first fragment",
        1007,
        {},
        (p) => p.send(Frame.text(Uint8Array.of(0xc3, 0x28), false)), // bad continuation byte
      ],
      [
        "a frame over maxFrameSize",
        1009,
        { maxFrameSize: 10 },
        (p) => p.send(Frame.binary(new Uint8Array(11))),
      ],
      [
        "a message over maxMessageSize",
        1009,
        { maxMessageSize: 10 },
        (p) =>
          p.send(Frame.binary(new Uint8Array(6), false), Frame.continuation(new Uint8Array(6))),
      ],
      [
        "a continuation without a start",
        1002,
        {},
        (p) => p.send(Frame.continuation(Uint8Array.of(1))),
      ],
      [
        "a new message inside a fragmented one",
        1002,
        {},
        (p) => p.send(Frame.text("a", false), Frame.text("b")),
      ],
      [
        "a close code that may not be sent",
        1002,
        {},
        (p) => p.send(new Frame(Opcode.Close, hex("03e7"))),
      ], // 999
      [
        "a close with 1 byte of payload",
        1002,
        {},
        (p) => p.send(new Frame(Opcode.Close, hex("03"))),
      ],
      ["a reserved opcode", 1002, {}, (p) => p.bytes(hex("83 80 00000000"))], // opcode 0x3, masked, empty
      ["a reserved bit", 1002, {}, (p) => p.bytes(hex("c1 80 00000000"))], // FIN, RSV1, text, masked, empty
      ["a fragmented ping", 1002, {}, (p) => p.bytes(hex("09 80 00000000"))], // no FIN, ping, masked
      [
        "a ping over 125 bytes",
        1002,
        {},
        (p) => p.bytes(concat([hex("89 fe 007e 00000000"), new Uint8Array(126)])), // 16-bit length
      ],
      [
        "a close reason that is not UTF-8",
        1007,
        {},
        (p) => p.send(new Frame(Opcode.Close, hex("03e8 ff"))),
      ],
    ];
  for (const [what, code, options, violate] of violations) {
    await t.step(`fails with ${code} on ${what}, after the earlier messages`, async () => {
      const { session, peer } = open({ timeout: 100, ...options });
      const reader = session.incoming.getReader();
      await peer.send(Frame.text("before"));
      assert.equal((await reader.read()).value, "before");
      const failed = reader.read();
      failed.catch(() => {});
      await violate(peer);
      const close = await nextClose(peer); // the code reaches the peer before the end
      assert.equal(close.code, code);
      // After a framing error the session cannot find frames any more: it ends the transport
      // once its close frame is out, so the peer's answer may find the connection gone.
      await peer.send(Frame.close(code)).catch(() => {});
      await assertEnded(peer);
      await assert.rejects(failed, (e) => {
        assert.ok(e instanceof WebSocketError, String(e));
        assert.equal(e.closeCode, code);
        return true;
      });
      const info = await session.closed;
      assert.deepEqual([info.code, info.wasClean], [code, false]);
      await assert.rejects(session.send("x"), WebSocketError);
    });
  }

  await t.step(
    "after a failure, ends when the peer answers the close, not after timeout",
    async () => {
      // The peer receives the close code, then the session reads on for its close (the drop
      // comes once the input was quiet for 250 ms), so a prompt answer ends it at once.
      const { session, peer } = open({ timeout: 1000 });
      const started = Date.now();
      await peer.send(Frame.text(Uint8Array.of(0xff))); // invalid UTF-8: frames stay parseable
      assert.equal((await nextClose(peer)).code, 1007);
      await peer.send(Frame.close(1007));
      await assertEnded(peer);
      const elapsed = Date.now() - started;
      await assert.rejects(session.incoming.getReader().read(), { closeCode: 1007 });
      assert.equal((await session.closed).code, 1007);
      assert.ok(elapsed < 200, `the transport ended ${elapsed} ms after the peer's close`);
    },
  );

  // RFC 6455 §7.1.7: an endpoint that must Fail the WebSocket Connection "MUST NOT continue
  // to attempt to process data (including a responding Close frame)". A message-level
  // failure (here 1007) once held the connection until the peer answered or `timeout`
  // passed (15 s by default); a decoder failure ended it after 250 ms of quiet input.
  for (const role of ["server", "client"] as const) {
    await t.step(
      `(${role}) after a failure, ends the transport once a silent peer stays quiet 250 ms`,
      async () => {
        const { session, peer } = open({ role, timeout: 15_000 });
        try {
          const started = Date.now();
          // An invalid UTF-8 text, then nothing.
          await peer.send(Frame.text(Uint8Array.of(0xff)));
          assert.equal((await nextClose(peer)).code, 1007);
          assert.equal(await within(peer.next(), 1000, "the session to end the transport"), null);
          const elapsed = Date.now() - started;
          assert.ok(elapsed >= 200, `ended ${elapsed} ms after the failure, before the quiet time`);
          assert.deepEqual(await session.closed, {
            code: 1007,
            reason: "Cannot read message: text is not valid UTF-8",
            wasClean: false,
          });
        } finally {
          await peer.end();
          await session.closed;
        }
      },
    );
  }

  await t.step("after a failure, input keeps the transport open until it is quiet", async () => {
    const { session, peer } = open({ timeout: 15_000 });
    await peer.send(Frame.text(Uint8Array.of(0xff)));
    assert.equal((await nextClose(peer)).code, 1007);
    const started = Date.now();
    for (let i = 0; i < 4; i++) {
      await delay(100);
      await peer.send(Frame.text("ignored")); // read and discarded: no echo, no second close
    }
    assert.equal(await within(peer.next(), 1000, "the session to end the transport"), null);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 600, `ended ${elapsed} ms after the failure, while the peer still sent`);
    assert.equal((await session.closed).code, 1007);
    await peer.end();
  });

  await t.step(
    "a frame the decoder refuses while closing: later input is dropped, ended when quiet",
    async () => {
      const { session, peer } = open({ timeout: 15_000 });
      void session.close(1000); // closing: waits for the peer's close
      assert.equal((await nextClose(peer)).code, 1000);
      await peer.bytes(Uint8Array.of(0x83, 0x80, 0, 0, 0, 0)); // opcode 3: refused
      const started = Date.now();
      for (let i = 0; i < 3; i++) {
        await delay(100);
        await peer.send(Frame.text("dropped")); // not handed to the failed decoder
      }
      assert.equal(await within(peer.next(), 1000, "the session to end the transport"), null);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 400, `ended ${elapsed} ms after the refusal, while the peer sent`);
      assert.equal((await session.closed).wasClean, false);
      await peer.end();
    },
  );

  // After our close, a reply that fails the connection (refused by the decoder, or a close
  // payload that is not one) was noted, and then the transport stayed open until `timeout`:
  // 15 s by default, where the same failure before our close ended it in 250 ms.
  // A frame of fewer than 126 bytes as a client sends it: masked, with a key of zeros.
  const maskedCopy = (frame: Uint8Array) =>
    Uint8Array.of(frame[0]!, frame[1]! | 0x80, 0, 0, 0, 0, ...frame.subarray(2));
  for (const role of ["server", "client"] as const) {
    const replies: [string, Uint8Array][] = [
      ["a frame with RSV1", Uint8Array.of(0xc1, 0x00)],
      ["a close of 1 byte", Uint8Array.of(0x88, 0x01, 0x03)],
      ["a close with code 1005", Uint8Array.of(0x88, 0x02, 0x03, 0xed)],
      ["a close whose reason is not UTF-8", Uint8Array.of(0x88, 0x03, 0x03, 0xe8, 0xff)],
    ];
    for (const [what, unmasked] of replies) {
      await t.step(`(${role}) after our close, ${what} ends the session when quiet`, async () => {
        const { session, peer } = open({ role, timeout: 15_000 });
        try {
          void session.close(1000);
          assert.equal((await nextClose(peer)).code, 1000);
          const started = Date.now();
          await peer.bytes(role === "server" ? maskedCopy(unmasked) : unmasked);
          assert.equal(await within(peer.next(), 2000, "the session to end the transport"), null);
          const elapsed = Date.now() - started;
          assert.ok(elapsed >= 200, `ended ${elapsed} ms after the reply, before the quiet time`);
          const info = await session.closed;
          assert.equal(info.wasClean, false);
          assert.ok(info.code === 1002 || info.code === 1007, `code ${info.code}`);
        } finally {
          await peer.end();
          await session.closed;
        }
      });
    }
  }

  await t.step("keeps a message received before a failure until it is read", async () => {
    const { session, peer } = open({ timeout: 100 });
    await peer.bytes(encode("client", Frame.text("kept"), Frame.text(Uint8Array.of(0xff)))); // one chunk
    assert.equal((await nextClose(peer)).code, 1007);
    await peer.send(Frame.close(1007));
    await assertEnded(peer);
    await session.closed;
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "kept");
    await assert.rejects(reader.read(), { closeCode: 1007 });
  });

  await t.step("ends with 1006 when the transport ends without a close frame", async () => {
    const { session, peer } = open();
    const reader = session.incoming.getReader();
    await peer.send(Frame.text("a"));
    assert.equal((await reader.read()).value, "a");
    await peer.end();
    await assert.rejects(reader.read(), (e) => e instanceof WebSocketError && e.closeCode === 1006);
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
    await assertEnded(peer); // no close frame: the connection is gone
    await assert.rejects(session.send("x"), { closeCode: 1006 });
  });

  await t.step("ends with 1006 when the transport fails", async () => {
    const sink = new GatedSink(false);
    const session = new WebSocketSession({
      readable: new ReadableStream({ pull: (c) => c.error(new Error("reset")) }),
      writable: sink.writable,
    });
    await assert.rejects(session.incoming.getReader().read(), { closeCode: 1006 });
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
  });

  await t.step("stops reading the transport while nobody reads incoming", async () => {
    const frame = encode("client", Frame.binary(new Uint8Array(1024)));
    let pulls = 0;
    let ending = false;
    const readable = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        if (!ending) return controller.enqueue(frame.slice());
        controller.enqueue(encode("client", Frame.close(1000)));
        controller.close();
      },
    }, { highWaterMark: 0 });
    const sink = new GatedSink(false);
    const session = new WebSocketSession({ readable, writable: sink.writable }, { timeout: 1000 });
    await delay(30);
    // Read ahead until 64 KiB of messages wait: 52 of 1024 bytes (each counting 1280).
    const idle = pulls;
    assert.ok(idle >= 52 && idle <= 54, `${idle} frames pulled while nobody reads`);
    await delay(30);
    assert.equal(pulls, idle, "pulled more while nobody reads");
    const reader = session.incoming.getReader();
    for (let i = 0; i < 10; i++) {
      assert.equal(((await reader.read()).value as Uint8Array).length, 1024);
    }
    assert.ok(pulls >= 10 && pulls <= idle + 11, `${pulls} pulls for 10 reads`);
    await delay(10);
    assert.ok(pulls <= idle + 11, `${pulls} pulls for 10 reads, after a pause`);
    ending = true;
    const closed = session.close();
    // What incoming already holds (its 64 KiB) is still delivered, then it ends.
    let left = 0;
    while (!(await reader.read()).done) left++;
    assert.ok(left >= 51 && left <= 54, `${left} messages after close()`);
    assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("send() resolves only when the transport accepted the bytes", async () => {
    const sink = new GatedSink(true);
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const session = new WebSocketSession({ readable: up.readable, writable: sink.writable });
    const sent = session.send(new Uint8Array(10_000));
    assert.equal(await settlesSoon(sent), false, "send resolved before the write completed");
    sink.open();
    await sent;
    const [frame] = decodeServerBytes(sink.chunks);
    assert.deepEqual([frame!.opcode, frame!.payload.length], [Opcode.Binary, 10_000]);
    sink.shut();
    const outgoing = session.outgoing.getWriter();
    const written = outgoing.write("via outgoing");
    assert.equal(await settlesSoon(written), false, "outgoing write resolved too early");
    sink.open();
    await written;
    outgoing.releaseLock();
    const writer = up.writable.getWriter();
    await writer.write(encode("client", Frame.close(1000)));
    assert.equal((await session.closed).code, 1000);
  });

  await t.step(
    "bufferedAmount counts the messages waiting as maxSendQueue does, not the session's own",
    async () => {
      const sink = new GatedSink(true);
      const up = new TransformStream<Uint8Array, Uint8Array>();
      const session = new WebSocketSession({ readable: up.readable, writable: sink.writable });
      assert.equal(session.bufferedAmount, 0);
      const sends = [
        session.send("x".repeat(100)), // 2-byte header
        session.send(new Uint8Array(1000)), // 4-byte header
        session.send("é".repeat(50)), // 100 UTF-8 bytes
      ];
      // Each write counts 1024 more (WRITE_OVERHEAD), as maxSendQueue counts it.
      const sent = 102 + 1004 + 102 + 3 * 1024;
      assert.equal(session.bufferedAmount, sent);
      // Writes to outgoing that are not awaited wait in its own queue (the first one is
      // handed on to the session at once), counted at 3 bytes per UTF-16 unit of a text.
      const writer = session.outgoing.getWriter();
      const writes = [writer.write("y".repeat(1000)), writer.write("z".repeat(10))];
      await delay(0);
      assert.equal(session.bufferedAmount, sent + 1004 + 1024 + 30 + 1024);
      const peer = up.writable.getWriter();
      await peer.write(encode("client", Frame.ping(new Uint8Array(10))));
      await delay(20); // the pong is queued behind the sends: it does not count
      assert.equal(session.bufferedAmount, sent + 1004 + 1024 + 30 + 1024);
      sink.open();
      await Promise.all([...sends, ...writes]);
      writer.releaseLock();
      assert.equal(session.bufferedAmount, 0);
      await peer.write(encode("client", Frame.close(1000)));
      assert.equal((await session.closed).code, 1000);
      assert.equal(session.bufferedAmount, 0);
    },
  );

  await t.step(
    "a sender that skips while bufferedAmount is over 1 MiB never fills maxSendQueue",
    async () => {
      // The README's broadcast advice, with small messages: each write keeps 1024 bytes
      // besides its own, which bufferedAmount counts as maxSendQueue (8 MiB) does.
      const sink = new GatedSink(true);
      const up = new TransformStream<Uint8Array, Uint8Array>();
      const session = new WebSocketSession({ readable: up.readable, writable: sink.writable });
      let sent = 0, skipped = 0;
      for (let i = 0; i < 20_000; i++) {
        if (session.bufferedAmount > 1_048_576) skipped++;
        else {
          session.send("x".repeat(100)).catch(() => {});
          sent++;
        }
      }
      assert.equal(session.signal.aborted, false, `failed after ${sent} sends`);
      assert.ok(skipped > 0 && sent > 900, `${sent} sent, ${skipped} skipped`);
      sink.open();
      await session.send("last");
      assert.equal(session.bufferedAmount, 0);
      const peer = up.writable.getWriter();
      await peer.write(encode("client", Frame.close(1000)));
      assert.equal((await session.closed).code, 1000);
    },
  );

  await t.step(
    "a write that never completes ends the session with 1006 after timeout",
    async () => {
      const sink = new GatedSink(true);
      const up = new TransformStream<Uint8Array, Uint8Array>();
      const session = new WebSocketSession(
        { readable: up.readable, writable: sink.writable, close: sink.close },
        { timeout: 50 },
      );
      const started = Date.now();
      const sent = session.send("stuck");
      const reading = session.incoming.getReader().read();
      reading.catch(() => {});
      const info = await session.closed;
      const elapsed = Date.now() - started;
      assert.deepEqual([info.code, info.wasClean], [1006, false]);
      assert.match(info.reason, /timeout/);
      assert.ok(elapsed >= 40 && elapsed < 2000, `ended after ${elapsed} ms`);
      assert.equal(sink.closeCalls, 1);
      await assert.rejects(sent, { closeCode: 1006 });
      await assert.rejects(reading, { closeCode: 1006 });
    },
  );

  await t.step(
    "a write stuck after others finished ends the session within 1.25 × timeout of the last",
    async () => {
      // The first write finishes at once, which the watchdog sees only at its next check;
      // the second never does. Checked once per timeout, the stall ran for nearly 2 × timeout
      // (about 790 ms here) before the session ended.
      let writes = 0;
      const writable = new WritableStream<Uint8Array>({
        write: () => writes++ === 0 ? Promise.resolve() : new Promise<void>(() => {}),
      });
      const up = new TransformStream<Uint8Array, Uint8Array>();
      const session = new WebSocketSession(
        { readable: up.readable, writable, close() {} },
        { timeout: 400 },
      );
      session.incoming.getReader().read().catch(() => {});
      await session.send("written");
      const stuckAt = performance.now();
      const stuck = session.send("stuck");
      const info = await within(session.closed, 3000, "the write timeout");
      const elapsed = performance.now() - stuckAt;
      assert.deepEqual([info.code, info.wasClean], [1006, false]);
      assert.ok(elapsed >= 380 && elapsed < 700, `ended ${Math.round(elapsed)} ms after the stall`);
      await assert.rejects(stuck, { closeCode: 1006 });
    },
  );

  await t.step(
    "a write that never completes on a transport without close() still resolves closed",
    async () => {
      // Transport.close is optional (an in-memory duplex has none), but without it
      // writer.abort() waits for the stuck write: forever, if the peer never reads again.
      // Neither `closed` nor the stuck send may wait for it (the send did stay pending until
      // the writes of a stream transport were settled by the abort itself).
      const sink = new GatedSink(true);
      const up = new TransformStream<Uint8Array, Uint8Array>();
      const session = new WebSocketSession(
        { readable: up.readable, writable: sink.writable },
        { timeout: 50 },
      );
      const sent = session.send("stuck").then(() => "resolved", (error) => error);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        Promise.all([session.closed, sent]),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve("pending"), 500))),
      ]);
      clearTimeout(timer);
      assert.equal(session.signal.aborted, true, "the session did not end");
      sink.open(); // let the write finish so nothing stays pending
      const info = await session.closed;
      assert.deepEqual([info.code, info.wasClean], [1006, false]);
      assert.notEqual(ended, "pending", "closed or send still pending 450 ms after the timeout");
      // The send whose write never returned rejects: its bytes may not have gone.
      const outcome = await sent;
      assert.ok(
        outcome instanceof WebSocketError && outcome.closeCode === 1006,
        `the stuck send ${String(outcome)}`,
      );
    },
  );

  await t.step("aborting the signal option closes with 1001", async () => {
    const controller = new AbortController();
    const { session, peer } = open({ signal: controller.signal });
    controller.abort();
    assert.equal((await nextClose(peer)).code, 1001);
    await peer.send(Frame.close(1001));
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1001, reason: "", wasClean: true });
  });

  await t.step("a signal aborted before the start closes with 1001", async () => {
    const { session, peer } = open({ signal: AbortSignal.abort() });
    assert.equal((await nextClose(peer)).code, 1001);
    await peer.send(Frame.close(1001));
    await assertEnded(peer);
    assert.equal((await session.closed).code, 1001);
  });

  await t.step("session.signal aborts when the session ends, with the code", async () => {
    const { session, peer } = open();
    assert.equal(session.signal.aborted, false);
    await peer.send(Frame.close(4003));
    await nextClose(peer);
    await session.closed;
    assert.equal(session.signal.aborted, true);
    const reason = session.signal.reason;
    assert.ok(reason instanceof WebSocketError);
    assert.equal(reason.closeCode, 4003);
  });

  await t.step("send() after close rejects with a WebSocketError", async () => {
    const { session, peer } = open();
    session.close();
    await assert.rejects(session.send("late"), WebSocketError);
    await answerClose(peer, 1000);
    await session.closed;
    await assert.rejects(session.send("later"), WebSocketError);
  });

  await t.step("outgoing.close() closes with 1000 after the messages written", async () => {
    const { session, peer } = open();
    const writer = session.outgoing.getWriter();
    const written = writer.write("one");
    const closing = writer.close();
    assert.equal(text.decode((await next(peer)).payload), "one");
    await written;
    await answerClose(peer, 1000);
    await closing;
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("incoming.cancel() closes the session", async () => {
    const { session, peer } = open();
    await session.incoming.cancel();
    await answerClose(peer, 1000);
    assert.equal((await session.closed).code, 1000);
  });

  await t.step("outgoing.abort() fails the session with 1011", async () => {
    const { session, peer } = open({ timeout: 100 });
    await session.outgoing.abort(new Error("gave up"));
    assert.equal((await nextClose(peer)).code, 1011);
    await peer.send(Frame.close(1011));
    await assertEnded(peer);
    assert.deepEqual([(await session.closed).code, (await session.closed).wasClean], [1011, false]);
  });

  await t.step("outgoing.abort() after close() leaves the clean close as it is", async () => {
    const { session, peer } = open({ timeout: 1000 });
    const closed = session.close(1000);
    await session.outgoing.abort(new Error("gave up"));
    assert.equal((await nextClose(peer)).code, 1000);
    await peer.send(Frame.close(1000));
    await assertEnded(peer);
    assert.deepEqual(await closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("decodes the buffered bytes first, then the transport", async () => {
    const [ours, theirs] = duplexPair();
    const wire = encode("client", Frame.text("first"), Frame.text("second"));
    const cut = wire.length - 3; // the second frame spans buffered and transport
    const session = new WebSocketSession(ours, { buffered: wire.slice(0, cut), timeout: 1000 });
    const peer = new RawPeer(theirs, "client");
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "first");
    const second = reader.read();
    await peer.bytes(wire.slice(cut));
    assert.equal((await second).value, "second");
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });

  await t.step("rejects options out of range", () => {
    const [ours] = duplexPair();
    assert.throws(() => new WebSocketSession(ours, { pingInterval: 0 }), RangeError);
    assert.throws(() => new WebSocketSession(ours, { timeout: -1 }), RangeError);
    assert.throws(() => new WebSocketSession(ours, { timeout: 0 }), RangeError);
    assert.throws(() => new WebSocketSession(ours, { maxFrameSize: -1 }), RangeError);
    assert.throws(() => new WebSocketSession(ours, { maxMessageSize: 1.5 }), RangeError);
    assert.throws(() => new WebSocketSession(ours, { role: "peer" as Role }), RangeError);
  });

  await t.step(
    "close() rejects a code that may not be sent or a reason over 123 bytes",
    async () => {
      const { session, peer } = open();
      assert.throws(() => session.close(1005), RangeError);
      assert.throws(() => session.close(1000, "x".repeat(124)), RangeError);
      assert.equal(session.signal.aborted, false, "a bad close() changed the state");
      session.close(1000, "x".repeat(123));
      assert.deepEqual(await nextClose(peer), { code: 1000, reason: "x".repeat(123) });
      await peer.send(Frame.close(1000));
      await assertEnded(peer);
      await session.closed;
    },
  );

  await t.step("a client fails with 1002 on a masked frame from the server", async () => {
    const { session, peer } = open({ role: "client", timeout: 100 });
    const failed = session.incoming.getReader().read();
    failed.catch(() => {});
    await peer.bytes(encode("client", Frame.text("masked"))); // what only a client may send
    assert.equal((await nextClose(peer)).code, 1002);
    await assert.rejects(failed, { closeCode: 1002 });
    await peer.end();
    assert.deepEqual([(await session.closed).code, (await session.closed).wasClean], [1002, false]);
  });

  await t.step(
    "two sessions talk: split messages, UTF-8 cut mid-character, come back whole",
    async () => {
      const [a, b] = duplexPair();
      const server = new WebSocketSession(a, { maxFrameSize: 7, timeout: 1000 });
      // maxFrameSize bounds what each side receives too: every frame here, close frames included,
      // must fit in 7 bytes.
      const client = new WebSocketSession(b, { role: "client", maxFrameSize: 7, timeout: 1000 });
      const echo = (async () => {
        for await (const message of server.incoming) await server.send(message);
      })();
      const replies = client.incoming.getReader();
      const euros = "€".repeat(100); // 300 bytes in frames of 7: characters span frames
      const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
      await client.send(euros);
      assert.equal((await replies.read()).value, euros);
      await client.send(bytes);
      assert.deepEqual((await replies.read()).value, bytes);
      const closed = client.close(4005, "bye");
      assert.deepEqual(await replies.read(), { done: true, value: undefined });
      await echo;
      assert.deepEqual(await server.closed, { code: 4005, reason: "bye", wasClean: true });
      assert.deepEqual(await closed, { code: 4005, reason: "bye", wasClean: true });
    },
  );
});

Deno.test("RawWebSocketSession", async (t) => {
  function openRaw(
    role: Role = "server",
    timeout = 1000,
  ): { session: RawWebSocketSession; peer: RawPeer } {
    const [ours, theirs] = duplexPair();
    const session = new RawWebSocketSession(ours, { role, timeout });
    const peer = new RawPeer(theirs, role === "server" ? "client" : "server");
    return { session, peer };
  }
  const shape = (f: Frame) => [f.opcode, String.fromCharCode(...f.payload), f.fin];

  await t.step("yields every frame, control frames included, and answers nothing", async () => {
    const { session, peer } = openRaw();
    const frames: Frame[] = [];
    const reading = (async () => {
      for await (const frame of session.incoming) frames.push(frame);
    })();
    await peer.send(
      Frame.ping(utf8.encode("p")),
      Frame.text("a", false),
      Frame.pong(utf8.encode("q")),
      Frame.continuation(utf8.encode("b")),
      Frame.close(4000, "bye"),
    );
    await reading; // a received close ends incoming
    assert.deepEqual(frames.map(shape), [
      [Opcode.Ping, "p", true],
      [Opcode.Text, "a", false],
      [Opcode.Pong, "q", true],
      [Opcode.Continuation, "b", true],
      [Opcode.Close, "\x0f\xa0bye", true],
    ]);
    const nothing = peer.next();
    assert.equal(await settlesSoon(nothing, 20), false, "the raw session answered by itself");
    assert.equal(await settlesSoon(session.closed, 0), false);
    await session.send(Frame.close(4000)); // our answer completes the handshake
    assert.equal((await nothing)?.opcode, Opcode.Close);
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 4000, reason: "bye", wasClean: true });
  });

  await t.step("bufferedAmount counts the frames waiting as maxSendQueue does", async () => {
    const sink = new GatedSink(true);
    const up = new TransformStream<Uint8Array, Uint8Array>();
    const session = new RawWebSocketSession(
      { readable: up.readable, writable: sink.writable },
      { timeout: 100 }, // no peer answers the close
    );
    const sends = [
      session.send(Frame.text("abc", false)),
      session.send(Frame.ping(new Uint8Array(5))),
    ];
    assert.equal(session.bufferedAmount, 5 + 7 + 2 * 1024);
    sink.open();
    await Promise.all(sends);
    assert.equal(session.bufferedAmount, 0);
    await session.close();
  });

  await t.step(
    "what the peer sends after its close is dropped, not decoded: the user's answer stands",
    async () => {
      const strays: [string, Uint8Array][] = [
        ["an unmasked frame", Uint8Array.of(0x82, 0x01, 0x00)],
        ["a frame over maxFrameSize", encode("client", Frame.binary(new Uint8Array(4096)))],
        ["bytes that are no frame", Uint8Array.of(0xff, 0xff, 0xff)],
      ];
      for (const [stray, together] of strays.flatMap((s) => [[s, false], [s, true]] as const)) {
        const what = `${stray[0]}${together ? ", in the close's chunk" : ""}`;
        const [ours, theirs] = duplexPair();
        const session = new RawWebSocketSession(ours, { timeout: 2000, maxFrameSize: 1024 });
        const peer = new RawPeer(theirs, "client");
        const close = encode("client", Frame.close(4000, "bye"));
        await peer.bytes(together ? concat([close, stray[1]]) : close);
        const frames = session.incoming.getReader();
        assert.equal((await frames.read()).value?.opcode, Opcode.Close, what);
        if (!together) await peer.bytes(stray[1]);
        await delay(10);
        await session.send(Frame.close(4000)); // the user's answer
        const answer = await peer.next();
        assert.deepEqual(
          [answer?.opcode, answer && readClosePayload(answer.payload).code],
          [Opcode.Close, 4000],
          what,
        );
        assert.deepEqual(await session.closed, { code: 4000, reason: "bye", wasClean: true }, what);
        await peer.end();
      }
    },
  );

  await t.step(
    "a peer's close left unanswered: its code, not clean, and no close frame of ours",
    async () => {
      // CloseInfo.wasClean says whether both close frames were exchanged.
      const { session, peer } = openRaw("server", 300);
      await peer.send(Frame.close(1000, "bye"));
      const close = (await session.incoming.getReader().read()).value!;
      assert.equal(close.opcode, Opcode.Close); // handed on; the user does not answer
      assert.deepEqual(await within(session.closed, 3000, "the close timeout"), {
        code: 1000,
        reason: "bye",
        wasClean: false,
      });
      assert.equal(await peer.next(), null, "a close frame went out that the user never sent");
    },
  );

  await t.step(
    "a peer that closes and hangs up before the user answers ends the session at once",
    async () => {
      const { session, peer } = openRaw("client", 5000);
      const started = performance.now();
      await peer.send(Frame.close(4001, "server bye"));
      await peer.end(); // the server ends the transport without waiting for our answer
      const info = await within(session.closed, 3000, "the end of the transport to be seen");
      assert.deepEqual(info, { code: 4001, reason: "server bye", wasClean: false });
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `seen after ${Math.round(elapsed)} ms, not at the end`);
    },
  );

  await t.step("sends frames as given, and leaves message rules to the user", async () => {
    const { session, peer } = openRaw();
    const reader = session.incoming.getReader();
    const sending = peer.send(
      Frame.continuation(Uint8Array.of(1)),
      Frame.text(Uint8Array.of(0xff)),
    );
    assert.deepEqual(shape((await reader.read()).value!), [Opcode.Continuation, "\x01", true]);
    assert.deepEqual([...(await reader.read()).value!.payload], [0xff]);
    await sending;
    const writer = session.outgoing.getWriter();
    const written = Promise.all([
      writer.write(Frame.text("x", false)),
      writer.write(Frame.ping(Uint8Array.of(9))),
      writer.write(Frame.continuation(utf8.encode("y"))),
    ]);
    assert.deepEqual(shape(await next(peer)), [Opcode.Text, "x", false]);
    assert.deepEqual(shape(await next(peer)), [Opcode.Ping, "\x09", true]);
    assert.deepEqual(shape(await next(peer)), [Opcode.Continuation, "y", true]);
    await written;
    const closing = writer.close(); // closes with 1000
    await answerClose(peer, 1000);
    await closing;
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("a close frame written starts the handshake; the peer's completes it", async () => {
    const { session, peer } = openRaw();
    const reader = session.incoming.getReader();
    await session.send(Frame.close(4002, "done"));
    assert.deepEqual(await nextClose(peer), { code: 4002, reason: "done" });
    await assert.rejects(session.send(Frame.text("late")), WebSocketError);
    // What the peer sent before it read our close, then its close, as Ktor's raw session.
    await peer.send(Frame.text("sent before"), Frame.ping(utf8.encode("p")), Frame.close(4002));
    await assertEnded(peer);
    assert.deepEqual(shape((await reader.read()).value!), [Opcode.Text, "sent before", true]);
    assert.deepEqual(shape((await reader.read()).value!), [Opcode.Ping, "p", true]);
    assert.deepEqual(shape((await reader.read()).value!), [Opcode.Close, "\x0f\xa2", true]);
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    assert.deepEqual(await session.closed, { code: 4002, reason: "", wasClean: true });
  });

  await t.step(
    "after our close, unread late frames are dropped, never the peer's close",
    async () => {
      const { session, peer } = openRaw("server", 5000);
      const reader = session.incoming.getReader();
      session.close(1000);
      assert.equal((await nextClose(peer)).code, 1000);
      const late = Array.from({ length: 40 }, (_, i) => Frame.binary(new Uint8Array(4096).fill(i)));
      const started = Date.now();
      await peer.send(...late, Frame.close(1000));
      await assertEnded(peer);
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
      assert.ok(Date.now() - started < 1000, "the unread frames held the peer's close back");
      const frames: Frame[] = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) frames.push(r.value);
      const kept = frames.slice(0, -1);
      assert.ok(kept.length >= 1 && kept.length < 40, `${kept.length} late frames kept`);
      kept.forEach((frame, i) =>
        assert.equal(frame.payload[0], i, "kept in order, from the first")
      );
      assert.equal(frames.at(-1)!.opcode, Opcode.Close);
    },
  );

  await t.step("after our close, a peer that hangs up ends incoming without an error", async () => {
    const { session, peer } = openRaw();
    const reader = session.incoming.getReader();
    session.close(1000);
    assert.equal((await nextClose(peer)).code, 1000);
    await peer.send(Frame.text("last"));
    await peer.end();
    assert.deepEqual(shape((await reader.read()).value!), [Opcode.Text, "last", true]);
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    assert.equal((await session.closed).code, 1006);
  });

  await t.step("after our close, a silent peer's timeout ends incoming", async () => {
    const { session, peer } = openRaw("server", 50);
    const reader = session.incoming.getReader();
    session.close(1000);
    assert.equal((await nextClose(peer)).code, 1000);
    assert.deepEqual(await within(reader.read(), 1000, "the end of incoming"), {
      done: true,
      value: undefined,
    });
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
  });

  await t.step("still enforces frame rules: an unmasked frame gets 1002", async () => {
    const { session, peer } = openRaw("server", 100);
    const reader = session.incoming.getReader();
    const failed = reader.read();
    failed.catch(() => {});
    await peer.bytes(hex("89 00")); // an unmasked, empty ping
    assert.equal((await nextClose(peer)).code, 1002);
    await peer.send(Frame.close(1002)).catch(() => {}); // framing is lost: it may find the end
    await assertEnded(peer);
    await assert.rejects(failed, { closeCode: 1002 });
    assert.equal((await session.closed).code, 1002);
  });

  await t.step("a client waits for the server to end the transport", async () => {
    const { session, peer } = openRaw("client");
    await peer.send(Frame.close(1000));
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value?.opcode, Opcode.Close);
    await session.send(Frame.close(1000));
    assert.equal((await next(peer)).opcode, Opcode.Close);
    assert.equal(await settlesSoon(session.closed, 20), false);
    await peer.end();
    await assertEnded(peer);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
  });

  await t.step("rejects a close frame with an invalid payload", async () => {
    const { session, peer } = openRaw();
    await assert.rejects(session.send(new Frame(Opcode.Close, hex("03e7"))), RangeError);
    session.close();
    await answerClose(peer, 1000);
    await session.closed;
  });
});
