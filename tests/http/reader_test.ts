// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { BufferedReader } from "@wirestream/wirestream";
import { concat, randomBytes, seeded, split } from "../_util/random.ts";

/** Bytes of an ASCII string. */
function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A plain (default-reader) stream of copies of `chunks`, in order; empty ones included. */
function plainStream(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => c.slice()));
}

/** How a byte stream was read: BYOB requests seen, and the cancel reason. */
interface ByteStreamLog {
  byobRequests: number;
  pulls: number;
  cancelReason?: unknown;
}

/**
 * A byte stream of copies of the non-empty `chunks`, one per pull, that logs whether each
 * pull came from a BYOB read (a `byobRequest` with the reader's view).
 */
function byteStream(chunks: readonly Uint8Array[]): [ReadableStream<Uint8Array>, ByteStreamLog] {
  const queue = chunks.filter((c) => c.length > 0).map((c) => c.slice());
  const log: ByteStreamLog = { byobRequests: 0, pulls: 0 };
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      log.pulls++;
      if (controller.byobRequest !== null) log.byobRequests++;
      const next = queue.shift();
      if (next === undefined) {
        controller.close();
        controller.byobRequest?.respond(0);
      } else controller.enqueue(next);
    },
    cancel(reason) {
      log.cancelReason = reason;
    },
  });
  return [stream, log];
}

/** Both kinds of stream over the same chunks. */
const KINDS = {
  plain: (chunks: readonly Uint8Array[]) => plainStream(chunks),
  byte: (chunks: readonly Uint8Array[]) => byteStream(chunks)[0],
};

/**
 * A direct source (read into the caller's buffer, as `Deno.Conn.read`) of copies of `chunks`:
 * each read takes what fits of the next chunk, a turn later, like an op; `views` logs where
 * each read was asked to write.
 */
function directSource(chunks: readonly Uint8Array[]): {
  read(buffer: Uint8Array): Promise<number | null>;
  views: Uint8Array[];
} {
  const queue = chunks.filter((c) => c.length > 0).map((c) => c.slice());
  const views: Uint8Array[] = [];
  return {
    views,
    async read(buffer: Uint8Array): Promise<number | null> {
      views.push(buffer);
      await Promise.resolve();
      const next = queue[0];
      if (next === undefined) return null;
      const n = Math.min(buffer.length, next.length);
      buffer.set(next.subarray(0, n));
      if (n === next.length) queue.shift();
      else queue[0] = next.subarray(n);
      return n;
    },
  };
}

/** The unread bytes of `reader`, copied, without consuming them. */
function unread(reader: BufferedReader): number[] {
  return [...reader.buffer.subarray(reader.start, reader.end)];
}

/** Reads everything left, consuming it. */
async function drain(reader: BufferedReader): Promise<Uint8Array> {
  const parts = [reader.copy(reader.length)];
  while (await reader.fill()) parts.push(reader.copy(reader.length));
  return concat(parts);
}

const CRLF2 = Uint8Array.of(13, 10, 13, 10);

