// Copyright 2026 the wirestream authors. MIT license.
// In-memory byte duplexes for session tests, and a raw peer built from our own codec.

import {
  type Frame,
  FrameDecoderStream,
  FrameEncoderStream,
  type Role,
  type Transport,
} from "@wirestream/wirestream";
import { markWritesDone } from "../../lib/_slab.ts";

/**
 * The streams of a direct transport (read/write methods, as a `Deno.Conn` has), which a
 * session or the HTTP pipeline must never touch: both getters throw.
 */
const STREAMLESS = {
  get readable(): ReadableStream<Uint8Array> {
    throw new Error("the stream of a direct transport was read");
  },
  get writable(): WritableStream<Uint8Array> {
    throw new Error("the stream of a direct transport was written");
  },
};

/** A direct transport made of `methods` (and state), whose streams throw when touched. */
export function streamless<T extends object>(methods: T): T & Transport {
  return Object.assign(Object.create(STREAMLESS), methods);
}

/** Two transports joined back to back: what one writes, the other reads. */
export function duplexPair(): [Transport, Transport] {
  const ab = new TransformStream<Uint8Array, Uint8Array>();
  const ba = new TransformStream<Uint8Array, Uint8Array>();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}

/**
 * A frame-level peer on a transport: `send` encodes frames for its role, `frames` decodes
 * what the other side sent, `bytes` writes raw bytes, `end` ends its output.
 */
export class RawPeer {
  readonly frames: ReadableStreamDefaultReader<Frame>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #role: Role;

  constructor(transport: Transport, role: Role) {
    this.#role = role;
    this.#writer = transport.writable.getWriter();
    this.frames = transport.readable.pipeThrough(
      new FrameDecoderStream({ role, maxFrameSize: Infinity }),
    )
      .getReader();
  }

  /** Sends frames, encoded for this peer's role. */
  async send(...frames: Frame[]): Promise<void> {
    const chunks = await Array.fromAsync(
      ReadableStream.from(frames).pipeThrough(new FrameEncoderStream({ role: this.#role })),
    );
    for (const chunk of chunks) await this.#writer.write(chunk);
  }

  /** Writes raw bytes. */
  bytes(bytes: Uint8Array): Promise<void> {
    return this.#writer.write(bytes);
  }

  /** Reads the next frame, or null at the end. */
  async next(): Promise<Frame | null> {
    const { done, value } = await this.frames.read();
    return done ? null : value;
  }

  /** Ends this peer's output (the other side reads the end of the stream). */
  async end(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }
}

/**
 * A one-way byte pipe whose readable is a byte stream, read with BYOB like a `Deno.Conn`:
 * what is written is copied in (so writers keep their chunks), and BYOB reads fill the
 * reader's own buffer.
 */
export function bytePipe(): {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
} {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  const readable: ReadableStream<Uint8Array> = new ReadableStream({
    type: "bytes",
    async pull(controller: ReadableByteStreamController) {
      while (queue.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
      const chunk = queue.shift();
      const request = controller.byobRequest;
      if (chunk === undefined) {
        controller.close();
        request?.respond(0);
        return;
      }
      if (request?.view) {
        const view = new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        );
        const n = Math.min(view.length, chunk.length);
        view.set(chunk.subarray(0, n));
        if (n < chunk.length) queue.unshift(chunk.subarray(n));
        request.respond(n);
      } else {
        controller.enqueue(chunk.slice());
      }
    },
  });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      queue.push(chunk.slice());
      wake?.();
    },
    close() {
      ended = true;
      wake?.();
    },
    abort() {
      ended = true;
      wake?.();
    },
  });
  return { readable, writable };
}

/** Two transports joined back to back whose readables are byte streams (BYOB). */
export function byteDuplexPair(): [Transport, Transport] {
  const ab = bytePipe();
  const ba = bytePipe();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}

/**
 * A transport that reads and writes directly, as a `Deno.Conn` does (a session or pipeline
 * then uses no stream; its streams throw if touched): `read` hands out what the peer wrote to
 * `readable`, `write` takes at most `maxWrite` bytes per call (a partial write), settles a turn
 * later like an op, and fails once `failAfter` bytes went. `written` counts the bytes taken.
 */
