// Copyright 2026 the wirestream authors. MIT license.
// The wire session's `incoming`: its async iterator (`for await`), which reads the session's
// queue directly, behaves as the Streams standard's, and reading stops while nobody reads.
import assert from "node:assert/strict";
import {
  Frame,
  FrameEncoder,
  type Message,
  Opcode,
  readClosePayload,
  type Role,
  WebSocketError,
  WebSocketSession,
} from "@wirestream/wirestream";
import { duplexPair, RawPeer } from "../_util/duplex.ts";
import { deferred, delay, within } from "../_util/async.ts";
import { concat } from "../_util/random.ts";
import { retainedBytes } from "../_util/gc.ts";

/**
 * A server session and a raw client peer on an in-memory duplex. The session's transport
 * counts its reads: each is one chunk the peer wrote.
 */
function open(): { session: WebSocketSession; peer: RawPeer; reads: () => number } {
  const [ours, theirs] = duplexPair();
  const upstream = ours.readable.getReader();
  let reads = 0;
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      reads++;
      const { done, value } = await upstream.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => upstream.cancel(reason),
  }, { highWaterMark: 0 });
  const session = new WebSocketSession({ readable, writable: ours.writable }, { timeout: 1000 });
  return { session, peer: new RawPeer(theirs, "client"), reads: () => reads };
}

/** Whether `promise` settles within `ms` milliseconds. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  await delay(ms);
  return settled;
}

/** Writes bytes as the peer, without waiting for the session to read them. */
function write(peer: RawPeer, bytes: Uint8Array): void {
  peer.bytes(bytes).catch(() => {}); // fails only once the session ended the transport
}

