// Copyright 2026 the wirestream authors. MIT license.
// The pinger's machine without streams: pinger() (ping.ts) wraps it as a TransformStream, and
// WebSocketSession drives it directly, taking each pong by a plain call.

import { checkDuration } from "../_options.ts";
import { Frame } from "./frame.ts";
import type { PingerOptions } from "./ping.ts";

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
 * pongs costs a comparison each). `pinger` wraps it; sessions call it directly.
 */
export class PingLoop {
  readonly #period: number;
  readonly #timeout: number;
  /** Aborts when the loop ends, for whatever reason: what its waits listen to. */
  readonly #stop = new AbortController();
  /** Whether stop() was called (the sink is then not told of the end). */
  #stopped = false;
  readonly #signal: AbortSignal | undefined;
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
    // A listener on `signal`, removed when the loop ends, rather than AbortSignal.any: Deno
    // keeps a signal made so for as long as its sources live, and with it the loop and its
    // stream (7.8 kB per pinger stopped, measured, for an application's long-lived signal).
    const signal = this.#signal = options.signal;
    if (signal?.aborted) this.#stop.abort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#run();
  }

  readonly #onAbort = (): void => this.#stop.abort();

  /** Takes a pong's payload; it counts only when it matches the ping waiting for it. */
  pong(payload: Uint8Array): void {
    if (this.#expected !== null && sameBytes(payload, this.#expected)) this.#answered?.();
  }

  /** Stops pinging, without a close frame. */
  stop(): void {
    this.#stopped = true;
    this.#stop.abort();
  }

  async #run(): Promise<void> {
    const lifetime = this.#stop.signal;
    while (true) {
      await sleep(this.#period, lifetime);
      if (lifetime.aborted) break;
      const nonce = crypto.getRandomValues(new Uint8Array(4)).reduce(
        (s, b) => s + b.toString(16).padStart(2, "0"),
        "",
      );
      const payload = encoder.encode(`[ping ${++this.#count} ${nonce}]`);
      // Wait for the matching pong, the timeout or the end, whichever comes first; the wait is
      // set up before the ping goes out, as its pong may come back within the send (a ponger
      // piped straight back: Deno's pipeTo writes a chunk inside the enqueue that made it). A
      // timer and a listener, both removed: Deno keeps a signal made with AbortSignal.any for
      // as long as its sources live, so a deadline signal per ping held about 360 bytes per
      // ping for the session's whole life (71 MB after 200,000 pings).
      this.#expected = payload;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settle!: (ok: boolean) => void;
      const answer = new Promise<boolean>((resolve) => settle = resolve);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        lifetime.removeEventListener("abort", late);
        this.#answered = null;
        this.#expected = null;
        settle(ok);
      };
      const late = () => done(false);
      this.#answered = () => done(true);
      if (lifetime.aborted) late();
      else {
        lifetime.addEventListener("abort", late);
        if (this.#timeout !== Infinity) timer = setTimeout(late, this.#timeout);
      }
      if (!lifetime.aborted && !this.#sink.ping(Frame.ping(payload))) {
        late(); // not sent: nothing to wait for
        continue;
      }
      const ponged = await answer;
      if (lifetime.aborted) break;
      if (!ponged) {
        this.#sink.timeout();
        break;
      }
    }
    this.#signal?.removeEventListener("abort", this.#onAbort);
    if (!this.#stopped) {
      this.#stopped = true;
      this.#stop.abort();
      this.#sink.end();
    }
  }
}
