// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  Frame,
  Opcode,
  pinger,
  type PingerOptions,
  ponger,
  readClosePayload,
} from "@wirestream/wirestream";
import { delay } from "../_util/async.ts";
import { retainedBytes } from "../_util/gc.ts";

const text = new TextDecoder();

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A pinger with a reader and a writer on its two sides. */
function open(options: PingerOptions) {
  const { readable, writable } = pinger(options);
  return { reader: readable.getReader(), writer: writable.getWriter() };
}

/** Reads the next frame, failing if the readable ended. */
async function next(reader: ReadableStreamDefaultReader<Frame>): Promise<Frame> {
  const { done, value } = await reader.read();
  assert.equal(done, false, "the readable ended");
  return value!;
}

/** Asserts the readable has ended. */
async function ended(reader: ReadableStreamDefaultReader<Frame>): Promise<void> {
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
}

/** The ping counter of a pinger's payload (`[ping <n> <nonce>]`). */
function pingNumber(frame: Frame): number {
  const match = /^\[ping (\d+) [0-9a-f]{8}\]$/.exec(text.decode(frame.payload));
  assert(match !== null, `unexpected ping payload ${JSON.stringify(text.decode(frame.payload))}`);
  return Number(match[1]);
}

// Timers may fire up to a millisecond early after rounding; allow for it in lower bounds.
const SLACK = 2;

