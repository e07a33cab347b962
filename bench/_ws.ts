// Copyright 2026 the wirestream authors. MIT license.
// The parts of npm:ws that the benches measure against, typed: its Receiver and Sender, its
// unmask as ws runs it (bufferutil from 32 bytes), with bufferutil switched off, and
// bufferutil's own.

import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import process from "node:process";
import bufferutil from "bufferutil";
import * as ws from "ws";

/** The options of ws's `Receiver` (ws/lib/receiver.js) that the benches set. */
export interface WsReceiverOptions {
  /** Expect masked frames, as a server does. */
  isServer?: boolean;
  /** The largest message in bytes; 0 lifts the limit. */
  maxPayload?: number;
  /** Skip UTF-8 validation of text and close payloads. */
  skipUTF8Validation?: boolean;
  /** Emit several messages in one tick (ws's default) instead of one per `setImmediate`. */
  allowSynchronousEvents?: boolean;
}

/** ws's frame parser: a Node `Writable` that emits `"message"` per complete message. */
export interface WsReceiver {
  /** The public `Writable` entry point, as ws's socket `"data"` handler calls it. */
  write(chunk: Buffer): boolean;
  /** The parser itself, without the `Writable` bookkeeping. */
  _write(chunk: Buffer, encoding: string, callback: (error?: Error | null) => void): void;
  /** Listens for messages (a Buffer per binary message) and protocol errors. */
  on(event: "message", listener: (data: Buffer, isBinary: boolean) => void): this;
  /** Listens for a protocol error. */
  on(event: "error", listener: (error: Error) => void): this;
}

/** The options of ws's `Sender.frame` (ws/lib/sender.js). */
export interface WsFrameOptions {
  /** The FIN bit. */
  fin: boolean;
  /** The opcode. */
  opcode: number;
  /** Mask the payload with a fresh key from ws's random pool. */
  mask: boolean;
  /** The payload must not change: masking copies it together with the header. */
  readOnly: boolean;
  /** The RSV1 bit. */
  rsv1: boolean;
}

/** An unmask function of ws's shape: XORs `buffer` in place with the 4-byte `mask`. */
export type Unmask = (buffer: Buffer, mask: Buffer) => void;

/** ws's `Receiver` class. */
export const Receiver = ws.Receiver as unknown as new (options?: WsReceiverOptions) => WsReceiver;

/** ws's `Sender`, reduced to its static framing function. */
export const Sender = ws.Sender as unknown as {
  frame(data: Buffer, options: WsFrameOptions): Buffer[];
};

const require = createRequire(import.meta.url);
// ws/lib/buffer-util.js is not exported; find it next to the package's entry point.
const BUFFER_UTIL = require.resolve("ws").replace(/index\.js$/, "lib/buffer-util.js");

/** ws's buffer-util as its Receiver loaded it: the same module instance. */
const wsBufferUtil = require(BUFFER_UTIL) as { unmask: Unmask };

/**
 * A second instance of ws's buffer-util, loaded with `WS_NO_BUFFER_UTIL=1`: the module reads
 * the variable once, at load, so the cached instance is set aside and put back afterwards.
 */
function loadPureBufferUtil(): { unmask: Unmask } {
  const cached = require.cache[BUFFER_UTIL];
  const previous = process.env.WS_NO_BUFFER_UTIL;
  delete require.cache[BUFFER_UTIL];
  process.env.WS_NO_BUFFER_UTIL = "1";
  try {
    return require(BUFFER_UTIL);
  } finally {
    if (previous === undefined) delete process.env.WS_NO_BUFFER_UTIL;
    else process.env.WS_NO_BUFFER_UTIL = previous;
    if (cached !== undefined) require.cache[BUFFER_UTIL] = cached;
  }
}

/** ws's unmask as its Receiver calls it: a JS loop under 32 bytes, bufferutil above. */
export const wsUnmask: Unmask = wsBufferUtil.unmask;

/** ws's pure-JS unmask (`WS_NO_BUFFER_UTIL=1`): a byte loop, `buffer[i] ^= mask[i & 3]`. */
export const wsUnmaskJs: Unmask = loadPureBufferUtil().unmask;

/** bufferutil's native unmask, called directly. */
export const bufferutilUnmask: Unmask = (bufferutil as { unmask: Unmask }).unmask;

/**
 * Whether ws's Receiver unmasks through bufferutil's native addon: bufferutil's `unmask` must be
 * native code (its index.js falls back silently to a JS loop when the addon fails to load,
 * e.g. without `--allow-ffi`), and decoding one masked 64-byte frame must reach it once (ws
 * looks the function up on every call).
 */
export function wsUsesBufferutil(): boolean {
  if (!/\[native code\]/.test(Function.prototype.toString.call(bufferutilUnmask))) return false;
  const module = bufferutil as { unmask: Unmask };
  const native = module.unmask;
  let calls = 0;
  module.unmask = (buffer, mask) => {
    calls++;
    native(buffer, mask);
  };
  try {
    const receiver = new Receiver({ isServer: true });
    let messages = 0;
    receiver.on("message", () => messages++);
    const frame = Buffer.alloc(2 + 4 + 64);
    frame[0] = 0x82; // FIN, binary
    frame[1] = 0x80 | 64; // MASK, length 64
    frame.set([1, 2, 3, 4], 2); // masking key
    receiver.write(frame);
    return messages === 1 && calls === 1;
  } finally {
    module.unmask = native;
  }
}
