// Copyright 2026 the wirestream authors. MIT license.
// The load client of bench/ws_load.ts: a WebSocket client on Node's net sockets, closed loop.
// It opens N connections (at most --concurrency handshakes at a time, each given 10 s), then
// each connection sends a binary message, waits for its echo, checks it byte for byte (a
// sequence number in its first 4 bytes, the rest random per connection), records the round
// trip and sends the next. After --warmup seconds it resets the counts and prints `measuring`;
// after --duration seconds more it prints `stopped`, lets the messages in flight come back (at
// most 5 s), closes every connection (at most 5 s, then cuts them) and prints one
// `result {json}` line: messages, seconds, rate (messages/s), p50/p99/max round trip in µs,
// the client's own CPU over the measurement, and the problems seen.
//
//   node bench/_ws_client.mjs --port P [--connections 64] [--size 32] [--duration 5]
//                             [--warmup 1] [--concurrency 64]
//
// Why its own framing: the client costs about as much CPU per message as the servers measured,
// and on a 2-vCPU machine it shares the cores with them, so every µs it spends may cap the
// fastest server. Against the bare Deno server (64 connections × 32 B, 3 s runs alternating
// between clients, 2026-11-26, load average 1.8–4.1 from other work) npm:ws 8.23.0 with
// bufferutil as the client spent 15–30 µs of client CPU per round trip and this client 11–22 µs,
// less in each of 7 pairs; a Deno client on Deno's WebSocket spent 15–19 µs in an earlier
// comparison. Each message is one write of a frame built once per connection: its data frames
// share one random mask key (RFC 6455 wants a fresh key per frame, for the sake of proxies; a
// server cannot tell), and only the 4 bytes of the sequence number are masked again. Server frames are checked (no mask, no RSV bits, at most 1 MiB); pings are
// answered, fragmented messages reassembled. No dependencies: node:net and node:crypto only.

import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import process from "node:process";

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
  badFrames: 0,
  dropped: 0,
  stalled: 0,
  closeTimeouts: 0,
  firstError: "",
};
let measuring = false;
let stopping = false;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const HEAD_LIMIT = 16_384;
const MESSAGE_LIMIT = 1 << 20;
const CLOSE_1000 = Buffer.from([0x03, 0xe8]);

/** A random mask key, never 0: a zero key could let a server skip its XOR. */
function maskKey() {
  let key;
  do key = randomBytes(4); while (key.readUInt32LE(0) === 0);
  return key;
}

/** A final client frame: `opcode`, then `payload` masked with `key`. */
function clientFrame(opcode, payload, key) {
  const size = payload.length;
  const head = size < 126 ? 2 : size < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + size);
  frame[0] = 0x80 | opcode;
  if (head === 2) frame[1] = 0x80 | size;
  else if (head === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(size), 2);
  }
  key.copy(frame, head);
  for (let i = 0; i < size; i++) frame[head + 4 + i] = payload[i] ^ key[i & 3];
  return frame;
}

/** One connection's loop, on a socket past its handshake. */
class Peer {
  socket;
  payload = randomBytes(options.size);
  key = maskKey();
  /** The data frame, built once: each message re-masks the 4 bytes of its sequence number. */
  frame = clientFrame(0x2, this.payload, this.key);
  offset = this.frame.length - options.size;
  sequence = 0;
  sentAt = 0;
  waiting = false;
  closing = false;
  closed = false;
  onIdle = null;
  /** The start of a frame that the last chunk cut. */
  pending = null;
  /** The opcode and parts of a fragmented message. */
  fragments = null;

  constructor(socket, rest) {
    this.socket = socket;
    socket.on("data", (chunk) => this.data(chunk));
    socket.on("error", (error) => note(`socket error: ${error.message}`));
    socket.on("close", () => {
      this.closed = true;
      if (!stopping && !this.closing) {
        problems.dropped++;
        note("the connection ended while running");
      }
      this.idle();
    });
    if (rest.length > 0) this.data(rest);
  }

  send() {
    this.payload.writeUInt32LE(++this.sequence >>> 0, 0);
    for (let i = 0; i < 4; i++) this.frame[this.offset + i] = this.payload[i] ^ this.key[i];
    this.waiting = true;
    this.sentAt = performance.now();
    // The frame is rewritten only after its echo arrived, so after the write finished.
    this.socket.write(this.frame);
  }