Deno.test("pinger", { sanitizeOps: true, sanitizeResources: true }, async (t) => {
  await t.step("emits a ping after period, with a payload of its own", async () => {
    const start = performance.now(); // before the pinger's timer starts
    const { reader, writer } = open({ period: 20, timeout: 1000 });
    const ping = await next(reader);
    assert(performance.now() - start >= 20 - SLACK, "the ping came before period");
    assert.equal(ping.opcode, Opcode.Ping);
    assert.equal(ping.fin, true);
    assert.equal(pingNumber(ping), 1);
    await writer.close();
    await ended(reader);
  });

  await t.step("gives each pinger's pings different payloads", async () => {
    const a = open({ period: 5, timeout: 1000 });
    const b = open({ period: 5, timeout: 1000 });
    const [pa, pb] = await Promise.all([next(a.reader), next(b.reader)]);
    assert.notDeepEqual(pa.payload, pb.payload);
    await Promise.all([a.writer.close(), b.writer.close()]);
    await Promise.all([ended(a.reader), ended(b.reader)]);
  });

  await t.step("ignores a pong with another payload and still times out", async () => {
    const { reader, writer } = open({ period: 5, timeout: 30 });
    const ping = await next(reader);
    const wrong = ping.payload.slice();
    wrong[wrong.length - 1]! ^= 1;
    await writer.write(Frame.pong(wrong));
    await writer.write(Frame.pong()); // empty
    await writer.write(Frame.pong(ping.payload.subarray(1))); // a prefix short
    await writer.write(Frame.ping(ping.payload)); // the right bytes, not a pong
    await writer.write(Frame.binary(ping.payload));
    const close = await next(reader);
    assert.equal(close.opcode, Opcode.Close);
    assert.deepEqual(readClosePayload(close.payload), { code: 1011, reason: "ping timeout" });
    await ended(reader);
    await writer.close().catch(() => {}); // the pinger is done; its writable may be closed
  });

  await t.step("is reset by the matching pong: the next ping comes a period later", async () => {
    const { reader, writer } = open({ period: 25, timeout: 1000 });
    const first = await next(reader);
    const answered = performance.now(); // before the pong restarts the pinger's timer
    await writer.write(Frame.pong(first.payload.slice()));
    const second = await next(reader);
    assert(performance.now() - answered >= 25 - SLACK, "the next ping came before period");
    assert.equal(second.opcode, Opcode.Ping);
    assert.equal(pingNumber(first), 1);
    assert.equal(pingNumber(second), 2);
    assert.notDeepEqual(second.payload, first.payload);
    await writer.write(Frame.pong(second.payload));
    assert.equal(pingNumber(await next(reader)), 3);
    await writer.close();
    await ended(reader);
  });

  await t.step("takes a pong that comes back within the ping's own send", async () => {
    // A ponger piped straight back: Deno's pipeTo writes each ping to the ponger inside the
    // enqueue that made it, so the pong reached the pinger before it waited for one, was
    // dropped, and the pinger closed with 1011 though every ping was answered.
    const controller = new AbortController();
    const ping = pinger({ period: 10, timeout: 50, signal: controller.signal });
    const pong = ponger();
    const seen: number[] = [];
    const tap = new TransformStream<Frame, Frame>({
      transform(frame, out) {
        seen.push(frame.opcode);
        out.enqueue(frame);
      },
    });
    const back = pong.readable.pipeTo(ping.writable).catch(() => {});
    const out = ping.readable.pipeThrough(tap).pipeTo(pong.writable).catch(() => {});
    await delay(200);
    controller.abort();
    await Promise.all([back, out]);
    assert.ok(seen.length >= 5, `${seen.length} pings in 200 ms, one per 10 ms answered`);
    assert.ok(seen.every((opcode) => opcode === Opcode.Ping), `a close among ${seen}`);
  });

  await t.step("does not take a stale pong as the answer to a later ping", async () => {
    const { reader, writer } = open({ period: 5, timeout: 30 });
    const first = await next(reader);
    await writer.write(Frame.pong(first.payload));
    await next(reader); // the second ping
    await writer.write(Frame.pong(first.payload)); // answers the first one again
    const close = await next(reader);
    assert.equal(close.opcode, Opcode.Close);
    await ended(reader);
  });

  await t.step(
    'sends close 1011 "ping timeout" when no pong comes in timeout, then ends',
    async () => {
      const { reader } = open({ period: 5, timeout: 30 });
      const pinged = performance.now(); // before the ping, so before its timeout starts
      await next(reader);
      const close = await next(reader);
      assert(performance.now() - pinged >= 30 - SLACK, "the close came before timeout");
      assert.equal(close.opcode, Opcode.Close);
      assert.deepEqual(readClosePayload(close.payload), { code: 1011, reason: "ping timeout" });
      await ended(reader);
    },
  );

  await t.step("sends its closeCode option on a timeout", async () => {
    const { reader } = open({ period: 5, timeout: 10, closeCode: 4000 });
    await next(reader);
    assert.deepEqual(readClosePayload((await next(reader)).payload), {
      code: 4000,
      reason: "ping timeout",
    });
    await ended(reader);
  });

  await t.step("times out at once with timeout 0", async () => {
    const { reader } = open({ period: 5, timeout: 0 });
    assert.equal((await next(reader)).opcode, Opcode.Ping);
    assert.equal((await next(reader)).opcode, Opcode.Close);
    await ended(reader);
  });

  await t.step("waits for the pong forever with timeout Infinity", async () => {
    const { reader, writer } = open({ period: 5, timeout: Infinity });
    await next(reader);
    const pending = reader.read();
    assert.equal(await settlesWithin(pending, 60), false);
    await writer.close();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  await t.step("ends with no close frame when signal aborts while waiting for a pong", async () => {
    const controller = new AbortController();
    const { reader } = open({ period: 5, timeout: 1000, signal: controller.signal });
    await next(reader);
    controller.abort();
    await ended(reader);
  });

  await t.step("ends with no ping when signal aborts before the first one", async () => {
    const controller = new AbortController();
    const { reader } = open({ period: 10_000, timeout: 1000, signal: controller.signal });
    const pending = reader.read();
    await delay(5);
    controller.abort();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  await t.step("ends at once for a signal aborted already", async () => {
    const { reader } = open({ period: 5, timeout: 1000, signal: AbortSignal.abort() });
    await ended(reader);
  });

  await t.step("ends when its writable closes", async () => {
    const { reader, writer } = open({ period: 10_000, timeout: 1000 });
    await writer.close();
    await ended(reader);
  });

  await t.step("stops its timers when its readable is cancelled", async () => {
    const { reader, writer } = open({ period: 10_000, timeout: 1000 });
    await reader.cancel();
    await assert.rejects(writer.closed);
  });

  await t.step("stops its timers when its writable is aborted", async () => {
    const { reader, writer } = open({ period: 5, timeout: 1000 });
    await next(reader);
    await writer.abort(new Error("gone"));
    await assert.rejects(reader.read());
  });

  await t.step("queues at most one ping while nobody reads (timeout Infinity)", async () => {
    const { reader, writer } = open({ period: 5, timeout: Infinity });
    await delay(60); // twelve periods unread
    const first = await next(reader);
    assert.equal(pingNumber(first), 1);
    const pending = reader.read();
    assert.equal(await settlesWithin(pending, 20), false, "a second ping was queued");
    await writer.write(Frame.pong(first.payload));
    const { value } = await pending;
    assert.equal(pingNumber(value!), 2); // no ping was made while the first sat unread
    await writer.close();
    await ended(reader);
  });

  await t.step("queues one ping then the close frame while nobody reads (timeout 30)", async () => {
    const { readable } = pinger({ period: 5, timeout: 30 });
    await delay(80); // period + timeout, and more, unread
    const frames = await Array.fromAsync(readable);
    assert.deepEqual(frames.map((f) => f.opcode), [Opcode.Ping, Opcode.Close]);
    assert.equal(pingNumber(frames[0]!), 1);
  });

  await t.step("makes no signal per ping that its signal would keep (30 pings)", async () => {
    // Deno keeps every signal made by AbortSignal.any for as long as its sources live: a
    // deadline made so per ping held about 360 bytes per ping for the session's whole life
    // (71 MB after 200,000 pings, measured with --expose-gc).
    const any = AbortSignal.any;
    let made = 0;
    AbortSignal.any = (signals) => (made++, any.call(AbortSignal, signals));
    const controller = new AbortController();
    try {
      const { reader, writer } = open({ period: 1, timeout: 1000, signal: controller.signal });
      for (let i = 1; i <= 30; i++) {
        const ping = await next(reader);
        assert.equal(pingNumber(ping), i);
        await writer.write(Frame.pong(ping.payload));
      }
      controller.abort();
      await ended(reader);
    } finally {
      AbortSignal.any = any;
    }
    assert.ok(made <= 1, `${made} signals made with AbortSignal.any for 30 pings`);
  });

  await t.step("keeps nothing on its signal once it ended (5000 pingers)", async () => {
    // Its lifetime was AbortSignal.any([signal, its own]), which Deno keeps for as long as
    // `signal` lives, and with it the pinger: an application's long-lived signal held 7.8 kB
    // per pinger that had ended.
    const controller = new AbortController();
    const run = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const { reader, writer } = open({
          period: 10_000,
          timeout: 1000,
          signal: controller.signal,
        });
        await writer.close();
        await ended(reader);
      }
    };
    await run(500); // warm up
    const before = retainedBytes();
    await run(5000);
    const grown = retainedBytes() - before;
    controller.abort();
    assert.ok(grown < 5000 * 500, `${grown} bytes held after 5000 pingers ended`);
  });

  await t.step("throws RangeError for a period not above 0 or a negative timeout", () => {
    for (const period of [0, -1, NaN, -Infinity]) {
      assert.throws(() => pinger({ period, timeout: 10 }), RangeError, `period ${period}`);
    }
    for (const timeout of [-1, NaN, -Infinity]) {
      assert.throws(() => pinger({ period: 10, timeout }), RangeError, `timeout ${timeout}`);
    }
  });

  await t.step("throws RangeError for a closeCode that may not be sent", () => {
    for (const closeCode of [1005, 1006, 999, 5000]) {
      assert.throws(
        () => pinger({ period: 10, timeout: 10, closeCode }),
        RangeError,
        `${closeCode}`,
      );
    }
  });
});

Deno.test("ponger", { sanitizeOps: true, sanitizeResources: true }, async (t) => {
  await t.step("answers each ping with a pong of the same payload bytes, in order", async () => {
    const pings = [
      Frame.ping(Uint8Array.of(1, 2, 3)),
      Frame.ping(),
      Frame.ping(new Uint8Array(125).fill(7)),
    ];
    const pongs = await Array.fromAsync(ReadableStream.from(pings).pipeThrough(ponger()));
    assert.deepEqual(pongs.map((f) => f.opcode), [Opcode.Pong, Opcode.Pong, Opcode.Pong]);
    assert.deepEqual(pongs.map((f) => f.payload), pings.map((f) => f.payload));
    assert(pongs.every((f) => f.fin));
  });

  await t.step(
    "copies the payload: changing the ping afterwards leaves the pong alone",
    async () => {
      const wire = Uint8Array.of(0xff, 1, 2, 3, 0xff);
      const ping = Frame.ping(wire.subarray(1, 4)); // a view, as a decoder would hand it on
      const [pong] = await Array.fromAsync(ReadableStream.from([ping]).pipeThrough(ponger()));
      wire.fill(0);
      assert.deepEqual(pong!.payload, Uint8Array.of(1, 2, 3));
      assert.notEqual(pong!.payload.buffer, wire.buffer);
    },
  );

  await t.step("drops every frame that is not a ping", async () => {
    const frames = [
      Frame.text("ping"),
      Frame.binary(Uint8Array.of(9)),
      Frame.continuation(Uint8Array.of(1)),
      Frame.pong(Uint8Array.of(1)),
      Frame.close(1000),
      Frame.ping(Uint8Array.of(5)),
    ];
    const pongs = await Array.fromAsync(ReadableStream.from(frames).pipeThrough(ponger()));
    assert.deepEqual(pongs.map((f) => [f.opcode, [...f.payload]]), [[Opcode.Pong, [5]]]);
  });
});
