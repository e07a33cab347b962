// Copyright 2026 the wirestream authors. MIT license.
// Sessions over a direct transport (read/write methods, as a Deno.Conn has): the path the
// wire engine takes, with partial writes, many sends in flight and a failing write.
import assert from "node:assert/strict";
import {
  Frame,
  Opcode,
  readClosePayload,
  WebSocketError,
  WebSocketSession,
} from "@wirestream/wirestream";
import {
  directTransport,
  duplexPair,
  holdingTransport,
  RawPeer,
  streamless,
} from "../_util/duplex.ts";
import { delay } from "../_util/async.ts";

Deno.test("WebSocketSession over a direct transport", async (t) => {
  await t.step("continues partial writes and keeps sends in order", async () => {
    const [ours, theirs] = duplexPair();
    const transport = directTransport(ours.readable, ours.writable, { maxWrite: 3 });
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const peer = new RawPeer(theirs, "client");
    const messages = Array.from({ length: 20 }, (_, i) => new Uint8Array(i * 7).fill(i));
    // All sends at once: each waits behind the one before, each write goes 3 bytes at a time.
    const sent = Promise.all([...messages.map((m) => session.send(m)), session.send("done")]);
    for (const message of messages) {
      const frame = await peer.next();
      assert.equal(frame?.opcode, Opcode.Binary);
      assert.deepEqual(frame!.payload, message);
    }
    assert.equal(new TextDecoder().decode((await peer.next())!.payload), "done");
    await sent;
    await peer.send(Frame.close(1000));
    assert.deepEqual(readClosePayload((await peer.next())!.payload), { code: 1000, reason: "" });
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    assert.ok(transport.closed, "the server ended the transport");
    await peer.end();
  });

  await t.step("echoes what it reads through the direct read", async () => {
    const [ours, theirs] = duplexPair();
    const session = new WebSocketSession(directTransport(ours.readable, ours.writable), {
      timeout: 1000,
    });
    const peer = new RawPeer(theirs, "client");
    const echo = (async () => {
      for await (const message of session.incoming) await session.send(message);
    })();
    for (const size of [0, 1, 125, 126, 16_383, 16_384, 70_000]) {
      const payload = new Uint8Array(size).map((_, i) => i * 31);
      await peer.send(Frame.binary(payload));
      assert.deepEqual((await peer.next())!.payload, payload, `${size} bytes`);
    }
    await peer.send(Frame.close(4000, "bye"));
    await echo;
    assert.deepEqual(await session.closed, { code: 4000, reason: "bye", wasClean: true });
    await peer.end();
  });

  await t.step("keeps the bytes of a large unread message when the next read comes", async () => {
    // A binary message of 16 KiB or more is a view of the read buffer: that buffer must not
    // be read into again while the message waits unread.
    const [ours, theirs] = duplexPair();
    const session = new WebSocketSession(directTransport(ours.readable, ours.writable), {
      timeout: 1000,
    });
    const peer = new RawPeer(theirs, "client");
    await peer.send(Frame.binary(new Uint8Array(20_000).fill(1)));
    await delay(20); // read, and held unread
    await peer.send(Frame.binary(new Uint8Array(20_000).fill(2)));
    await delay(20);
    const reader = session.incoming.getReader();
    const first = (await reader.read()).value as Uint8Array;
    const second = (await reader.read()).value as Uint8Array;
    assert.ok(first.length === 20_000 && first.every((b) => b === 1), "the first message");
    assert.ok(second.length === 20_000 && second.every((b) => b === 2), "the second message");
    reader.releaseLock();
    session.close();
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    await peer.send(Frame.close(1000));
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    await peer.end();
  });

  await t.step("a transport with read() but no write() is used through its streams", async () => {
    // The direct path needs both methods (see Transport): with one only, the streams serve.
    const [ours, theirs] = duplexPair();
    const transport = {
      readable: ours.readable,
      writable: ours.writable,
      read: (): Promise<number | null> => Promise.reject(new Error("read() used without write()")),
    };
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const peer = new RawPeer(theirs, "client");
    await peer.send(Frame.text("hi"));
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "hi");
    await session.send("back");
    assert.equal(new TextDecoder().decode((await peer.next())!.payload), "back");
    reader.releaseLock();
    await peer.send(Frame.close(1000));
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    await peer.end();
  });

  await t.step(
    "answers a ping that came while a pong was stuck with that ping's bytes",
    async () => {
      // A ping's payload is a view of the read buffer, which the next read fills again: the
      // payload of a ping kept for later must be a copy.
      const [ours, theirs] = duplexPair();
      const session = new WebSocketSession(directTransport(ours.readable, ours.writable), {
        timeout: 1000,
      });
      const peer = new RawPeer(theirs, "client");
      const messages = Array.fromAsync(session.incoming); // the session reads while this does
      // Sends the peer does not read yet fill the pipes, so the first pong waits behind them.
      const sends = Array.from({ length: 8 }, () => session.send(new Uint8Array(10)));
      await peer.send(Frame.ping(Uint8Array.of(1, 1, 1, 1)));
      await delay(20);
      await peer.send(Frame.ping(Uint8Array.of(2, 2, 2, 2))); // kept for when that pong is out
      await delay(20);
      await peer.send(Frame.binary(new Uint8Array(64).fill(3))); // read into the same buffer
      await delay(20);
      const pongs: Uint8Array[] = [];
      while (pongs.length < 2) {
        const frame = (await peer.next())!;
        if (frame.opcode === Opcode.Pong) pongs.push(frame.payload);
        else assert.deepEqual(frame.payload, new Uint8Array(10));
      }
      await Promise.all(sends);
      assert.deepEqual(pongs, [new Uint8Array(4).fill(1), new Uint8Array(4).fill(2)]);
      await peer.send(Frame.close(1000));
      assert.deepEqual(readClosePayload((await peer.next())!.payload), { code: 1000, reason: "" });
      assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
      assert.deepEqual(await messages, [new Uint8Array(64).fill(3)]);
      await peer.end();
    },
  );

  await t.step("a failed write rejects the sends after it and ends the session", async () => {
    const [ours, theirs] = duplexPair();
    const transport = directTransport(ours.readable, ours.writable, { maxWrite: 4, failAfter: 10 });
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const peer = new RawPeer(theirs, "client");
    const drained = (async () => {
      while (await peer.next() !== null); // reads what arrives, so that writes complete
    })().catch(() => {});
    const first = session.send(new Uint8Array(6)); // 8 bytes: written
    const second = session.send(new Uint8Array(6)); // fails part way
    const third = session.send(new Uint8Array(6)); // queued behind the failure
    await first;
    for (const send of [second, third]) {
      await assert.rejects(send, (e) => e instanceof WebSocketError && e.closeCode === 1006);
    }
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
    await assert.rejects(session.send("late"), (e) => e instanceof WebSocketError);
    assert.ok(transport.closed);
    assert.equal(transport.written, 8, "nothing went after the failure");
    await peer.end();
    await drained;
  });

  await t.step("a write that throws instead of rejecting fails the session", async () => {
    const [ours, theirs] = duplexPair();
    const transport = directTransport(ours.readable, ours.writable);
    transport.write = () => {
      throw new Deno.errors.BadResource("the connection is gone");
    };
    const session = new WebSocketSession(transport, { timeout: 1000 });
    await assert.rejects(
      session.send("lost"),
      (e) => e instanceof WebSocketError && e.closeCode === 1006,
    );
    assert.deepEqual(await session.closed, { code: 1006, reason: "", wasClean: false });
    await theirs.writable.close().catch(() => {}); // closing ours cancelled its stream
  });

  await t.step(
    "with no close() to interrupt a stuck write, the sends still reject once the session ends",
    async () => {
      // Transport.close is optional; without it nothing makes the write in flight return.
      const transport = streamless({
        read: () => new Promise<number | null>(() => {}),
        write: () => new Promise<number>(() => {}),
      });
      const session = new WebSocketSession(transport, { timeout: 100 });
      const outcomes = ["stuck", "queued behind"].map((message) =>
        session.send(message).then(() => "resolved", (error) => error)
      );
      const info = await session.closed;
      assert.deepEqual(info, { code: 1006, reason: "write timeout", wasClean: false });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settled = await Promise.race([
        Promise.all(outcomes),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve("pending"), 500))),
      ]);
      clearTimeout(timer);
      assert.notEqual(settled, "pending", "the sends still pending 500 ms after the end");
      for (const outcome of settled as unknown[]) {
        assert.ok(
          outcome instanceof WebSocketError && outcome.closeCode === 1006,
          String(outcome),
        );
      }
    },
  );

  const message = (fill: number, size = 4096) => new Uint8Array(size).fill(fill);
  /** Checks that `write` began with a binary frame of `size` bytes of `fill`. */
  const sentAs = (write: { copy: Uint8Array }, fill: number, size = 4096) => {
    assert.deepEqual([...write.copy.subarray(0, 4)], [0x82, 126, size >> 8, size & 0xff]);
    assert.deepEqual(write.copy.subarray(4), message(fill, size));
  };
  /** Closes `session` and ends its holding transport (the peer never answers). */
  const end = async (session: WebSocketSession, transport: ReturnType<typeof holdingTransport>) => {
    session.close();
    await delay(0);
    transport.writes.at(-1)?.release(); // the close frame, if it was written
    transport.end();
    await session.closed;
  };

  await t.step("reuses a large frame's buffer only once its write resolved", async () => {
    // On a connection an engine made, a 4 KiB message's frame borrows a pooled block
    // (lib/_slab.ts) that goes back once its write is done, whole: until then neither this
    // session nor another may write into it.
    const transport = holdingTransport({ writesDone: true });
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const sends = [1, 2, 3].map((fill) => session.send(message(fill)));
    await delay(0);
    assert.equal(transport.writes.length, 1, "one write at a time");
    const first = transport.writes[0]!;
    sentAs(first, 1);
    first.release(1000); // a partial write: the rest comes from the same bytes
    await delay(0);
    const rest = transport.writes[1]!;
    assert.ok(rest.bytes.buffer === first.bytes.buffer);
    assert.equal(rest.bytes.byteOffset, first.bytes.byteOffset + 1000);
    // Meanwhile another session sends a large frame too.
    const other = holdingTransport({ writesDone: true });
    const otherSession = new WebSocketSession(other, { timeout: 1000 });
    const otherSend = otherSession.send(message(9));
    await delay(0);
    assert.ok(other.writes[0]!.bytes.buffer !== first.bytes.buffer);
    assert.ok(first.intact() && rest.intact(), "the first frame's bytes while its write is out");
    rest.release();
    for (const fill of [2, 3]) {
      await delay(0);
      const write = transport.writes.at(-1)!;
      assert.ok(write.intact());
      sentAs(write, fill);
      write.release();
    }
    await Promise.all(sends);
    const again = session.send(message(4, 3000)); // shorter: the first frame's bytes lay past it
    await delay(0);
    const fourth = transport.writes.at(-1)!;
    sentAs(fourth, 4, 3000);
    assert.ok(fourth.bytes.buffer === first.bytes.buffer, "the block came back once written");
    assert.ok(
      new Uint8Array(fourth.bytes.buffer).subarray(fourth.bytes.length).every((b) => b === 0),
      "nothing of an earlier loan past the chunk",
    );
    assert.ok(other.writes[0]!.intact(), "the other session's frame, still being written");
    sentAs(other.writes[0]!, 9);
    fourth.release();
    other.writes[0]!.release();
    await Promise.all([again, otherSend]);
    await end(session, transport);
    await end(otherSession, other);
  });

  await t.step("on an engine's connection, a message up to 16 KiB goes in one write", async () => {
    // Its frame fits a pooled block, so header and payload go together (a second write costs
    // a system call); without a block free, and on a user's transport, the payload follows
    // its header uncopied, as above 4 KiB always.
    for (const writesDone of [true, false]) {
      const transport = holdingTransport({ writesDone });
      const session = new WebSocketSession(transport, { timeout: 1000 });
      const first = message(1, 8180), second = message(2, 6000);
      const sent = [session.send(first), session.send(second)];
      /** The next write, once the one before it was released. */
      const next = async (release = true) => {
        if (release) transport.writes.at(-1)!.release();
        await delay(0);
        return transport.writes.at(-1)!;
      };
      const one = await next(false);
      if (writesDone) {
        assert.equal(one.bytes.length, 4 + 8180, "header and payload in one write");
        sentAs(one, 1, 8180);
      } else {
        assert.deepEqual([...one.copy], [0x82, 126, 8180 >> 8, 8180 & 0xff], "the header alone");
        assert.ok((await next()).bytes === first, "then the payload, uncopied");
      }
      // The second frame was encoded while the first's block was out, or on a user's transport.
      assert.deepEqual([...(await next()).copy], [0x82, 126, 6000 >> 8, 6000 & 0xff]);
      const payload = await next();
      assert.ok(payload.bytes === second, "the payload itself");
      payload.release();
      await Promise.all(sent);
      await end(session, transport);
    }
  });

  await t.step("never reuses the buffer of a write that failed while it may go on", async () => {
    // A TLS connection closed under a write rejects it at once (the server's deferClose)
    // while Deno still writes the bytes: the block must not go back to the pool.
    const transport = holdingTransport({ writesDone: true });
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const failed = session.send(message(1));
    await delay(0);
    const held = transport.writes[0]!;
    assert.ok(held.bytes.buffer.byteLength > held.bytes.length, "a lent block");
    held.fail(new Deno.errors.Interrupted("operation canceled"));
    await failed.catch(() => {});
    const other = holdingTransport({ writesDone: true });
    const otherSession = new WebSocketSession(other, { timeout: 1000 });
    const sent = otherSession.send(message(2));
    await delay(0);
    assert.ok(other.writes[0]!.bytes.buffer !== held.bytes.buffer, "the failed write's block");
    assert.ok(held.intact(), "the bytes that may still be going out");
    other.writes[0]!.release();
    await sent;
    await end(session, transport);
    await end(otherSession, other);
  });

  await t.step("a direct transport no engine made gets buffers of its own", async () => {
    // It may queue the view it was given and resolve at once (as an in-memory pipe does): a
    // pooled block written into again would change what it queued.
    const transport = holdingTransport();
    const session = new WebSocketSession(transport, { timeout: 1000 });
    const sent = [1, 2].map((fill) => session.send(message(fill)));
    await delay(0);
    const first = transport.writes[0]!;
    assert.equal(first.bytes.buffer.byteLength, first.bytes.length, "a buffer of its own");
    first.release();
    await delay(0);
    const second = transport.writes[1]!;
    assert.ok(second.bytes.buffer !== first.bytes.buffer);
    assert.ok(first.intact(), "what the transport may still hold");
    sentAs(first, 1);
    second.release();
    await Promise.all(sent);
    await end(session, transport);
  });
});