  /** Splits the bytes from the server into frames (RFC 6455 §5.2; a server does not mask). */
  data(chunk) {
    if (this.pending !== null) {
      chunk = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let at = 0;
    while (chunk.length - at >= 2 && !this.closed) {
      const b0 = chunk[at];
      const b1 = chunk[at + 1];
      let size = b1 & 0x7f;
      let head = 2;
      if (size === 126) {
        if (chunk.length - at < 4) break;
        size = chunk.readUInt16BE(at + 2);
        head = 4;
      } else if (size === 127) {
        if (chunk.length - at < 10) break;
        size = chunk.readUInt32BE(at + 2) * 2 ** 32 + chunk.readUInt32BE(at + 6);
        head = 10;
      }
      if ((b1 & 0x80) !== 0 || (b0 & 0x70) !== 0 || size > MESSAGE_LIMIT) {
        return this.fail(
          `bad frame from the server: head ${b0.toString(16)} ${b1.toString(16)}, ${size} bytes`,
        );
      }
      if (chunk.length - at < head + size) break;
      this.onFrame((b0 & 0x80) !== 0, b0 & 0x0f, chunk.subarray(at + head, at + head + size));
      at += head + size;
    }
    if (at < chunk.length) this.pending = Buffer.from(chunk.subarray(at));
  }

  onFrame(fin, opcode, payload) {
    if (opcode === 0x9) this.socket.write(clientFrame(0xa, payload, maskKey()));
    else if (opcode === 0xa) return;
    else if (opcode === 0x8) this.closeReceived(payload);
    else if (fin && opcode !== 0x0 && this.fragments === null) this.message(opcode, payload);
    else if ((opcode === 0x0) === (this.fragments === null)) {
      this.fail(`bad fragment from the server: opcode ${opcode}`);
    } else {
      this.fragments ??= { opcode, parts: [] };
      this.fragments.parts.push(Buffer.from(payload));
      if (fin) {
        const { opcode, parts } = this.fragments;
        this.fragments = null;
        this.message(opcode, Buffer.concat(parts));
      }
    }
  }

  message(opcode, data) {
    const now = performance.now();
    if (!this.waiting || opcode !== 0x2 || !this.payload.equals(data)) {
      problems.wrongEcho++;
      note(`wrong echo: opcode ${opcode}, ${data.length} bytes`);
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

  closeReceived(payload) {
    if (!this.closing) {
      if (!stopping) {
        problems.dropped++;
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : "no code";
        note(`the server closed with ${code} while running`);
      }
      this.closing = true;
      this.socket.write(clientFrame(0x8, payload.subarray(0, 2), maskKey()));
    }
    this.socket.end();
  }

  /** Starts the closing handshake with 1000. */
  close() {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.socket.write(clientFrame(0x8, CLOSE_1000, maskKey()));
  }

  fail(why) {
    problems.badFrames++;
    note(why);
    this.socket.destroy();
  }

  idle() {
    this.waiting = false;
    this.onIdle?.();
  }
}

function note(text) {
  if (problems.firstError === "") problems.firstError = text;
}

/** Opens a connection and runs the opening handshake (RFC 6455 §4.1); null if it fails. */
function connect() {
  return new Promise((resolve) => {
    const key = randomBytes(16).toString("base64");
    const accept = createHash("sha1").update(key + GUID).digest("base64");
    const socket = net.connect({ host: "127.0.0.1", port: options.port, noDelay: true });
    let head = Buffer.alloc(0);
    let done = false;
    const end = (make) => {
      done = true;
      clearTimeout(timer);
      for (const event of ["connect", "data", "error", "close"]) socket.removeAllListeners(event);
      resolve(make()); // the peer listens once the handshake listeners are gone
    };
    const fail = (why) => {
      if (done) return;
      end(() => null);
      socket.on("error", () => {}); // nothing more to learn from this socket
      problems.connectFailed++;
      note(why);
      socket.destroy();
    };
    const timer = setTimeout(() => fail(`no handshake within ${HANDSHAKE_MS} ms`), HANDSHAKE_MS);
    socket.on("error", (error) => fail(`cannot connect: ${error.message}`));
    socket.on("close", () => fail("the server closed the connection during the handshake"));
    socket.on("connect", () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on("data", (chunk) => {
      head = Buffer.concat([head, chunk]);
      const blank = head.indexOf("\r\n\r\n");
      if (blank === -1) {
        if (head.length > HEAD_LIMIT) fail(`no end of the handshake answer in ${HEAD_LIMIT} bytes`);
        return;
      }
      const text = head.subarray(0, blank).toString("latin1");
      const status = text.split("\r\n", 1)[0];
      if (!/^HTTP\/1\.1 101( |$)/.test(status)) {
        return fail(`handshake answered ${status.replace(/^HTTP\/1\.[01] /, "")}`);
      }
      const got = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)/i.exec(text)?.[1];
      if (got !== accept) return fail(`handshake answered Sec-WebSocket-Accept ${got}`);
      end(() => new Peer(socket, head.subarray(blank + 4)));
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
          peer.socket.destroy();
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
      peer.close();
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
