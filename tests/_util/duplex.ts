// Copyright 2026 the wirestream authors. MIT license.
// In-memory byte duplexes for session tests, and a raw peer built from our own codec.

import {
  type Frame,
  FrameDecoderStream,
  FrameEncoderStream,
  type Role,
  type Transport,
} from "@wirestream/wirestream";

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
