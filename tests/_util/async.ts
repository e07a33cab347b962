// Copyright 2026 the wirestream authors. MIT license.
// Waiting in tests: delays, deadlines, promises resolved from outside.

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` when `promise` does not settle within `ms`; clears its timer. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise with its resolve function. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

/** A promise to resolve from outside. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A body that never ends, as server-sent events: an event every `ms` milliseconds until it is
 * cancelled (its timer is cleared then). `cancelled` resolves on that cancel.
 */
export function endlessEvents(
  ms = 100,
): { body: ReadableStream<Uint8Array>; cancelled: Promise<void> } {
  const cancelled = deferred<void>();
  const event = new TextEncoder().encode("data: tick\n\n");
  let timer: ReturnType<typeof setInterval> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(event);
      timer = setInterval(() => controller.enqueue(event), ms);
    },
    cancel() {
      clearInterval(timer);
      cancelled.resolve();
    },
  });
  return { body, cancelled: cancelled.promise };
}

/** Reads `body` to its end: "done" when it ends, "error" when the read fails. */
export async function drain(body: ReadableStream<Uint8Array>): Promise<"done" | "error"> {
  const reader = body.getReader();
  try {
    while (!(await reader.read()).done);
    return "done";
  } catch {
    return "error";
  } finally {
    reader.releaseLock();
  }
}

/**
 * Runs `fn` with console.error captured (`fn` sees the calls so far); returns what was logged.
 */
export async function capturingErrors(
  fn: (logged: unknown[][]) => Promise<void>,
): Promise<unknown[][]> {
  const logged: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    await fn(logged);
  } finally {
    console.error = original;
  }
  return logged;
}

/**
 * An AbortSignal whose "abort" listeners are tracked: `listeners` holds those added with
 * `addEventListener` and not removed with `removeEventListener` yet.
 */
export function watchedSignal(): {
  controller: AbortController;
  signal: AbortSignal;
  listeners: Set<unknown>;
} {
  const controller = new AbortController();
  const signal = controller.signal;
  const listeners = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  Object.assign(signal, {
    addEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject,
      options?: boolean | AddEventListenerOptions,
    ): void {
      if (type === "abort") listeners.add(listener);
      add(type, listener, options);
    },
    removeEventListener(
      type: string,
      listener: EventListenerOrEventListenerObject,
      options?: boolean | EventListenerOptions,
    ): void {
      if (type === "abort") listeners.delete(listener);
      remove(type, listener, options);
    },
  });
  return { controller, signal, listeners };
}
