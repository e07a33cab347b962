// Copyright 2026 the wirestream authors. MIT license.
// The load client of bench/ws_load.ts: npm:ws on Node (with bufferutil), closed loop. It opens
// N connections (at most --concurrency handshakes at a time, each given 10 s), then each
// connection sends a binary message, waits for its echo, checks it byte for byte (a sequence
// number in its first 4 bytes, the rest random per connection), records the round trip and
// sends the next. After --warmup seconds it resets the counts and prints `measuring`; after
// --duration seconds more it prints `stopped`, lets the messages in flight come back (at most
// 5 s), closes every connection (at most 5 s, then cuts them) and prints one `result {json}`
// line: messages, seconds, rate (messages/s), p50/p99/max round trip in µs, the client's own
// CPU over the measurement, and the problems seen.
//
//   node bench/_ws_client.mjs --port P [--connections 64] [--size 32] [--duration 5]
//                             [--warmup 1] [--concurrency 64]
//
// Why Node and ws: measured against a Deno client on Deno's own WebSocket, on this machine, the
// same server (bare Deno.upgradeWebSocket, 64 connections × 32 B), see ws_load.ts's header.
// ws comes from the checkout's node_modules/ (`deno install` puts it there; ws_load.ts runs it
// when it is missing), and ws loads bufferutil's prebuilt addon from there.

import { randomBytes } from "node:crypto";
import process from "node:process";
import { WebSocket } from "ws";

const options = { port: 0, connections: 64, size: 32, duration: 5, warmup: 1, concurrency: 64 };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, "");
  const value = Number(process.argv[i + 1]);
  if (!(name in options) || !(value >= 0)) {
    console.error(`bad option ${process.argv[i]} ${process.argv[i + 1]}`);
    process.exit(2);
  }
  options[name] = value;
}
if (!(options.port > 0) || !(options.size >= 4) || !(options.connections >= 1)) {
  console.error("usage: node bench/_ws_client.mjs --port P [--size ≥ 4] [--connections ≥ 1] …");
  process.exit(2);
}

const HANDSHAKE_MS = 10_000;
const DRAIN_MS = 5_000;
const CLOSE_MS = 5_000;

// Round trips go into buckets 1% wide from 1 µs up (the last one takes everything above
// about 100 s): percentiles within 1%, in constant memory.
const STEP = Math.log(1.01);
const BUCKETS = Math.ceil(Math.log(1e8) / STEP) + 1;
let histogram = new Float64Array(BUCKETS);
let maxMicros = 0;
let messages = 0;

const problems = {
  connectFailed: 0,
  wrongEcho: 0,
  dropped: 0,
  stalled: 0,
  closeTimeouts: 0,
  firstError: "",
};
let measuring = false;
let stopping = false;

/** One connection's loop. */
class Peer {
  socket;
  payload = randomBytes(options.size);
  sequence = 0;
  sentAt = 0;
  waiting = false;
  open = false;
  closed = false;
  onIdle = null;

  constructor(socket) {
    this.socket = socket;
    socket.on("message", (data, isBinary) => this.received(data, isBinary));
    socket.on("error", (error) => note(`socket error: ${error.message}`));
    socket.on("close", (code) => {
      this.closed = true;
      if (!stopping) {
        problems.dropped++;
        note(`connection closed with ${code} while running`);
      }
      this.idle();
    });
  }

  send() {
    this.payload.writeUInt32LE(++this.sequence >>> 0, 0);
    this.waiting = true;
    this.sentAt = performance.now();
    this.socket.send(this.payload, { binary: true });
  }

  received(data, isBinary) {
    const now = performance.now();
    if (!this.waiting || !isBinary || !this.payload.equals(data)) {
      problems.wrongEcho++;
      note(`wrong echo: ${isBinary ? "binary" : "text"}, ${data.length} bytes`);
    } else if (measuring) {
      const micros = (now - this.sentAt) * 1000;
      histogram[micros <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(micros) / STEP))]++;
      if (micros > maxMicros) maxMicros = micros;
      messages++;
    }
    this.waiting = false;
    if (stopping) this.idle();
    else this.send();
  }

  idle() {
    this.waiting = false;
    this.onIdle?.();
  }
}

function note(text) {
  if (problems.firstError === "") problems.firstError = text;
}

function connect() {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${options.port}/`, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_MS,
    });
    let failed = false;
    const fail = (why) => {
      if (failed) return; // "unexpected-response" may be followed by "error"
      failed = true;
      problems.connectFailed++;
      note(why);
      socket.terminate();
      resolve(null);
    };
    socket.once("unexpected-response", (_request, response) => {
      fail(`handshake answered ${response.statusCode} ${response.statusMessage}`);
    });
    socket.once("error", (error) => fail(`cannot connect: ${error.message}`));
    socket.once("open", () => {
      socket.removeAllListeners("error");
      resolve(new Peer(socket));
    });
  });
}

/** Opens the connections, at most `concurrency` handshakes at a time. */
async function connectAll() {
  const peers = [];
  let next = 0;
  const worker = async () => {
    while (next < options.connections) {
      next++;
      const peer = await connect();
      if (peer !== null) peers.push(peer);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency, options.connections) }, worker),
  );
  return peers;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once every peer has no message in flight, or after `ms`. */
function drained(peers, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(), ms);
    const check = () => {
      if (peers.every((peer) => !peer.waiting || peer.closed)) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const peer of peers) peer.onIdle = check;
    check();
  });
}

function closeAll(peers, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const peer of peers) {
        if (!peer.closed) {
          problems.closeTimeouts++;
          peer.socket.terminate();
        }
      }
      resolve();
    }, ms);
    const check = () => {
      if (peers.every((peer) => peer.closed)) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const peer of peers) {
      peer.onIdle = check;
      if (!peer.closed) peer.socket.close(1000);
    }
    check();
  });
}

function percentile(fraction) {
  const rank = Math.max(1, Math.ceil(messages * fraction));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += histogram[i];
    if (seen >= rank) return Math.min(Math.exp(i * STEP), maxMicros);
  }
  return NaN;
}

const peers = await connectAll();
console.log(`connected ${peers.length} failed ${problems.connectFailed}`);
for (const peer of peers) peer.send();
await sleep(options.warmup * 1000);

histogram = new Float64Array(BUCKETS);
maxMicros = 0;
messages = 0;
measuring = true;
const cpuBefore = process.cpuUsage();
const start = performance.now();
console.log("measuring");
await sleep(options.duration * 1000);
stopping = true;
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuBefore);
console.log("stopped");
measuring = false;

await drained(peers, DRAIN_MS);
problems.stalled = peers.filter((peer) => peer.waiting && !peer.closed).length;
await closeAll(peers, CLOSE_MS);

console.log(`result ${
  JSON.stringify({
    connections: peers.length,
    messages,
    seconds,
    rate: messages / seconds,
    p50: percentile(0.5),
    p99: percentile(0.99),
    max: maxMicros,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    problems,
  })
}`);
process.exit(0);