Deno.test("BufferedReader", async (t) => {
  await t.step("refuses a size that is not a positive integer with RangeError", () => {
    for (const size of [0, -1, 1.5, NaN, Infinity]) {
      assert.throws(() => new BufferedReader(plainStream([]), { size }), RangeError, `${size}`);
    }
  });

  await t.step("starts with a buffer of 4 KiB (or `size` if smaller) and locks the stream", () => {
    const stream = plainStream([]);
    assert.equal(new BufferedReader(stream).buffer.length, 4096);
    assert.equal(stream.locked, true);
    assert.equal(new BufferedReader(plainStream([]), { size: 7 }).buffer.length, 7);
  });

  await t.step(
    "grows to `size` when unread bytes fill it or a read fills most of it, and shrinks when reads are small",
    async () => {
      // Unread bytes fill it: a head of 10,000 bytes with no end yet.
      const head = new BufferedReader(plainStream([new Uint8Array(10_000).fill(0x61)]));
      while (head.length < 10_000) assert.ok(await head.fill());
      assert.ok(head.buffer.length >= 10_000 && head.buffer.length <= 65_536);
      const capped = new BufferedReader(plainStream([new Uint8Array(100).fill(0x61)]), {
        size: 50,
      });
      while (await capped.fill());
      assert.equal(capped.length, 50, "never past `size`: full, fill returns false");
      assert.equal(capped.buffer.length, 50);
      // Reads that fill it (a large body read and consumed): the buffer grows between them.
      const sizes: number[] = [];
      const direct = new BufferedReader({
        read(buffer: Uint8Array): Promise<number | null> {
          sizes.push(buffer.length);
          const n = sizes.length <= 4 ? buffer.length : 10; // then small reads
          return Promise.resolve(sizes.length > 14 ? null : n);
        },
      });
      while (await direct.fill()) direct.consume(direct.length);
      // Filled whole: 4 KiB, then 16 KiB, then 64 KiB (the most); the eighth small read in a row
      // sends the reads after it back to 4 KiB.
      assert.deepEqual(sizes, [4096, 16_384, ...Array(10).fill(65_536), 4096, 4096, 4096]);
    },
  );

  await t.step("starts empty: no unread bytes, not done", () => {
    const reader = new BufferedReader(plainStream([]));
    assert.deepEqual([reader.start, reader.end, reader.length, reader.done], [0, 0, 0, false]);
  });

  await t.step("reads a byte stream with a BYOB reader, straight into its buffer", async () => {
    const [stream, log] = byteStream([bytes("abc"), bytes("de")]);
    const reader = new BufferedReader(stream);
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("abc")]);
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("abcde")]);
    assert.equal(log.byobRequests, log.pulls);
    assert(log.byobRequests >= 2);
  });

  await t.step("reads a plain stream with its default reader, copying chunks in", async () => {
    const chunks = [bytes("abc"), bytes("de")];
    const reader = new BufferedReader(plainStream(chunks));
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("abc")]);
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("abcde")]);
    assert.equal(reader.length, 5);
  });

  await t.step("skips the empty chunks of a plain stream", async () => {
    const empty = new Uint8Array(0);
    const reader = new BufferedReader(plainStream([empty, bytes("a"), empty, empty, bytes("b")]));
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("a")]);
    assert.equal(await reader.fill(), true);
    assert.deepEqual(unread(reader), [...bytes("ab")]);
    assert.equal(await reader.fill(), false);
  });

  for (const [kind, streamOf] of Object.entries(KINDS)) {
    await t.step(`fill returns false at the end, and again after (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("xy")]));
      assert.equal(await reader.fill(), true);
      assert.equal(reader.done, false);
      assert.equal(await reader.fill(), false);
      assert.equal(reader.done, true);
      assert.equal(await reader.fill(), false);
      assert.deepEqual(unread(reader), [...bytes("xy")], "the unread bytes stay");
      const empty = new BufferedReader(streamOf([]));
      assert.equal(await empty.fill(), false);
      assert.equal(empty.done, true);
    });

    await t.step(`gives every byte once, in order, for any chunking (${kind} stream)`, async () => {
      for (let seed = 1; seed <= 50; seed++) {
        const random = seeded(seed);
        const data = randomBytes(random, 500);
        const reader = new BufferedReader(streamOf(split(data, random, 40)), { size: 64 });
        const parts: Uint8Array[] = [];
        while (true) {
          const more = await reader.fill();
          if (!more && reader.done) break;
          // Leave some bytes unread now and then, so that they must move; all once full.
          const n = more ? Math.floor(random() * (reader.length + 1)) : reader.length;
          parts.push(random() < 0.5 ? reader.copy(n) : reader.take(n));
        }
        parts.push(reader.copy(reader.length));
        assert.deepEqual(concat(parts), data, `seed ${seed}`);
      }
    });

    await t.step(`consume skips unread bytes (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("abcdef")]));
      await reader.fill();
      reader.consume(2);
      assert.deepEqual([reader.start, reader.length], [2, 4]);
      assert.deepEqual(unread(reader), [...bytes("cdef")]);
      reader.consume(4);
      assert.equal(reader.length, 0);
    });

    await t.step(`copy hands out a copy of the next bytes (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("abcdef")]));
      await reader.fill();
      const copy = reader.copy(4);
      assert.deepEqual(copy, bytes("abcd"));
      assert.notEqual(copy.buffer, reader.buffer.buffer);
      assert.deepEqual(unread(reader), [...bytes("ef")]);
      reader.buffer.fill(0); // the copy does not change with the buffer
      assert.deepEqual(copy, bytes("abcd"));
      assert.deepEqual(reader.copy(0), new Uint8Array(0));
    });

    await t.step(`take hands out a view of the next bytes (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("abcdef")]));
      await reader.fill();
      const view = reader.take(4);
      assert.deepEqual(view, bytes("abcd"));
      assert.equal(view.buffer, reader.buffer.buffer, "a view of the buffer, not a copy");
      assert.equal(view.byteOffset, reader.buffer.byteOffset);
      assert.deepEqual(unread(reader), [...bytes("ef")]);
    });

    await t.step(
      `after take, the next fill moves unread bytes to a fresh buffer (${kind} stream)`,
      async () => {
        const reader = new BufferedReader(streamOf([bytes("abcdef"), bytes("ghij")]), {
          size: 8,
        });
        await reader.fill();
        const before = reader.buffer;
        const view = reader.take(4); // "abcd"
        assert.equal(await reader.fill(), true);
        assert.notEqual(reader.buffer, before);
        assert.notEqual(reader.buffer.buffer, view.buffer);
        assert.equal(reader.start, 0, "the unread bytes moved to the front");
        assert.deepEqual(unread(reader), [...bytes("efghij")]);
        assert.equal(reader.buffer.length, 8);
        assert.deepEqual(view, bytes("abcd"), "the taken view stays intact");
        assert.equal(view.buffer.byteLength, 8, "and its buffer is not detached");
        // Later fills do not touch it either.
        reader.consume(reader.length);
        await drain(reader);
        assert.deepEqual(view, bytes("abcd"));
      },
    );

    await t.step(
      `after take of everything, the next fill still leaves the view intact (${kind} stream)`,
      async () => {
        const reader = new BufferedReader(streamOf([bytes("abcd"), bytes("wxyz")]), { size: 4 });
        await reader.fill();
        const view = reader.take(4);
        assert.equal(await reader.fill(), true);
        assert.deepEqual(unread(reader), [...bytes("wxyz")]);
        assert.deepEqual(view, bytes("abcd"));
      },
    );

    await t.step(
      `fill returns false when the buffer is full of unread bytes (${kind} stream)`,
      async () => {
        const reader = new BufferedReader(streamOf([bytes("abcdef")]), { size: 4 });
        assert.equal(await reader.fill(), true);
        assert.deepEqual(unread(reader), [...bytes("abcd")]);
        assert.equal(await reader.fill(), false);
        assert.equal(reader.done, false, "full is not the end");
        reader.consume(1);
        assert.equal(await reader.fill(), true, "one byte of room: the rest comes in");
        assert.deepEqual(unread(reader), [...bytes("bcde")]);
        assert.equal(reader.start, 0);
        reader.consume(4);
        assert.equal(await reader.fill(), true);
        assert.deepEqual(unread(reader), [...bytes("f")]);
        assert.equal(await reader.fill(), false);
        assert.equal(reader.done, true);
      },
    );

    await t.step(
      `moves unread bytes to the front when the end runs out of room (${kind} stream)`,
      async () => {
        const reader = new BufferedReader(streamOf([bytes("abcdef"), bytes("ghijk")]), { size: 8 });
        await reader.fill();
        const buffer = reader.buffer.length;
        reader.consume(4); // "ef" unread at [4, 6)
        assert.equal(await reader.fill(), true); // "gh" fits at the end
        assert.deepEqual(unread(reader), [...bytes("efgh")]);
        assert.equal(reader.end, 8);
        assert.equal(await reader.fill(), true); // no room at the end: "efgh" moves to 0
        assert.equal(reader.start, 0);
        assert.deepEqual(unread(reader), [...bytes("efghijk")]);
        assert.equal(reader.buffer.length, buffer);
      },
    );

    await t.step(
      `reuses its buffer from the start once all is consumed (${kind} stream)`,
      async () => {
        const reader = new BufferedReader(streamOf([bytes("abcdef"), bytes("gh")]), { size: 8 });
        await reader.fill();
        reader.consume(6);
        assert.equal(await reader.fill(), true);
        assert.deepEqual([reader.start, reader.end], [0, 2]);
        assert.deepEqual(unread(reader), [...bytes("gh")]);
      },
    );

    await t.step(`indexOf finds bytes among the unread ones (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("xxHEAD\r\n\r\nbody\r\n\r\n")]));
      await reader.fill();
      reader.consume(2); // offsets are relative to start
      assert.equal(reader.indexOf(CRLF2), 4);
      assert.equal(reader.indexOf(CRLF2, 4), 4);
      assert.equal(reader.indexOf(CRLF2, 5), 12, "from skips the first match");
      assert.equal(reader.indexOf(CRLF2, 13), -1);
      assert.equal(reader.indexOf(bytes("H")), 0);
      assert.equal(reader.indexOf(bytes("xx")), -1, "consumed bytes are not searched");
      assert.equal(reader.indexOf(bytes("\r\n\r\n!")), -1, "a match cut by the end");
      assert.equal(reader.indexOf(bytes("z")), -1, "absent");
      assert.equal(reader.indexOf(bytes("body")), 8);
    });

    await t.step(`indexOf does not look past the unread bytes (${kind} stream)`, async () => {
      const reader = new BufferedReader(streamOf([bytes("ab\r\n"), bytes("\r\n")]), { size: 8 });
      await reader.fill();
      reader.consume(4);
      assert.equal(await reader.fill(), true);
      reader.buffer.set(bytes("\r\n"), reader.end); // stale bytes after end must not match
      assert.equal(reader.indexOf(CRLF2), -1);
      assert.equal(reader.indexOf(bytes("\r\n")), 0);
    });

    await t.step(
      `releaseLock unlocks the stream and keeps the unread bytes (${kind} stream)`,
      async () => {
        const stream = streamOf([bytes("abc"), bytes("def")]);
        const reader = new BufferedReader(stream);
        await reader.fill();
        reader.consume(1);
        reader.releaseLock();
        assert.equal(stream.locked, false);
        assert.deepEqual(unread(reader), [...bytes("bc")]);
        const rest = concat(await Array.fromAsync(stream));
        assert.deepEqual(rest, bytes("def"), "the stream goes on from where the reader stopped");
      },
    );

    await t.step(`cancel never throws (${kind} stream)`, async () => {
      const ended = new BufferedReader(streamOf([]));
      await drain(ended);
      await ended.cancel("closed already");
      const released = new BufferedReader(streamOf([bytes("a")]));
      released.releaseLock();
      await released.cancel("no lock");
    });
  }

  await t.step("a direct source: every byte once, in order, for any chunking", async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const random = seeded(seed);
      const data = randomBytes(random, 500);
      const reader = new BufferedReader(directSource(split(data, random, 40)), { size: 64 });
      const parts: Uint8Array[] = [];
      while (true) {
        const more = await reader.fill();
        if (!more && reader.done) break;
        const n = more ? Math.floor(random() * (reader.length + 1)) : reader.length;
        parts.push(random() < 0.5 ? reader.copy(n) : reader.take(n));
      }
      parts.push(reader.copy(reader.length));
      assert.deepEqual(concat(parts), data, `seed ${seed}`);
    }
  });

  await t.step(
    "a direct source reads into the free space: after the unread bytes, in a fresh buffer after take",
    async () => {
      const source = directSource([bytes("abcdef"), bytes("gh"), bytes("ijkl"), bytes("mn")]);
      const reader = new BufferedReader(source, { size: 8 });
      assert.equal(await reader.fill(), true); // "abcdef" at [0, 6)
      reader.consume(2);
      assert.equal(await reader.fill(), true); // "gh" at [6, 8)
      assert.deepEqual(unread(reader), [...bytes("cdefgh")]);
      assert.deepEqual(source.views.map((v) => [v.byteOffset, v.length]), [[0, 8], [6, 2]]);
      const view = reader.take(6);
      assert.equal(await reader.fill(), true); // a fresh buffer: the view keeps its bytes
      assert.deepEqual(view, bytes("cdefgh"));
      assert.notEqual(source.views[2]!.buffer, view.buffer);
      assert.deepEqual(unread(reader), [...bytes("ijkl")]);
      reader.consume(4);
      assert.equal(await reader.fill(), true); // all consumed: the same space again
      assert.equal(source.views[3], source.views[2], "one view of the free space, reused");
      assert.deepEqual(unread(reader), [...bytes("mn")]);
      assert.equal(await reader.fill(), false);
      assert.equal(reader.done, true);
      assert.equal(await reader.fill(), false);
      assert.equal(source.views.length, 5, "no read after the end");
    },
  );

  await t.step("a direct source: one read at a time, false when full, errors reject", async () => {
    const source = directSource([bytes("abcdef")]);
    const reader = new BufferedReader(source, { size: 4 });
    const first = reader.fill();
    assert.equal(reader.fill(), first, "a fill under way is returned again");
    assert.equal(await first, true);
    assert.equal(await reader.fill(), false, "full of unread bytes");
    assert.equal(reader.done, false);
    assert.equal(source.views.length, 1);
    const failing = new BufferedReader({
      read: () => {
        throw new Error("gone");
      },
    });
    await assert.rejects(failing.fill(), /gone/);
    const rejecting = new BufferedReader({ read: () => Promise.reject(new Error("reset")) });
    await assert.rejects(rejecting.fill(), /reset/);
    await assert.rejects(rejecting.fill(), /reset/, "a failed fill is not kept");
  });

  await t.step(
    "rest() is exactly the unread bytes; pendingRest() of a failed read is empty",
    async () => {
      // What an upgrade hands to the WebSocket session: not one byte more.
      const reader = new BufferedReader({
        read: (buffer: Uint8Array) => (buffer.set([1, 2, 3]), Promise.resolve(3)),
      });
      await reader.fill();
      reader.consume(1);
      assert.deepEqual([...reader.rest()], [2, 3]);
      const failing = new BufferedReader({ read: () => Promise.reject(new Error("reset")) });
      failing.fill().catch(() => {});
      assert.deepEqual([...(await failing.pendingRest())!], []);
    },
  );

  await t.step(
    "discard() lets go of the buffer; a read under way hands its bytes to pendingRest() first",
    async () => {
      const reader = new BufferedReader(plainStream([bytes("ab")]), { size: 1024 });
      assert.ok(await reader.fill());
      reader.discard();
      assert.equal(reader.buffer.length, 0);
      assert.equal(reader.length, 0, "the unread bytes are dropped");
      assert.equal(await reader.fill(), false, "and nothing more is read");
      // A direct read cannot be cancelled: the buffer it writes into is kept until it ends.
      let deliver = (_n: number) => {};
      let into: Uint8Array | null = null;
      const direct = new BufferedReader({
        read: (buffer: Uint8Array) =>
          new Promise<number>((resolve) => {
            into = buffer;
            deliver = resolve;
          }),
      }, { size: 1024 });
      const filling = direct.fill();
      const pending = direct.pendingRest()!;
      direct.discard();
      assert.equal(direct.buffer.length, 1024, "kept while the read is under way");
      into!.set([7, 8]);
      deliver(2);
      assert.equal(await filling, true);
      assert.deepEqual([...await pending], [7, 8], "the read's bytes reach pendingRest()");
      assert.equal(direct.buffer.length, 0, "then the buffer goes");
      assert.equal(await direct.fill(), false);
    },
  );

  await t.step(
    "once a read failed, every fill fails with its error, for every source",
    async () => {
      const failure = new Error("reset");
      let reads = 0;
      const sources: [string, ConstructorParameters<typeof BufferedReader>[0]][] = [
        ["plain", new ReadableStream<Uint8Array>({ pull: (c) => c.error(failure) })],
        ["byte", new ReadableStream({ type: "bytes", pull: (c) => c.error(failure) })],
        // A direct source that would give bytes after failing: the failure stands.
        ["direct", { read: () => reads++ === 0 ? Promise.reject(failure) : Promise.resolve(3) }],
      ];
      for (const [kind, source] of sources) {
        const reader = new BufferedReader(source, { size: 16 });
        for (let i = 0; i < 3; i++) {
          await assert.rejects(reader.fill(), (e) => e === failure, `${kind}, fill ${i}`);
        }
        assert.equal(reader.length, 0, kind);
      }
      assert.equal(reads, 1, "the direct source was not read again");
    },
  );

  await t.step("a plain chunk larger than the free space comes over several fills", async () => {
    const reader = new BufferedReader(plainStream([bytes("0123456789"), bytes("AB")]), { size: 4 });
    const seen: string[] = [];
    while (await reader.fill()) {
      seen.push(new TextDecoder().decode(reader.copy(reader.length)));
    }
    assert.deepEqual(seen, ["0123", "4567", "89", "AB"]);
    assert.equal(reader.done, true);
  });

  await t.step("a byte-stream chunk larger than the free space stays in the stream", async () => {
    const [stream, log] = byteStream([bytes("0123456789")]);
    const reader = new BufferedReader(stream, { size: 4 });
    const seen: string[] = [];
    while (await reader.fill()) {
      seen.push(new TextDecoder().decode(reader.copy(reader.length)));
    }
    assert.deepEqual(seen, ["0123", "4567", "89"]);
    assert.equal(log.byobRequests, log.pulls);
  });

  await t.step("releaseLock leaves a byte-stream chunk's rest readable in the stream", async () => {
    const [stream] = byteStream([bytes("0123456789")]);
    const reader = new BufferedReader(stream, { size: 4 });
    await reader.fill();
    const held = reader.copy(reader.length);
    reader.releaseLock();
    assert.deepEqual(concat([held, ...await Array.fromAsync(stream)]), bytes("0123456789"));
  });

  await t.step(
    "rest() then releaseLock loses no bytes, even the part of a chunk that did not fit",
    async () => {
      // A plain chunk larger than the free space is kept aside and delivered over later
      // fills; rest() hands it out with the unread bytes, so an upgrade (pipeline.ts,
      // client.ts) passes every byte on.
      const stream = plainStream([bytes("0123456789"), bytes("AB")]);
      const reader = new BufferedReader(stream, { size: 4 });
      await reader.fill();
      const held = reader.rest();
      assert.equal(reader.length, 0);
      reader.releaseLock();
      const rest = await Array.fromAsync(stream);
      assert.deepEqual(
        new TextDecoder().decode(concat([held, ...rest])),
        "0123456789AB",
        "held by the reader, then the stream",
      );
    },
  );

  await t.step("cancel cancels the stream with the reason", async () => {
    const [stream, log] = byteStream([bytes("abc")]);
    const reader = new BufferedReader(stream);
    await reader.fill();
    const reason = new Error("gone");
    await reader.cancel(reason);
    assert.equal(log.cancelReason, reason);
    let plainReason: unknown;
    const plain = new ReadableStream<Uint8Array>({
      cancel(r) {
        plainReason = r;
      },
    });
    await new BufferedReader(plain).cancel(reason);
    assert.equal(plainReason, reason);
  });

  await t.step("cancel never throws on an errored stream", async () => {
    const error = new Error("broken");
    const byte = new ReadableStream({ type: "bytes", start: (c) => c.error(error) });
    await new BufferedReader(byte).cancel("why");
    const plain = new ReadableStream<Uint8Array>({ start: (c) => c.error(error) });
    await new BufferedReader(plain).cancel("why");
  });

  await t.step("fill rejects with the stream's error", async () => {
    const error = new Error("reset");
    let sent = false;
    const plain = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent) c.error(error);
        else c.enqueue(bytes("a"));
        sent = true;
      },
    });
    const reader = new BufferedReader(plain);
    assert.equal(await reader.fill(), true);
    await assert.rejects(reader.fill(), error);
    const bytesStream = new ReadableStream({ type: "bytes", pull: (c) => c.error(error) });
    await assert.rejects(new BufferedReader(bytesStream).fill(), error);
  });
});
