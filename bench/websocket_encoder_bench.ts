// Copyright 2026 the wirestream authors. MIT license.
// FrameEncoder and FrameEncoderStream against npm:ws's Sender.frame on the same payloads:
// binary frames sent by a server (unmasked) and by a client (masked with a fresh key). Each
// iteration encodes frames totalling 1 MiB of payload (4 MiB for 1 MiB frames) and checks the
// byte count.
//
// ws's Sender.frame is called as ws.send() calls it for a Buffer: `readOnly: true`, so a
// masked payload is copied with the header into a new buffer, as FrameEncoder does.

import { Buffer } from "node:buffer";
import { type ByteSink, FrameEncoder, FrameEncoderStream } from "../lib/websocket/encoder.ts";
import { Frame } from "../lib/websocket/frame.ts";
import { Sender, type WsFrameOptions } from "./_ws.ts";

interface Fixture {
  name: string;
  count: number;
  frame: Frame;
  frames: Frame[];
  buffer: Buffer;
  /** The bytes one iteration must produce, unmasked and masked. */
  wire: { server: number; client: number };
}

function fixture(name: string, size: number, count: number): Fixture {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31) & 0xff;
  const frame = Frame.binary(payload);
  const head = 2 + (size < 126 ? 0 : size < 65_536 ? 2 : 8);
  return {
    name,
    count,
    frame,
    frames: Array.from({ length: count }, () => frame),
    buffer: Buffer.from(payload.buffer, 0, size),
    wire: { server: (head + size) * count, client: (head + 4 + size) * count },
  };
}

const FIXTURES = [
  fixture("16 B", 16, 65_536),
  fixture("1 KiB", 1024, 1024),
  fixture("64 KiB", 65_536, 16),
  fixture("1 MiB", 1_048_576, 4),
];

function check(bytes: number, want: number): void {
  if (bytes !== want) throw new Error(`Encoded ${bytes} bytes, want ${want}`);
}

/**
 * One encoder per role for every iteration, as a session keeps one for its life (and as ws's
 * Sender.frame is a static function): a new encoder per iteration measured the first
 * allocation of its slab (8 KiB) instead of the encoding.
 */
const ENCODERS = {
  server: new FrameEncoder({ role: "server" }),
  client: new FrameEncoder({ role: "client" }),
};

function encodeCore(x: Fixture, role: "server" | "client"): void {
  const encoder = ENCODERS[role];
  let bytes = 0;
  const sink: ByteSink = { enqueue: (chunk) => void (bytes += chunk.length) };
  for (let i = 0; i < x.count; i++) encoder.encode(x.frame, sink);
  check(bytes, x.wire[role]);
}

async function encodeStream(x: Fixture, role: "server" | "client"): Promise<void> {
  const frames = x.frames;
  const source = new ReadableStream<Frame>({
    start(controller) {
      for (const frame of frames) controller.enqueue(frame);
      controller.close();
    },
  });
  const reader = source.pipeThrough(new FrameEncoderStream({ role })).getReader();
  let bytes = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.length;
  check(bytes, x.wire[role]);
}

const WS_SERVER: WsFrameOptions = {
  fin: true,
  opcode: 2,
  mask: false,
  readOnly: true,
  rsv1: false,
};
const WS_CLIENT: WsFrameOptions = { fin: true, opcode: 2, mask: true, readOnly: true, rsv1: false };

function encodeWs(x: Fixture, role: "server" | "client"): void {
  const options = role === "server" ? WS_SERVER : WS_CLIENT;
  let bytes = 0;
  for (let i = 0; i < x.count; i++) {
    for (const chunk of Sender.frame(x.buffer, options)) bytes += chunk.length;
  }
  check(bytes, x.wire[role]);
}

for (const role of ["server", "client"] as const) {
  for (const x of FIXTURES) {
    const group = `encode ${x.count} × ${x.name} ${role} frames (${
      role === "server" ? "unmasked" : "masked"
    })`;
    Deno.bench({ group, name: "ws Sender.frame", baseline: true, fn: () => encodeWs(x, role) });
    Deno.bench({ group, name: "FrameEncoder", fn: () => encodeCore(x, role) });
    // An async function, not an arrow returning a promise: Deno.bench awaits only the former.
    Deno.bench({
      group,
      name: "FrameEncoderStream",
      async fn() {
        await encodeStream(x, role);
      },
    });
  }
}