/** Frames encoded as a peer of `role` sends them, in one chunk. */
function encode(role: Role, ...frames: Frame[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const encoder = new FrameEncoder({ role });
  for (const frame of frames) encoder.encode(frame, { enqueue: (c) => chunks.push(c.slice()) });
  return concat(chunks);
}

/** The code of the next frame the peer receives, which must be a close frame. */
async function nextCloseCode(peer: RawPeer): Promise<number> {
  const frame = await peer.next();
  assert.equal(frame?.opcode, Opcode.Close, `expected a close frame, got ${frame?.opcode}`);
  return readClosePayload(frame!.payload).code;
}

/** The messages of a `for await` over `incoming`, and what it threw (null when it ended). */
async function drain(session: WebSocketSession): Promise<{ messages: Message[]; error: unknown }> {
  const messages: Message[] = [];
  try {
    for await (const message of session.incoming) messages.push(message);
  } catch (error) {
    return { messages, error };
  }
  return { messages, error: null };
}

/** The peer closes with 1000 and reads the session's answer and the end. */
async function peerCloses(session: WebSocketSession, peer: RawPeer): Promise<void> {
  await peer.send(Frame.close(1000));
  assert.equal(await nextCloseCode(peer), 1000);
  assert.equal(await peer.next(), null);
  assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
}

/** The session closed with 1000 (a cancel): the peer reads it, answers, and reads the end. */
async function sessionClosed(session: WebSocketSession, peer: RawPeer): Promise<void> {
  assert.equal(await nextCloseCode(peer), 1000);
  await peer.send(Frame.close(1000));
  assert.equal(await peer.next(), null);
  assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
}

Deno.test("WebSocketSession: incoming", async (t) => {
  await t.step(
    "for await gives every message in order and ends after the peer's close",
    async () => {
      const { session, peer } = open();
      const text = Array.from({ length: 50 }, (_, i) => Frame.text(`m${i}`));
      // One chunk with many messages: the decoder hands on all of them at once.
      write(peer, encode("client", ...text, Frame.binary(Uint8Array.of(1, 2))));
      const done = drain(session);
      write(peer, encode("client", Frame.text("last")));
      await peerCloses(session, peer);
      assert.deepEqual(await done, {
        messages: [...text.map((_, i) => `m${i}`), Uint8Array.of(1, 2), "last"],
        error: null,
      });
      assert.equal(session.incoming.locked, false);
      assert.deepEqual(await session.incoming.getReader().read(), { value: undefined, done: true });
    },
  );

  await t.step("break in for await cancels incoming: the session closes with 1000", async () => {
    const { session, peer } = open();
    write(peer, encode("client", Frame.text("one"), Frame.text("two")));
    for await (const message of session.incoming) {
      assert.equal(message, "one");
      break;
    }
    assert.equal(session.incoming.locked, false);
    await sessionClosed(session, peer);
  });

  await t.step("return() waits for the next() under way, then cancels (1000)", async () => {
    const { session, peer } = open();
    const iterator = session.incoming[Symbol.asyncIterator]();
    // Like the standard's iterators, it inherits %AsyncIteratorPrototype%.
    assert.equal(typeof Reflect.get(iterator, Symbol.asyncDispose), "function");
    assert.throws(() => session.incoming.getReader(), TypeError);
    const next = iterator.next();
    const returned = iterator.return!("why");
    await peer.bytes(encode("client", Frame.text("one")));
    assert.deepEqual(await next, { value: "one", done: false });
    assert.deepEqual(await returned, { value: "why", done: true });
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
    assert.equal(session.incoming.locked, false);
    await sessionClosed(session, peer);
  });

  await t.step("values({ preventCancel: true }): a break leaves the session open", async () => {
    const { session, peer } = open();
    write(peer, encode("client", Frame.text("one"), Frame.text("two"), Frame.text("three")));
    for await (const message of session.incoming.values({ preventCancel: true })) {
      assert.equal(message, "one");
      break;
    }
    assert.equal(session.incoming.locked, false);
    assert.equal(session.signal.aborted, false);
    const reader = session.incoming.getReader();
    assert.deepEqual(await reader.read(), { value: "two", done: false });
    reader.releaseLock();
    const done = drain(session);
    await peerCloses(session, peer);
    assert.deepEqual(await done, { messages: ["three"], error: null });
  });

  await t.step("next() calls made together get the messages in order", async () => {
    const { session, peer } = open();
    const iterator = session.incoming[Symbol.asyncIterator]();
    const results = [iterator.next(), iterator.next(), iterator.next(), iterator.next()];
    await peer.bytes(encode("client", Frame.text("one")));
    await peer.bytes(encode("client", Frame.binary(Uint8Array.of(2))));
    await peerCloses(session, peer);
    assert.deepEqual(await Promise.all(results), [
      { value: "one", done: false },
      { value: Uint8Array.of(2), done: false },
      { value: undefined, done: true },
      { value: undefined, done: true },
    ]);
    assert.equal(session.incoming.locked, false);
  });

  await t.step(
    "messages received before a failure come first, then its error, again on a second loop",
    async () => {
      const failures = [
        // An unmasked frame from a client: 1002 from the frame decoder.
        [encode("server", Frame.text("unmasked")), 1002],
        // Invalid UTF-8 in a text message: 1007 from the message decoder.
        [encode("client", new Frame(Opcode.Text, Uint8Array.of(0xff))), 1007],
      ] as const;
      for (const [bad, code] of failures) {
        const { session, peer } = open();
        write(peer, concat([encode("client", Frame.text("one"), Frame.text("two")), bad]));
        assert.equal(await nextCloseCode(peer), code);
        const { messages, error } = await drain(session);
        assert.deepEqual(messages, ["one", "two"], `${code}`);
        assert.ok(error instanceof WebSocketError && error.closeCode === code, `${code}`);
        assert.equal(session.incoming.locked, false);
        assert.equal((await drain(session)).error, error, "a second loop fails the same way");
        await peer.end();
        assert.equal((await session.closed).code, code);
      }
    },
  );

  await t.step("a failure while next() waits rejects it", async () => {
    const { session, peer } = open();
    const iterator = session.incoming[Symbol.asyncIterator]();
    const next = iterator.next();
    write(peer, encode("server", Frame.text("unmasked")));
    await assert.rejects(next, { closeCode: 1002 });
    assert.equal(session.incoming.locked, false);
    assert.equal(await nextCloseCode(peer), 1002);
    await peer.end();
    assert.equal((await session.closed).code, 1002);
  });

  await t.step("a reader released midway, then for await reads the rest", async () => {
    for (const waiting of [false, true]) {
      const { session, peer } = open();
      const reader = session.incoming.getReader();
      if (waiting) {
        // A read waits, and is released: the message handed to it stays in the stream's own
        // queue, and is the first for await gets.
        const read = reader.read();
        reader.releaseLock();
        await assert.rejects(read, TypeError);
        await peer.bytes(encode("client", Frame.text("one"), Frame.text("two")));
        await delay(5);
      } else {
        write(peer, encode("client", Frame.text("one"), Frame.text("two")));
        assert.deepEqual(await reader.read(), { value: "one", done: false });
        reader.releaseLock();
      }
      const done = drain(session);
      write(peer, encode("client", Frame.text("three")));
      await peerCloses(session, peer);
      const messages = waiting ? ["one", "two", "three"] : ["two", "three"];
      assert.deepEqual(await done, { messages, error: null }, `waiting: ${waiting}`);
    }
  });

  await t.step(
    "backpressure: the transport is read only while less than 64 KiB of messages wait unread",
    async () => {
      const { session, peer, reads } = open();
      // Nobody reads: messages of 16,000 characters count 16,256 bytes each, so the fifth
      // takes the queue past 64 KiB and the reading stops; the other 15 stay unread.
      const big = (i: number) => `${i}`.padEnd(16_000, ".");
      for (let i = 0; i < 20; i++) write(peer, encode("client", Frame.text(big(i))));
      for (let waited = 0; reads() < 5 && waited < 1000; waited += 10) await delay(10);
      await delay(30); // and no more come
      assert.equal(reads(), 5, `${reads()} reads of the transport while nobody reads`);
      // A loop that stops after five messages: the transport is read no further than 64 KiB
      // of messages past them.
      const gate = deferred();
      const got: Message[] = [];
      const loop = (async () => {
        for await (const message of session.incoming.values({ preventCancel: true })) {
          got.push(message);
          if (got.length === 5) await gate.promise;
          if (got.length === 20) break;
        }
      })();
      await delay(30);
      assert.equal(got.length, 5);
      assert.ok(reads() <= 11, `${reads()} reads of the transport for 5 messages`);
      gate.resolve();
      await within(loop, 1000, "the 20 messages");
      // Many small messages in one read: decoding stops once they fill the queue (about 250
      // of 1,000 here), so the ping behind them is not answered, and no further read is made,
      // until the consumer reads on.
      const held = deferred();
      const before = reads();
      const second = (async () => {
        for await (const message of session.incoming.values({ preventCancel: true })) {
          got.push(message);
          await held.promise;
        }
      })();
      const small = Array.from({ length: 1000 }, (_, i) => Frame.text(`b${i}`));
      write(peer, encode("client", ...small, Frame.ping(Uint8Array.of(7))));
      for (let i = 0; i < 10; i++) write(peer, encode("client", Frame.text(`c${i}`)));
      const pong = peer.next();
      assert.equal(await settlesWithin(pong, 50), false, "the ping was decoded while 999 wait");
      assert.ok(reads() <= before + 1, `${reads() - before} reads while 999 messages wait`);
      held.resolve();
      assert.equal((await within(pong, 1000, "the pong"))?.opcode, Opcode.Pong);
      await peerCloses(session, peer);
      await second;
      assert.deepEqual(got.map((m) => (m as string).slice(0, 4)), [
        ...Array.from({ length: 20 }, (_, i) => big(i).slice(0, 4)),
        ...Array.from({ length: 1000 }, (_, i) => `b${i}`.slice(0, 4)),
        ...Array.from({ length: 10 }, (_, i) => `c${i}`),
      ]);
    },
  );

  await t.step("reads on while less than 64 KiB wait, counting 256 per message", async () => {
    // A ping behind the unread message, in the same read, is answered only if the decoder
    // went on past the message.
    for (const [size, answered] of [[65_536 - 257, true], [65_536 - 256, false]] as const) {
      const { session, peer } = open();
      write(
        peer,
        encode("client", Frame.binary(new Uint8Array(size)), Frame.ping(Uint8Array.of(7))),
      );
      const pong = peer.next();
      assert.equal(await settlesWithin(pong, 50), answered, `${size} bytes unread`);
      const reader = session.incoming.getReader();
      assert.equal(((await reader.read()).value as Uint8Array).length, size);
      assert.equal((await pong)?.opcode, Opcode.Pong, "answered once the message is read");
      reader.releaseLock();
      await peerCloses(session, peer);
    }
  });

  await t.step("one read of empty messages queues no more than 64 KiB's worth", async () => {
    // 6 bytes per empty masked frame: 64 KiB of them were 10,922 queued messages, 2.3 MB of
    // heap for one read of a connection nobody reads (a review measured 37 times the bytes).
    const empty = encode("client", Frame.binary(new Uint8Array(0)));
    const flood = concat(Array.from({ length: 10_922 }, () => empty));
    const opened = Array.from({ length: 20 }, () => open());
    const before = retainedBytes();
    for (const { peer } of opened) write(peer, flood.slice());
    await delay(50);
    const perSession = (retainedBytes() - before) / opened.length;
    assert.ok(perSession < 300_000, `${Math.round(perSession)} bytes held per session`);
    for (const { session, peer } of opened) {
      const reader = session.incoming.getReader();
      let count = 0;
      const counted = (async () => {
        while (!(await reader.read()).done) count++;
      })();
      write(peer, encode("client", Frame.close(1000)));
      await within(counted, 2000, "the queued messages and the close");
      assert.equal(count, 10_922, "every message, after the consumer reads on");
      await peer.end();
    }
  });

  await t.step("a handler that never reads still sees a modest peer's close", async () => {
    // Read ahead of the consumer, a few messages and the close frame behind them are read,
    // so the session ends though incoming is never read: it once stopped at the first message.
    const { session, peer } = open();
    write(peer, encode("client", Frame.text("one"), Frame.text("two")));
    await delay(10); // read apart: a close in the same read was always seen
    write(peer, encode("client", Frame.close(1000)));
    assert.equal(await nextCloseCode(peer), 1000);
    assert.deepEqual(await within(session.closed, 1000, "the session to end"), {
      code: 1000,
      reason: "",
      wasClean: true,
    });
    assert.deepEqual(await Array.fromAsync(session.incoming), ["one", "two"]);
  });

  await t.step("getReader(), pipeTo() and tee() read through the stream", async () => {
    {
      const { session, peer } = open();
      const got: Message[] = [];
      const piped = session.incoming.pipeTo(new WritableStream({ write: (m) => void got.push(m) }));
      await peer.bytes(encode("client", Frame.text("one"), Frame.text("two")));
      await peerCloses(session, peer);
      await piped;
      assert.deepEqual(got, ["one", "two"]);
    }
    {
      const { session, peer } = open();
      const branches = session.incoming.tee().map((branch) => Array.fromAsync(branch));
      await peer.bytes(encode("client", Frame.text("one"), Frame.text("two")));
      await peerCloses(session, peer);
      assert.deepEqual(await Promise.all(branches), [["one", "two"], ["one", "two"]]);
    }
  });
});