export function directTransport(
  readable: ReadableStream<Uint8Array>,
  writable: WritableStream<Uint8Array>,
  options: { maxWrite?: number; failAfter?: number } = {},
): Transport & { written: number; closed: boolean } {
  const reader = readable.getReader();
  const writer = writable.getWriter();
  let left: Uint8Array | null = null;
  const transport = streamless({
    written: 0,
    closed: false,
    async read(buffer: Uint8Array): Promise<number | null> {
      if (left === null) {
        const { done, value } = await reader.read();
        if (done) return null;
        left = value;
      }
      const n = Math.min(buffer.length, left.length);
      buffer.set(left.subarray(0, n));
      left = n === left.length ? null : left.subarray(n);
      return n;
    },
    async write(bytes: Uint8Array): Promise<number> {
      await Promise.resolve(); // never synchronous, like an op
      if (transport.closed) throw new Deno.errors.BadResource("closed");
      const n = Math.min(bytes.length, options.maxWrite ?? Infinity);
      if (transport.written + n > (options.failAfter ?? Infinity)) {
        throw new Deno.errors.ConnectionReset("the peer reset the connection");
      }
      transport.written += n;
      await writer.write(bytes.slice(0, n));
      return n;
    },
    close(): void {
      if (transport.closed) return;
      transport.closed = true;
      writer.close().catch(() => {});
      reader.cancel().catch(() => {});
    },
  });
  return transport;
}

/** A write that {@linkcode holdingTransport} holds until the test lets it go. */
export interface HeldWrite {
  /** The bytes the write was given. */
  bytes: Uint8Array;
  /** A copy of them, taken when the write began. */
  copy: Uint8Array;
  /** Whether `bytes` still read as they did when the write began. */
  intact(): boolean;
  /** Resolves the write with `n` bytes written (all of them by default). */
  release(n?: number): void;
  /** Rejects the write with `error`, as a closed connection does while its write goes on. */
  fail(error: unknown): void;
}

/**
 * A direct transport (read/write methods, as a `Deno.Conn` has) whose writes wait until the
 * test releases them: to see what a writer does with bytes whose write is still under way.
 * It reads what `feed()` gives it, then waits for more until `end()` or `close()`. With
 * `writesDone`, it is marked as a connection an engine made (lib/_slab.ts): one whose write
 * holds nothing once it resolved, to which large chunks are lent pooled buffers.
 */
export function holdingTransport(options: { writesDone?: boolean } = {}): Transport & {
  writes: HeldWrite[];
  feed(bytes: Uint8Array): void;
  end(): void;
} {
  const writes: HeldWrite[] = [];
  let left = new Uint8Array(0);
  let reading: { buffer: Uint8Array; resolve: (n: number | null) => void } | null = null;
  let ended = false;
  const end = () => {
    ended = true;
    reading?.resolve(null);
    reading = null;
  };
  const take = (buffer: Uint8Array) => {
    const n = Math.min(buffer.length, left.length);
    buffer.set(left.subarray(0, n));
    left = left.subarray(n);
    return n;
  };
  const transport = streamless({
    writes,
    end,
    feed(bytes: Uint8Array): void {
      left = new Uint8Array([...left, ...bytes]);
      const waiting = reading;
      reading = null;
      waiting?.resolve(take(waiting.buffer));
    },
    read(buffer: Uint8Array): Promise<number | null> {
      if (left.length > 0) return Promise.resolve(take(buffer));
      if (ended) return Promise.resolve(null);
      return new Promise((resolve) => (reading = { buffer, resolve }));
    },
    write(bytes: Uint8Array): Promise<number> {
      return new Promise((resolve, reject) => {
        const copy = bytes.slice();
        writes.push({
          bytes,
          copy,
          intact: () => bytes.length === copy.length && bytes.every((b, i) => b === copy[i]),
          release: (n = bytes.length) => resolve(n),
          fail: reject,
        });
      });
    },
    close: end,
  });
  if (options.writesDone) markWritesDone(transport);
  return transport;
}
