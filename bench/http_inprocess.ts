// Copyright 2026 the wirestream authors. MIT license.
// The wire engine's own cost per request, without sockets: K connections over in-memory direct
// transports (read/write methods, as a Deno.Conn has), each sending a hello-world GET (or
// --depth pipelined ones in one write) in a closed loop: once a connection's responses are
// written, its next request arrives on a later event-loop turn (a MessageChannel message, as
// socket events do). The handler answers `new Response("Hello, World!")`, or with --body B a
// body of B bytes ("x" repeated). It prints requests per second and the process's CPU time per
// request. The transports are marked as the engine marks the connections it accepts (their
// writes hold nothing once resolved: responses of a few KiB are built in pooled buffers,
// lib/_slab.ts).
//
//   deno run -A bench/http_inprocess.ts [--connections K] [--seconds S] [--depth D] [--body B]
//
// CPU time is noisy on a shared machine: compare runs made one after another, several each.

import process from "node:process";
import { startConnectionPipeline } from "../mod.ts";
import { markWritesDone } from "../lib/_slab.ts";
import { parseOptions } from "./_load.ts";

const args = parseOptions(
  Deno.args,
  { connections: 64, seconds: 3, depth: 1, body: 0 },
  "deno run -A bench/http_inprocess.ts [--connections K] [--seconds S] [--depth D] [--body B]",
);
const BODY = args.body > 0 ? "x".repeat(args.body) : "Hello, World!";
const REQUEST = new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n".repeat(args.depth),
);
const H = 0x48, T = 0x54, P = 0x50, SLASH = 0x2f, SP = 0x20;

let responses = 0;
let running = true;

// Connections whose next requests are due, delivered together on the next turn.
const turn = new MessageChannel();
let due: FakeConn[] = [];
let scheduled = false;
turn.port1.onmessage = () => {
  scheduled = false;
  const now = due;
  due = [];
  for (const conn of now) conn.deliver();
};

/** A direct transport whose peer sends REQUEST again once all its responses were written. */
class FakeConn {
  readonly remoteAddr = { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 };
  readonly localAddr = { transport: "tcp" as const, hostname: "127.0.0.1", port: 2 };
  #waiting: ((n: number | null) => void) | null = null;
  #buffer: Uint8Array | null = null;
  #ready = false;
  #seen = 0;

  get readable(): ReadableStream<Uint8Array> {
    throw new Error("a direct transport's stream was read");
  }
  get writable(): WritableStream<Uint8Array> {
    throw new Error("a direct transport's stream was written");
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#ready) {
      this.#ready = false;
      buffer.set(REQUEST);
      return Promise.resolve(REQUEST.length);
    }
    return new Promise((resolve) => {
      this.#buffer = buffer;
      this.#waiting = resolve;
    });
  }

  write(bytes: Uint8Array): Promise<number> {
    // Counts the status lines written ("HTTP/1.1 " at a line start is enough here).
    let n = 0;
    for (let i = bytes.indexOf(H); i !== -1 && i + 8 < bytes.length; i = bytes.indexOf(H, i + 1)) {
      if (
        bytes[i + 1] === T && bytes[i + 2] === T && bytes[i + 3] === P &&
        bytes[i + 4] === SLASH && bytes[i + 8] === SP
      ) n++;
    }
    responses += n;
    if ((this.#seen += n) >= args.depth) {
      this.#seen = 0;
      if (running) {
        due.push(this);
        if (!scheduled) {
          scheduled = true;
          turn.port2.postMessage(0);
        }
      }
    }
    return Promise.resolve(bytes.length);
  }

  deliver(): void {
    const waiting = this.#waiting;
    if (waiting === null) {
      this.#ready = true;
      return;
    }
    this.#waiting = null;
    this.#buffer!.set(REQUEST);
    waiting(REQUEST.length);
  }

  close(): void {}
  closeWrite(): void {}
}

for (let i = 0; i < args.connections; i++) {
  const conn = new FakeConn();
  markWritesDone(conn); // its write holds nothing once resolved, as a Deno.Conn's
  startConnectionPipeline(conn, () => new Response(BODY));
  conn.deliver();
}
await new Promise((resolve) => setTimeout(resolve, 1000)); // warm-up
responses = 0;
const cpu = process.cpuUsage();
const start = performance.now();
await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000));
const elapsed = performance.now() - start;
running = false;
const used = process.cpuUsage(cpu);
console.log(
  `${args.connections} connections, ${args.depth} per write, ${BODY.length} B bodies: ${
    Math.round(responses / elapsed * 1000)
  } requests/s, ${((used.user + used.system) / responses).toFixed(2)} µs of CPU per request`,
);
Deno.exit(0);
