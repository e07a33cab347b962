// Copyright 2026 the wirestream authors. MIT license.
// WebSocket clients we did not write, with their events as queues and promises: npm:ws and
// Deno's own WebSocket.

import type { CloseInfo } from "@wirestream/wirestream";
import type { Buffer } from "node:buffer";
import WebSocket from "ws";
import { Queue } from "./ws.ts";

/** What a ws client received. */
export interface WsEvents {
  /** The messages, with their type. */
  messages: Queue<{ data: Buffer; isBinary: boolean }>;
  /** The payloads of the pings received (ws answers them by itself). */
  pings: Queue<Buffer>;
  /** The payloads of the pongs received. */
  pongs: Queue<Buffer>;
  /** The errors ws reported (a refused handshake among them). */
  errors: Error[];
  /** True once open; false when the handshake failed. */
  opened: Promise<boolean>;
  /** The close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

/** A ws client with its events; `opened` is false when the handshake failed. */
export function wsClient(
  url: string,
  protocols: string[] = [],
  options: WebSocket.ClientOptions = {},
): { ws: WebSocket } & WsEvents {
  const ws = new WebSocket(url, protocols, options);
  const messages = new Queue<{ data: Buffer; isBinary: boolean }>();
  const pings = new Queue<Buffer>();
  const pongs = new Queue<Buffer>();
  const errors: Error[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => messages.push({ data, isBinary }));
  ws.on("ping", (data: Buffer) => pings.push(data));
  ws.on("pong", (data: Buffer) => pongs.push(data));
  ws.on("error", (error: Error) => errors.push(error));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  );
  const opened = new Promise<boolean>((resolve) => {
    ws.once("open", () => resolve(true));
    closed.then(() => resolve(false));
  });
  return { ws, messages, pings, pongs, errors, opened, closed };
}

/** Deno's WebSocket (binary as ArrayBuffer) with its messages and close event. */
export function denoClient(url: string, protocols: string[] = []): {
  ws: globalThis.WebSocket;
  messages: Queue<string | ArrayBuffer>;
  opened: Promise<boolean>;
  closed: Promise<CloseInfo>;
} {
  const ws = new globalThis.WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const messages = new Queue<string | ArrayBuffer>();
  ws.addEventListener("message", (event) => messages.push(event.data));
  const closed = new Promise<CloseInfo>((resolve) =>
    ws.addEventListener(
      "close",
      (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }),
    )
  );
  const opened = new Promise<boolean>((resolve) => {
    ws.addEventListener("open", () => resolve(true), { once: true });
    closed.then(() => resolve(false));
  });
  return { ws, messages, opened, closed };
}

/**
 * Makes a ws client read slowly: its socket paused, then `bytes` read from it every `ms`
 * until `stop()`, which lets it read freely again.
 */
export function trickle(ws: WebSocket, bytes = 65_536, ms = 10): { stop(): void } {
  const socket =
    (ws as unknown as { _socket: { pause(): void; resume(): void; read(n: number): unknown } })
      ._socket;
  socket.pause();
  const timer = setInterval(() => socket.read(bytes), ms);
  return {
    stop() {
      clearInterval(timer);
      socket.resume();
    },
  };
}
