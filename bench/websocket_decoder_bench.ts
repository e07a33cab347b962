// Copyright 2026 the wirestream authors. MIT license.
// FrameDecoder and FrameDecoderStream against npm:ws's Receiver (with bufferutil) on the same
// bytes: masked binary client frames, as a server receives them, cut in 64 KiB chunks.
//
// Both decoders unmask in place, so every iteration first restores the masked bytes from a
// pristine copy; the "restore input" row times that copy alone, to subtract when reading the
// others. Every iteration checks that all frames and all payload bytes came out.

import { Buffer } from "node:buffer";
import { FrameDecoder, FrameDecoderStream } from "../lib/websocket/decoder.ts";
import type { Frame } from "../lib/websocket/frame.ts";
import { Receiver, wsUsesBufferutil } from "./_ws.ts";

const CHUNK = 65_536;
const MAX = 1_048_576;

if (!wsUsesBufferutil()) {
  throw new Error(
    "Cannot compare with ws: its Receiver does not unmask with native bufferutil (run with -A; the addon needs --allow-ffi)",
  );
}

/** Masked binary frames of `size` bytes, back to back, as a client sends them. */
function wire(size: number, count: number): Uint8Array {
  const head = 2 + (size < 126 ? 0 : size < 65_536 ? 2 : 8) + 4;
  const bytes = new Uint8Array((head + size) * count);
  let at = 0;
  for (let f = 0; f < count; f++) {
    bytes[at] = 0x82; // FIN, binary
    if (size < 126) {
      bytes[at + 1] = 0x80 | size;
    } else if (size < 65_536) {
      bytes[at + 1] = 0x80 | 126;
      bytes[at + 2] = size >>> 8;
      bytes[at + 3] = size & 0xff;
    } else {
      bytes[at + 1] = 0x80 | 127;
      for (let i = 0; i < 4; i++) bytes[at + 6 + i] = (size >>> (24 - 8 * i)) & 0xff;
    }
    at += head - 4;
    const key = [(f * 13 + 1) & 0xff, (f * 7 + 2) & 0xff, 0x5a, 0xa5];
    bytes.set(key, at);
    at += 4;
    for (let i = 0; i < size; i++) bytes[at + i] = ((f + i * 31) & 0xff) ^ key[i & 3]!;
    at += size;
  }
  return bytes;
}

interface Fixture {
  name: string;
  size: number;
  count: number;
  pristine: Uint8Array;
  work: Uint8Array;
  /** 64 KiB views of `work`, for wirestream. */
  chunks: Uint8Array[];
  /** The same views as Buffers, for ws. */
  buffers: Buffer[];
}

function fixture(name: string, size: number, count: number): Fixture {
  const pristine = wire(size, count);
  const work = pristine.slice();
  const chunks: Uint8Array[] = [], buffers: Buffer[] = [];
  for (let at = 0; at < work.length; at += CHUNK) {
    const n = Math.min(CHUNK, work.length - at);
    chunks.push(new Uint8Array(work.buffer, at, n));
    buffers.push(Buffer.from(work.buffer, at, n));
  }
  return { name, size, count, pristine, work, chunks, buffers };
}

function check(x: Fixture, frames: number, bytes: number): void {
  if (frames !== x.count || bytes !== x.size * x.count) {
    throw new Error(`Decoded ${frames} frames of ${bytes} bytes, want ${x.count} of ${x.size}`);
  }
}

function decodeCore(x: Fixture): void {
  x.work.set(x.pristine);
  let frames = 0, bytes = 0;
  const sink = {
    enqueue(frame: Frame) {
      frames++;
      bytes += frame.payload.length;
    },
  };
  const decoder = new FrameDecoder({ role: "server", maxFrameSize: MAX });
  for (const chunk of x.chunks) decoder.push(chunk, sink);
  decoder.end();
  check(x, frames, bytes);
}

/** Restores the input, and gives its chunks as a stream, all enqueued at once. */
function restoredSource(x: Fixture): ReadableStream<Uint8Array> {
  x.work.set(x.pristine);
  const chunks = x.chunks;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function decodeStream(x: Fixture): Promise<void> {
  const source = restoredSource(x);
  const reader = source.pipeThrough(new FrameDecoderStream({ role: "server", maxFrameSize: MAX }))
    .getReader();
  let frames = 0, bytes = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    frames++;
    bytes += r.value.payload.length;
  }
  check(x, frames, bytes);
}

function decodeWs(x: Fixture, writable: boolean): void {
  x.work.set(x.pristine);
  const receiver = new Receiver({ isServer: true, maxPayload: MAX, skipUTF8Validation: true });
  let frames = 0, bytes = 0;
  receiver.on("message", (data) => {
    frames++;
    bytes += data.length;
  });
  receiver.on("error", (error) => {
    throw error;
  });
  if (writable) {
    for (const buffer of x.buffers) receiver.write(buffer);
  } else {
    const done = (error?: Error | null) => {
      if (error) throw error;
    };
    for (const buffer of x.buffers) receiver._write(buffer, "buffer", done);
  }
  check(x, frames, bytes);
}

const FIXTURES = [
  fixture("16 B", 16, 65_536),
  fixture("1 KiB", 1024, 1024),
  fixture("64 KiB", 65_536, 16),
  fixture("1 MiB", 1_048_576, 4),
];

for (const x of FIXTURES) {
  const group = `decode ${x.count} × ${x.name} masked frames, 64 KiB chunks`;
  Deno.bench({
    group,
    name: "ws Receiver.write + bufferutil",
    baseline: true,
    fn: () => decodeWs(x, true),
  });
  Deno.bench({ group, name: "ws Receiver._write + bufferutil", fn: () => decodeWs(x, false) });
  Deno.bench({ group, name: "FrameDecoder", fn: () => decodeCore(x) });
  // An async function, not an arrow returning a promise: Deno.bench awaits only the former.
  Deno.bench({
    group,
    name: "FrameDecoderStream",
    async fn() {
      await decodeStream(x);
    },
  });
  Deno.bench({
    group,
    name: "floor (stream): the same chunks through an identity TransformStream",
    async fn() {
      await identityPipe(x);
    },
  });
  Deno.bench({ group, name: "restore input (in every row)", fn: () => x.work.set(x.pristine) });
  Deno.bench({ group, name: "floor: restore, fresh buffer + copy per frame", fn: () => floor(x) });
}

/**
 * What the stream form pays before any decoding: the same source, `pipeThrough` an identity
 * `TransformStream`, and the reads, with the input restored as in every row. Deno's streams
 * cost this per pipe whatever the transform does.
 */
async function identityPipe(x: Fixture): Promise<void> {
  const reader = restoredSource(x).pipeThrough(new TransformStream<Uint8Array, Uint8Array>())
    .getReader();
  let n = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) n++;
  if (n !== x.chunks.length) throw new Error(`Piped ${n} chunks, want ${x.chunks.length}`);
}

/**
 * The least any decoder that hands each payload out in a buffer of its own can do for frames
 * that span chunks: restore the input (as every row does), then per frame allocate a buffer
 * and copy the payload in, with no parsing and no unmasking. Frames within one chunk may be
 * handed out as views (both decoders do), so below 64 KiB this is not a floor.
 */
function floor(x: Fixture): void {
  x.work.set(x.pristine);
  let bytes = 0;
  for (let f = 0; f < x.count; f++) {
    const payload = new Uint8Array(x.size);
    payload.set(x.work.subarray(f * x.size, (f + 1) * x.size));
    bytes += payload.length;
  }
  check(x, x.count, bytes);
}
