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

import { checkDuration } from "../_options.ts";
import { Frame, Opcode } from "./frame.ts";

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

const encoder = new TextEncoder();

/** Resolves after `ms`, or early when `signal` aborts; clears its timer either way. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = ms === Infinity ? undefined : setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Ktor's `pinger`: a `TransformStream` whose writable takes the pongs received and whose
 * readable emits a ping `period` milliseconds after the start and after each answered ping.
 * Each ping carries a payload of its own (`"[ping <n> <random>]"`); only a pong with the same
 * payload answers it, others are ignored. When no answer comes within `timeout` (an
 * `AbortSignal.timeout` joined by `AbortSignal.any` with `signal`), the readable emits a close
 * frame (code `closeCode`, reason `"ping timeout"`) and ends.
 *
 * Backpressure: a ping that is due while the readable's queue is full is skipped, not queued.
 * The readable also ends, without a close frame, when `signal` aborts, when the writable
 * closes, or when the readable is cancelled.
 *
 * @param options The period, the timeout and a stop signal.
 * @returns The stream: pongs in, pings and the final close frame out.
 * @throws {RangeError} When `period` is below 1 ms or `timeout` negative, or either is over
 * 2^31 − 1 ms and not `Infinity` (`Infinity` means never).
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

/** Where a {@linkcode PingLoop} sends its pings and says that it ended. */
export interface PingSink {
  /** Sends a ping; returns false when it could not go (the tick is skipped). */
  ping(frame: Frame): boolean;
  /** The pong of the last ping did not come within the timeout; `end` follows. */
  timeout(): void;
  /** The loop ended: after a timeout, or when it was stopped by its signal (not by stop()). */
  end(): void;
}

/**
 * The pinger's machine, without streams: a ping every `period`, and a pong taken by a plain
 * call, compared at once (nothing is queued or copied per pong, so a flood of unsolicited
 * pongs costs a comparison each). {@linkcode pinger} wraps it; sessions call it directly.
 * Internal.
 */
export class PingLoop {
  readonly #period: number;
  readonly #timeout: number;
  readonly #stop = new AbortController();
  readonly #lifetime: AbortSignal;
  readonly #sink: PingSink;
  /** The payload of the ping waiting for its pong, or null. */
  #expected: Uint8Array | null = null;
  /** Settles the wait for the current pong. */
  #answered: (() => void) | null = null;
  #count = 0;

  /**
   * Checks the options and starts pinging.
   *
   * @throws {RangeError} When `period` or `timeout` is out of range.
   */
  constructor(options: PingerOptions, sink: PingSink) {
    this.#period = checkDuration("period", options.period, 1);
    this.#timeout = checkDuration("timeout", options.timeout);
    this.#sink = sink;
    this.#lifetime = options.signal
      ? AbortSignal.any([options.signal, this.#stop.signal])
      : this.#stop.signal;
    this.#run();
  }

  /** Takes a pong's payload; it counts only when it matches the ping waiting for it. */
  pong(payload: Uint8Array): void {
    if (this.#expected !== null && sameBytes(payload, this.#expected)) this.#answered?.();
  }

  /** Stops pinging, without a close frame. */
  stop(): void {
    this.#stop.abort();
  }

  async #run(): Promise<void> {
    const lifetime = this.#lifetime;
    while (true) {
      await sleep(this.#period, lifetime);
      if (lifetime.aborted) break;
      const nonce = crypto.getRandomValues(new Uint8Array(4)).reduce(
        (s, b) => s + b.toString(16).padStart(2, "0"),
        "",
      );
      const payload = encoder.encode(`[ping ${++this.#count} ${nonce}]`);
      this.#expected = payload;
      if (!this.#sink.ping(Frame.ping(payload))) {
        this.#expected = null;
        continue;
      }
      const deadline = this.#timeout === Infinity
        ? lifetime
        : AbortSignal.any([lifetime, AbortSignal.timeout(this.#timeout)]);
      // Wait for the matching pong or the deadline, whichever comes first.
      const ponged = await new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => {
          deadline.removeEventListener("abort", late);
          this.#answered = null;
          this.#expected = null;
          resolve(ok);
        };
        const late = () => done(false);
        this.#answered = () => done(true);
        if (deadline.aborted) late();
        else deadline.addEventListener("abort", late);
      });
      if (lifetime.aborted) break;
      if (!ponged) {
        this.#sink.timeout();
        break;
      }
    }
    if (!this.#stop.signal.aborted) {
      this.#stop.abort();
      this.#sink.end();
    }
  }
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
