// Copyright 2026 the wirestream authors. MIT license.
// A WebSocketSession flooded with unsolicited pongs over a real socket by npm:ws, a peer we did
// not write: memory stays bounded, and the session stays healthy (its pings are still sent and
// answered, messages still echo).
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { wsClient } from "../_util/clients.ts";
import { echo, ourServer } from "../_util/ws.ts";

const MiB = 1 << 20;
// 400,000 empty pongs: 2.4 MB on the wire (a 6-byte masked header each), sent in bursts of
// 50,000 that reach the server's socket together, as a remote peer's would. A session that held
// each one as a Frame, a copy and a queued stream write would hold hundreds of MB.
const FLOOD = 400_000;
const BATCH = 50_000;
const HEAP_BOUND = 64 * MiB;

/**
 * Floods a session that has `pingInterval` (or none) with unsolicited pongs from ws, in bursts
 * that wait for ws's socket to drain (so ws's own buffers stay small), and checks the heap
 * during the flood and the session's health after it.
 */
async function flood(pingInterval: number | null): Promise<void> {
  const server = ourServer({ pingInterval, timeout: 1000 }, echo);
  const client = wsClient(server.url);
  let peak = 0;
  const base = Deno.memoryUsage().heapUsed;
  const sample = () => (peak = Math.max(peak, Deno.memoryUsage().heapUsed - base));
  const sampler = setInterval(sample, 10);
  try {
    assert.equal(await within(client.opened, 5000, "ws to open"), true);
    const session = await server.accepted.next();
    let pings = 0;
    client.ws.on("ping", () => pings++);
    const start = performance.now();
    for (let sent = 0; sent < FLOOD && !session.signal.aborted; sent += BATCH) {
      for (let i = 0; i < BATCH; i++) client.ws.pong();
      // Yield to the server at least once a batch, and wait while ws cannot write.
      do await new Promise((r) => setTimeout(r, 0)); while (client.ws.bufferedAmount > 0);
      sample();
    }
    // A message sent after the flood comes back only once the session read every pong.
    client.ws.send("after the flood");
    // Queue.next's own limit, not within(): next() gives up after its default 10 s, which a
    // loaded machine reached before the 30 s meant here.
    const echoed = await client.messages.next("the echo after the flood", 30_000);
    const seconds = (performance.now() - start) / 1000;
    sample();
    assert.equal(echoed.data.toString(), "after the flood");
    assert.equal(session.signal.aborted, false, `the session ended: ${session.signal.reason}`);
    assert.ok(
      peak < HEAP_BOUND,
      `the heap grew by ${(peak / MiB).toFixed(0)} MiB for ${FLOOD} pongs in ${
        seconds.toFixed(1)
      } s`,
    );
    if (pingInterval !== null) {
      // The pinger pinged through the flood and every ping was answered within `timeout` (or
      // the session would have ended with 1011), and it goes on pinging.
      assert.ok(pings > 0, `no ping in the ${seconds.toFixed(1)} s of the flood`);
      const nextPing = () => new Promise((resolve) => client.ws.once("ping", resolve));
      await within(nextPing(), 5000, "a ping after the flood");
      await within(nextPing(), 5000, "the ping after that");
    }
    client.ws.close(1000);
    assert.equal((await within(session.closed, 5000, "the session's close")).code, 1000);
  } finally {
    clearInterval(sampler);
    client.ws.terminate();
    await server.close();
  }
}

Deno.test("WebSocketSession under a flood of unsolicited pongs", async (t) => {
  await t.step("without a pinger: memory stays bounded and messages still echo", () => flood(null));

  // Before the pinger took pongs by a plain call, the session wrote each one to the pinger's
  // writable (a Frame, a copy and a stream write, whether a ping was outstanding or not), and
  // nothing bounded that queue: here the heap grew by about 270 MiB (2 to 4 MiB without it).
  await t.step(
    "with pingInterval: memory stays bounded, pings go on and messages still echo",
    () => flood(50),
  );
});
