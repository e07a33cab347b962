// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `pinger` and `ponger` as `TransformStream`s.
 *
 * | Ktor | wirestream |
 * |---|---|
 * | `pinger(outgoing, period, timeout)`: a coroutine sending pings to `outgoing` and closing it with `INTERNAL_ERROR` ("Ping timeout") | `pinger({ period, timeout, signal })`: pongs in, pings out, then a close frame 1011 `"ping timeout"` |
 * | `ponger(outgoing)`: a channel of pings answered on `outgoing` | `ponger()`: pings in, pongs out |
 * | the coroutine scope that cancels them | `signal` |
 *
 * @module
 */

import { Frame, Opcode } from "./frame.ts";
import { PingLoop } from "./_ping_loop.ts";

/** Options of {@linkcode pinger}. */
export interface PingerOptions {
  /**
   * The time between a pong (or the start) and the next ping, in milliseconds; at least 1,
   * or `Infinity` for a pinger that never pings.
   */
  period: number;
  /**
   * How long to wait for the pong that matches a ping, in milliseconds, before giving up;
   * `Infinity` waits forever.
   */
  timeout: number;
  /** Stops the pinger: its readable closes without a close frame. */
  signal?: AbortSignal;
  /**
   * The close code of the close frame sent on a timeout (1011 like Ktor's `INTERNAL_ERROR`:
   * the peer did not fail, the connection did).
   *
   * @default {1011}
   */
  closeCode?: number;
}

/**
 * Ktor's `pinger`: a `TransformStream` whose writable takes the pongs received and whose
 * readable emits a ping `period` milliseconds after the start and after each answered ping.
 * Each ping carries a payload of its own (`"[ping <n> <random>]"`); only a pong with the same
 * payload answers it, others are ignored. When no answer comes within `timeout` (a timer per
 * ping, cleared when the pong comes or `signal` aborts), the readable emits a close frame
 * (code `closeCode`, reason `"ping timeout"`) and ends.
 *
 * Backpressure: a ping that is due while the readable's queue is full is skipped, not queued.
 * The readable also ends, without a close frame, when `signal` aborts, when the writable
 * closes, or when the readable is cancelled. When `signal` aborts (or after the close frame)
 * the stream is terminated: its writable errors with a `TypeError`, so a `pipeTo` into it
 * rejects, as for any terminated `TransformStream`.
 *
 * @param options The period, the timeout and a stop signal.
 * @returns The stream: pongs in, pings and the final close frame out.
 * @throws {RangeError} When `period` is below 1 ms or `timeout` negative, or either is over
 * 2^31 − 1 ms and not `Infinity` (`Infinity` means never); or when `closeCode` is not a code
 * a close frame may carry (RFC 6455 §7.4, as `Frame.close` checks it).
 *
 * @example A ping answered, then a timeout
 * ```ts
 * import { Frame, pinger } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const { readable, writable } = pinger({ period: 5, timeout: 20 });
 * const reader = readable.getReader();
 * const writer = writable.getWriter();
 * const ping = (await reader.read()).value!;
 * assert.equal(ping.opcode, 0x9);
 * await writer.write(Frame.pong(ping.payload)); // answered: the pinger waits another period
 * assert.equal((await reader.read()).value!.opcode, 0x9); // unanswered this time
 * const close = (await reader.read()).value!;
 * assert.deepEqual([close.opcode, close.payload[0]! << 8 | close.payload[1]!], [0x8, 1011]);
 * assert.equal((await reader.read()).done, true);
 * ```
 */
export function pinger(options: PingerOptions): TransformStream<Frame, Frame> {
  const closeFrame = Frame.close(options.closeCode ?? 1011, "ping timeout");
  let loop!: PingLoop;
  return new TransformStream<Frame, Frame>(
    {
      start(controller) {
        loop = new PingLoop(options, {
          // Nobody is reading: skip this tick.
          ping: (frame) => (controller.desiredSize ?? 0) > 0 && (controller.enqueue(frame), true),
          timeout: () => controller.enqueue(closeFrame),
          end: () => {
            try {
              controller.terminate();
            } catch {
              // The stream already ended.
            }
          },
        });
      },
      transform(frame) {
        if (frame.opcode === Opcode.Pong) loop.pong(frame.payload);
      },
      flush() {
        loop.stop();
      },
      cancel() {
        loop.stop();
      },
    },
    undefined,
    { highWaterMark: 1 },
  ); // one ping may wait unread; a second is skipped
}
/**
 * Ktor's `ponger`: a `TransformStream` that answers each ping with a pong carrying a copy of
 * the same payload (RFC 6455 §5.5.3). Other frames are dropped.
 *
 * @returns The stream: pings in, pongs out.
 *
 * @example Answering a ping
 * ```ts
 * import { Frame, ponger } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const pongs = await Array.fromAsync(
 *   ReadableStream.from([Frame.ping(Uint8Array.of(7)), Frame.text("not a ping")]).pipeThrough(ponger()),
 * );
 * assert.deepEqual(pongs.map((f) => [f.opcode, [...f.payload]]), [[0xa, [7]]]);
 * ```
 */
export function ponger(): TransformStream<Frame, Frame> {
  return new TransformStream<Frame, Frame>({
    transform(frame, controller) {
      if (frame.opcode === Opcode.Ping) controller.enqueue(Frame.pong(frame.payload.slice()));
    },
  });
}
