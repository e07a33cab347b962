// Copyright 2026 the wirestream authors. MIT license.
// WebSocket test helpers: an event queue, our server on a bare listener or on Deno.serve, an
// echo.

import assert from "node:assert/strict";
import {
  acceptWebSocket,
  type AcceptWebSocketOptions,
  Frame,
  FrameDecoder,
  HttpError,
  type Message,
  type MessageSession,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
  type WebSocketSession,
} from "@wirestream/wirestream";
import { deferred, delay, within } from "./async.ts";
import { asciiOf, randomBytes, sameBytes, seeded } from "./random.ts";

/** An unbounded queue of events, read in order. */
export class Queue<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((item: T) => void)[] = [];
  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }
  next(what = "the next item", ms = 10_000): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return within(new Promise<T>((resolve) => this.#waiters.push(resolve)), ms, what);
  }
}

/**
 * Our server on 127.0.0.1 (Deno.listen + acceptWebSocket): each session goes to `handler`,
 * and `close()` stops listening and waits for every session to end.
 */
export function ourServer(
  options: AcceptWebSocketOptions,
  handler: (session: WebSocketSession) => Promise<void> | void,
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions: WebSocketSession[] = [];
  const running: Promise<unknown>[] = [];
  const accepted = new Queue<WebSocketSession>();
  const serving = (async () => {
    try {
      for await (const conn of listener) {
        running.push(
          acceptWebSocket(conn, { timeout: 2000, ...options }).then(async ({ session }) => {
            sessions.push(session);
            accepted.push(session);
            try {
              await handler(session);
            } finally {
              await session.closed;
            }
          }, () => {}),
        );
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    url: `ws://127.0.0.1:${listener.addr.port}/`,
    accepted,
    async close() {
      listener.close();
      await serving;
      await within(Promise.allSettled(running), 10_000, "our server's sessions to end");
    },
  };
}

/** Echoes every message with its type, until the session ends. */
export async function echo(session: MessageSession): Promise<void> {
  try {
    for await (const message of session.incoming) await session.send(message);
  } catch {
    // The session failed; its `closed` tells how.
  }
}

/** Reads the next message of our session, bounded in time. */
export async function nextMessage(reader: ReadableStreamDefaultReader<Message>): Promise<Message> {
  const { done, value } = await within(reader.read(), 10_000, "our next message");
  assert.ok(!done, "our session's incoming ended");
  return value;
}

/**
 * A fetch handler, for either engine, that upgrades every request asking for it with
 * upgradeWebSocket and hands each session to `run`; a refusal is answered with
 * `error.toResponse()` and kept in `refusals`, any other error in `errors` (answered 500).
 * Other requests get "plain".
 */
export function upgradeHandler<S = MessageSession>(
  options: UpgradeWebSocketOptions,
  run: (session: S, request: Request) => unknown,
) {
  const sessions = new Queue<S>();
  const refusals: HttpError[] = [];
  const errors: unknown[] = [];
  const handler = (request: Request): Response => {
    if (!request.headers.has("upgrade") && !request.headers.has("sec-websocket-key")) {
      return new Response("plain");
    }
    try {
      const { response, session } = upgradeWebSocket(request, options);
      sessions.push(session as S); // a RawWebSocketSession when options.raw is true
      Promise.resolve(run(session as S, request)).catch(() => {});
      return response;
    } catch (error) {
      if (error instanceof HttpError) {
        refusals.push(error);
        return error.toResponse();
      }
      errors.push(error);
      return new Response(String(error), { status: 500 });
    }
  };
  return { handler, sessions, refusals, errors };
}

/**
 * A Deno.serve server on 127.0.0.1 (the native engine) serving {@linkcode upgradeHandler}.
 * `close()` shuts it down; close the clients and await the sessions first.
 */
export function nativeServer(
  options: UpgradeWebSocketOptions,
  run: (session: MessageSession, request: Request) => unknown,
) {
  const { handler, ...state } = upgradeHandler(options, run);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    ...state,
    port: server.addr.port,
    url: `ws://127.0.0.1:${server.addr.port}/`,
    close: () => within(server.shutdown(), 5000, "Deno.serve to shut down"),
  };
}

/** A peer to check echoes with: it sends, and gives what came back (binary as bytes). */
export interface EchoPeer {
  send(message: Message): unknown;
  next(what: string): Promise<Message>;
}

/**
 * Sends text and binary of each size (ASCII text, seeded random bytes) and checks that each
 * comes back with its type and bytes.
 */
export async function assertEchoes(
  peer: EchoPeer,
  sizes: readonly number[],
  seed: number,
): Promise<void> {
  const random = seeded(seed);
  for (const size of sizes) {
    const text = asciiOf(size);
    await peer.send(text);
    const got = await peer.next(`the text echo of ${size} bytes`);
    assert.equal(typeof got, "string", `text of ${size} bytes came back as binary`);
    assert.ok(got === text, `text of ${size} bytes differs`);
    const bytes = randomBytes(random, size);
    await peer.send(bytes);
    const back = await peer.next(`the binary echo of ${size} bytes`);
    assert.ok(back instanceof Uint8Array, `binary of ${size} bytes came back as text`);
    assert.ok(sameBytes(back, bytes), `binary of ${size} bytes differs`);
  }
}

/** A ws client (of tests/_util/clients.ts or alike) as an {@linkcode EchoPeer}. */
export function wsPeer(
  ws: { send(data: Message): void },
  messages: { next(what: string): Promise<{ data: Uint8Array; isBinary: boolean }> },
): EchoPeer {
  return {
    send: (message) => ws.send(message),
    next: async (what) => {
      const { data, isBinary } = await messages.next(what);
      return isBinary ? new Uint8Array(data) : new TextDecoder().decode(data);
    },
  };
}

/** A web WebSocket (binaryType "arraybuffer") and its message queue as an {@linkcode EchoPeer}. */
export function webPeer(
  ws: WebSocket,
  messages: { next(what: string): Promise<string | ArrayBuffer> },
): EchoPeer {
  return {
    send: (message) => ws.send(message),
    next: async (what) => {
      const data = await messages.next(what);
      return typeof data === "string" ? data : new Uint8Array(data);
    },
  };
}

/** Our session as an {@linkcode EchoPeer}: it reads `incoming` with `reader`. */
export function sessionPeer(
  session: MessageSession,
  reader: ReadableStreamDefaultReader<Message>,
): EchoPeer {
  return { send: (message) => session.send(message), next: () => nextMessage(reader) };
}

/**
 * Sends messages of `size` bytes (the first byte numbering them) without awaiting them, one
 * per turn of the event loop so that the socket can take some, until one is refused: what
 * `maxSendQueue` does to a sender whose peer stopped reading. At most 2000 sends; `at` is -1
 * when none was refused.
 */
export async function floodUntilRefused(
  session: MessageSession,
  size: number,
): Promise<{ at: number; error: unknown }> {
  for (let at = 0; at < 2000; at++) {
    const failed = await Promise.race([
      session.send(new Uint8Array(size).fill(at & 0xff)).then(() => null, (error) => error),
      delay(0).then(() => null),
    ]);
    if (failed !== null) return { at, error: failed };
  }
  return { at: -1, error: null };
}

/**
 * A client speaking raw bytes over a real TCP socket to `port` on 127.0.0.1, after a
 * handshake made by hand: `send` writes bytes as given (several frames in one write reach the
 * server in one read), `next` gives the next frame the server sent (its payload copied) or
 * null once the server ended the connection.
 */
export async function rawSocket(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const request = "GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n" +
    "connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "sec-websocket-version: 13\r\n\r\n";
  await conn.write(new TextEncoder().encode(request));
  const frames = new Queue<Frame | null>();
  const decoder = new FrameDecoder({ role: "client", maxFrameSize: Infinity });
  const sink = {
    enqueue: (f: Frame) => frames.push(new Frame(f.opcode, f.payload.slice(), f.fin)),
  };
  const head = deferred();
  const reading = (async () => {
    let text = "";
    const buffer = new Uint8Array(65_536);
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) {
        let chunk = buffer.subarray(0, n);
        if (!text.endsWith("\r\n\r\n")) {
          const at = latin1Index(chunk, text);
          text += String.fromCharCode(...chunk.subarray(0, at));
          chunk = chunk.subarray(at);
          if (!text.endsWith("\r\n\r\n")) continue;
          assert.match(text, /^HTTP\/1\.1 101 /);
          head.resolve();
        }
        decoder.push(chunk, sink);
      }
    } catch {
      // Reset, or closed by us.
    }
    frames.push(null);
  })();
  await within(head.promise, 5000, "the 101 answer");
  return {
    conn,
    /** Writes `bytes` in one write. */
    send: async (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    },
    /** The next frame, or null at the end of the connection, within `ms`. */
    next: (ms = 5000) => frames.next("the server's next frame", ms),
    /** Closes the socket and waits for the reader. */
    close: async () => {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
      await reading;
    },
  };
}

/** How many bytes of `chunk` complete an HTTP head of which `text` was read (all if not). */
function latin1Index(chunk: Uint8Array, text: string): number {
  let tail = text.slice(-3);
  for (let i = 0; i < chunk.length; i++) {
    tail = (tail + String.fromCharCode(chunk[i]!)).slice(-4);
    if (tail === "\r\n\r\n") return i + 1;
  }
  return chunk.length;
}
