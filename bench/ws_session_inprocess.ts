// Copyright 2026 the wirestream authors. MIT license.
// WebSocketSession's own cost per message, without sockets: K sessions over in-memory direct
// transports (read/write methods, the wire engine's path, marked as the engine marks the
// connections it accepts: their writes hold nothing once resolved, so large frames are built in
// pooled buffers, lib/_slab.ts), each echoing binary messages of --size bytes (32 by default,
// at most 65535) in a closed loop. A "client" answers every echo on the next event-loop turn (a
// MessageChannel message, as socket events arrive), so the sessions' in-flight state is what a
// server with K busy connections holds. It prints echoes per second and the process's CPU
// time per echo; with --heap, V8's sampling heap profiler also gives the bytes allocated per
// echo and the functions that allocate them (what the garbage collector has to deal with:
// at 512 connections every session's in-flight garbage survives scavenges).
//
//   deno run -A bench/ws_session_inprocess.ts [--connections K] [--seconds S] [--size B] [--heap]
//
// CPU time is noisy on a shared machine: compare runs made one after another, several each.
// Bytes per echo barely move between runs.

import process from "node:process";
import { Session } from "node:inspector";
import { type Transport, WebSocketSession } from "../mod.ts";
import { markWritesDone } from "../lib/_slab.ts";
import { parseOptions } from "./_load.ts";

const args = parseOptions(
  Deno.args.filter((a) => a !== "--heap"),
  { connections: 64, seconds: 3, size: 32 },
  "deno run -A bench/ws_session_inprocess.ts [--connections K] [--seconds S] [--size B] [--heap]",
);
const HEAP = Deno.args.includes("--heap");
const SIZE = Math.min(Math.floor(args.size), 65_535);
/** The bytes of one echo: the server's frame, header and payload (one write or two). */
const ECHO = (SIZE < 126 ? 2 : 4) + SIZE;

/** One masked binary frame of SIZE bytes, as a client sends it. */
const HEAD = SIZE < 126 ? 2 : 4;
const FRAME = new Uint8Array(HEAD + 4 + SIZE);
FRAME[0] = 0x82;
if (HEAD === 2) FRAME[1] = 0x80 | SIZE;
else FRAME.set([0x80 | 126, SIZE >>> 8, SIZE & 0xff], 1);
FRAME.set([1, 2, 3, 4], HEAD);

let echoes = 0;
let running = true;
const turn = new MessageChannel();
let due: Peer[] = [];
turn.port1.onmessage = () => {
  const now = due;
  due = [];
  for (const peer of now) peer.deliver();
};

/** The client end of one connection, as a direct transport for the session. */
class Peer implements Transport {
  readable = new ReadableStream<Uint8Array>();
  writable = new WritableStream<Uint8Array>();
  #waiting: ((n: number | null) => void) | null = null;
  #into: Uint8Array | null = null;
  #ready = false;
  #written = 0;

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#ready) {
      this.#ready = false;
      return Promise.resolve(this.#copy(buffer));
    }
    return new Promise((resolve) => {
      this.#into = buffer;
      this.#waiting = resolve;
    });
  }

  write(bytes: Uint8Array): Promise<number> {
    // An echo is written once its frame's bytes all were (in one write, or header and payload).
    this.#written += bytes.length;
    while (this.#written >= ECHO) {
      this.#written -= ECHO;
      echoes++;
      if (running) {
        if (due.length === 0) turn.port2.postMessage(0);
        due.push(this);
      }
    }
    return Promise.resolve(bytes.length);
  }

  /** Sends the next message. */
  deliver(): void {
    const resolve = this.#waiting;
    if (resolve === null) {
      this.#ready = true;
      return;
    }
    this.#waiting = null;
    resolve(this.#copy(this.#into!));
  }

  /** What of the frame fits in `buffer` (a session's idle read buffer is 4 KiB): the rest is ready. */
  #copy(buffer: Uint8Array): number {
    const n = Math.min(buffer.length, FRAME.length - this.#sentOf);
    buffer.set(FRAME.subarray(this.#sentOf, this.#sentOf + n));
    this.#sentOf += n;
    if (this.#sentOf < FRAME.length) this.#ready = true;
    else this.#sentOf = 0;
    return n;
  }

  #sentOf = 0;

  close(): void {}
}

async function echo(session: WebSocketSession): Promise<void> {
  try {
    for await (const message of session.incoming) await session.send(message);
  } catch {
    // Not expected here; the count would show it.
  }
}

const inspector = new Session();
const post = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve, reject) =>
    inspector.post(method, params, (error, result) => error ? reject(error) : resolve(result as T))
  );

for (let i = 0; i < args.connections; i++) {
  const peer = new Peer();
  markWritesDone(peer); // its write holds nothing once resolved, as a Deno.Conn's
  echo(new WebSocketSession(peer, { maxFrameSize: 16 << 20 }));
  peer.deliver();
}
await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
if (HEAP) {
  inspector.connect();
  await post("HeapProfiler.enable");
  await post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
echoes = 0;
const cpuBefore = process.cpuUsage();
const start = performance.now();
await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuBefore);
const counted = echoes;
running = false;
console.log(
  `${args.connections} sessions, ${SIZE} B: ${Math.round(counted / seconds)} echoes/s, ` +
    `${((cpu.user + cpu.system) / counted).toFixed(2)} µs CPU per echo`,
);

if (HEAP) {
  interface Node {
    callFrame: { functionName: string; url: string };
    selfSize: number;
    children: Node[];
  }
  const { profile } = await post<{ profile: { head: Node } }>("HeapProfiler.stopSampling");
  const bySite = new Map<string, number>();
  const walk = (node: Node) => {
    const { functionName, url } = node.callFrame;
    const site = `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(profile.head);
  const total = [...bySite.values()].reduce((a, b) => a + b, 0);
  console.log(`${Math.round(total / counted)} bytes allocated per echo; the largest sites:`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${Math.round(bytes / counted).toString().padStart(6)} B  ${site}`);
  }
  inspector.disconnect();
}
Deno.exit(0); // the sessions are left running
