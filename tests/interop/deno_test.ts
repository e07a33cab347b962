// Copyright 2026 the wirestream authors. MIT license.
// Real sockets on 127.0.0.1 against Deno's own WebSocket: its client against our server
// (Deno.listen + acceptWebSocket), and our client (connectWebSocket) against a Deno.serve
// server that upgrades with Deno.upgradeWebSocket.
import { connectWebSocket, HttpError, WebSocketError } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import {
  assertEchoes,
  echo,
  nextMessage,
  ourServer,
  Queue,
  sessionPeer,
  webPeer,
} from "../_util/ws.ts";

const MiB = 1 << 20;
const LIMITS = { maxFrameSize: 32 * MiB, maxMessageSize: 32 * MiB } as const;
const SIZES = [0, 125, 126, 65_535, 65_536, MiB, 16 * MiB];

interface Closed {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** A web `WebSocket` (binary as ArrayBuffer) with its messages and close event. */
function watch(ws: WebSocket): { messages: Queue<string | ArrayBuffer>; closed: Promise<Closed> } {
  ws.binaryType = "arraybuffer";
  const messages = new Queue<string | ArrayBuffer>();
  ws.addEventListener("message", (event) => messages.push(event.data));
  const closed = new Promise<Closed>((resolve) =>
    ws.addEventListener(
      "close",
      (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }),
    )
  );
  return { messages, closed };
}

/** Opens Deno's WebSocket client; resolves once it is open. */
async function denoClient(url: string, protocols?: string[]) {
  const ws = new WebSocket(url, protocols);
  const events = watch(ws);
  await within(
    new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", (e) => reject(new Error(`WebSocket error: ${e}`)), {
        once: true,
      });
    }),
    5000,
    "Deno's WebSocket to open",
  );
  return { ws, ...events };
}

Deno.test("interop: Deno's WebSocket client and our server (acceptWebSocket)", async (t) => {
  await t.step("text and binary of 0 B to 16 MiB come back with their type", async () => {
    const server = ourServer(LIMITS, echo);
    const client = await denoClient(server.url);
    try {
      await assertEchoes(webPeer(client.ws, client.messages), SIZES, 2026);
      client.ws.send("héllo ✓ 🎉");
      assert.equal(await client.messages.next(), "héllo ✓ 🎉");
      client.ws.close(1000);
      assert.equal((await within(client.closed, 5000, "Deno's close")).code, 1000);
    } finally {
      client.ws.close();
      await server.close();
    }
  });

  await t.step('Deno closes with 4001 "x": both ends see {4001, "x", clean}', async () => {
    const server = ourServer(LIMITS, echo);
    const client = await denoClient(server.url);
    try {
      const session = await server.accepted.next();
      client.ws.close(4001, "x");
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual(info, { code: 4001, reason: "x", wasClean: true });
      const closed = await within(client.closed, 5000, "Deno's close");
      // Deno's close event reports our answer: its code and the reason echoed (as ws does).
      assert.deepEqual([closed.code, closed.reason, closed.wasClean], [4001, "x", true]);
    } finally {
      await server.close();
    }
  });

  await t.step("we close with 4002: Deno's close event gets 4002 and the reason", async () => {
    const server = ourServer(LIMITS, async (session) => {
      await session.incoming.getReader().read(); // any message asks us to close
      await session.close(4002, "server says bye");
    });
    const client = await denoClient(server.url);
    try {
      client.ws.send("close, please");
      const closed = await within(client.closed, 5000, "Deno's close");
      assert.deepEqual(closed, { code: 4002, reason: "server says bye", wasClean: true });
      const info = await within((await server.accepted.next()).closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [4002, true]);
    } finally {
      await server.close();
    }
  });

  await t.step("a message over our maxMessageSize reaches Deno as close 1009", async () => {
    const server = ourServer({ maxMessageSize: 10, timeout: 200 }, echo);
    const client = await denoClient(server.url);
    try {
      client.ws.send(new Uint8Array(11));
      const closed = await within(client.closed, 5000, "Deno's close");
      assert.equal(closed.code, 1009);
      const info = await within((await server.accepted.next()).closed, 5000, "our close");
      assert.deepEqual([info.code, info.wasClean], [1009, false]);
    } finally {
      await server.close();
    }
  });

  await t.step("agrees on a subprotocol Deno offered", async () => {
    const server = ourServer({ protocols: ["v2.chat"] }, echo);
    const client = await denoClient(server.url, ["v1.chat", "v2.chat"]);
    try {
      assert.equal(client.ws.protocol, "v2.chat");
      assert.equal((await server.accepted.next()).protocol, "v2.chat");
      client.ws.close(1000);
      await within(client.closed, 5000, "Deno's close");
    } finally {
      await server.close();
    }
  });
});

/**
 * A Deno.serve server on 127.0.0.1 that upgrades every request with Deno.upgradeWebSocket,
 * choosing the subprotocol with `protocol`, and hands each socket to `handler`.
 */
function denoServer(
  handler: (socket: WebSocket, request: Request) => void,
  protocol?: (offered: string[]) => string | undefined,
) {
  const sockets = new Queue<{ socket: WebSocket } & ReturnType<typeof watch>>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim()).filter((p) => p !== "");
    const chosen = protocol?.(offered);
    const { socket, response } = Deno.upgradeWebSocket(
      request,
      chosen === undefined ? {} : { protocol: chosen },
    );
    const events = watch(socket);
    sockets.push({ socket, ...events });
    handler(socket, request);
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/`,
    sockets,
    close: () => within(server.shutdown(), 10_000, "Deno.serve to shut down"),
  };
}

/** Echoes what `socket` receives, with its type. */
function echoSocket(socket: WebSocket): void {
  socket.addEventListener("message", (event) => socket.send(event.data));
}

Deno.test("interop: our client (connectWebSocket) and Deno.serve + Deno.upgradeWebSocket", async (t) => {
  await t.step("text and binary of 0 B to 16 MiB come back with their type", async () => {
    const server = denoServer(echoSocket);
    const session = await connectWebSocket(server.url, { ...LIMITS, timeout: 5000 });
    try {
      const reader = session.incoming.getReader();
      await assertEchoes(sessionPeer(session, reader), SIZES, 1011);
      reader.releaseLock();
      const info = await within(session.close(1000), 5000, "our close");
      assert.deepEqual(info, { code: 1000, reason: "", wasClean: true });
    } finally {
      session.close();
      await session.closed;
      await server.close();
    }
  });

  await t.step("the server picks a subprotocol we offered", async () => {
    const seen: string[][] = [];
    const server = denoServer(echoSocket, (offered) => {
      seen.push(offered);
      return offered.includes("v2.chat") ? "v2.chat" : undefined;
    });
    const session = await connectWebSocket(server.url, {
      protocols: ["v1.chat", "v2.chat"],
      timeout: 5000,
    });
    try {
      assert.equal(session.protocol, "v2.chat");
      assert.deepEqual(seen, [["v1.chat", "v2.chat"]]);
      await session.send("hi");
      const reader = session.incoming.getReader();
      assert.equal(await nextMessage(reader), "hi");
      reader.releaseLock();
      // (Deno's server-side socket.protocol stays "" in Deno 2.9; the 101 carried the choice.)
    } finally {
      session.close();
      await session.closed;
      await server.close();
    }
  });

  await t.step('the server closes with 4003 "z": ours ends with {4003, "z", clean}', async () => {
    const server = denoServer(() => {});
    const session = await connectWebSocket(server.url, { timeout: 5000 });
    try {
      const { socket, closed } = await server.sockets.next("the server socket");
      if (socket.readyState !== WebSocket.OPEN) {
        await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
      }
      socket.close(4003, "z");
      const info = await within(session.closed, 5000, "our close");
      assert.deepEqual(info, { code: 4003, reason: "z", wasClean: true });
      assert.equal((await within(closed, 5000, "the server's close")).code, 4003);
    } finally {
      await session.closed;
      await server.close();
    }
  });

  await t.step(
    "we close with 4004: the server's close event gets 4004 and the reason",
    async () => {
      const server = denoServer(() => {});
      const session = await connectWebSocket(server.url, { timeout: 5000 });
      try {
        const { closed } = await server.sockets.next("the server socket");
        const info = await within(session.close(4004, "w"), 5000, "our close");
        assert.deepEqual([info.code, info.wasClean], [4004, true]);
        const event = await within(closed, 5000, "the server's close");
        assert.deepEqual(event, { code: 4004, reason: "w", wasClean: true });
      } finally {
        await session.closed;
        await server.close();
      }
    },
  );

  await t.step("our pings are answered by Deno, so the session stays open", async () => {
    const server = denoServer(echoSocket);
    const session = await connectWebSocket(server.url, { pingInterval: 20, timeout: 300 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // about 10 ping periods
      assert.equal(session.signal.aborted, false, "the session ended");
      await session.send("still open");
      const reader = session.incoming.getReader();
      assert.equal(await nextMessage(reader), "still open");
      reader.releaseLock();
    } finally {
      session.close();
      await session.closed;
      await server.close();
    }
  });

  await t.step("a non-101 answer gives an HttpError with its status", async () => {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("no", { status: 403 }),
    );
    try {
      await assert.rejects(
        connectWebSocket(`ws://127.0.0.1:${server.addr.port}/`, { timeout: 5000 }),
        (e) => e instanceof HttpError && e.status === 403,
      );
    } finally {
      await server.shutdown();
    }
  });
});

/**
 * A TCP server that answers the first request with `answer(key)`, then waits, or closes the
 * connection when `close` is set. `request` is the request head as sent, one character per
 * byte.
 */
function rawServer(
  answer: ((key: string) => Promise<string>) | null,
  { close = false }: { close?: boolean } = {},
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let received = "";
  const serving = (async () => {
    const conn = await listener.accept();
    conns.push(conn);
    const reader = conn.readable.getReader();
    while (!received.includes("\r\n\r\n")) {
      const { done, value } = await reader.read();
      if (done) return;
      received += String.fromCharCode(...value);
    }
    reader.releaseLock();
    if (answer === null) return; // say nothing
    const key = /\r\nsec-websocket-key: ([^\r]+)/i.exec(received)![1]!;
    const writer = conn.writable.getWriter();
    await writer.write(new TextEncoder().encode(await answer(key)));
    if (close) await writer.close();
    else writer.releaseLock();
  })().catch(() => {});
  return {
    url: `ws://127.0.0.1:${listener.addr.port}/`,
    port: listener.addr.port,
    /** The request head, once the server has read it. */
    request: () => serving.then(() => received),
    async close() {
      listener.close();
      await serving;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // The client closed it.
        }
      }
    },
  };
}

/** SHA-1 as the servers here work it out, whatever a test does to `crypto.subtle.digest`. */
const sha1 = crypto.subtle.digest.bind(crypto.subtle);

async function accept(key: string): Promise<string> {
  const digest = await sha1(
    "SHA-1",
    new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

Deno.test("connectWebSocket refuses a bad handshake", async (t) => {
  const cases: [string, (key: string) => Promise<string>][] = [
    [
      "a wrong Sec-WebSocket-Accept",
      async () =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept("AAAAAAAAAAAAAAAAAAAAAA==")}\r\n\r\n`,
    ],
    [
      "a subprotocol not offered",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`,
    ],
    [
      "an extension not offered",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n` +
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    ],
    [
      "a 101 without Upgrade: websocket",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
    [
      "a 101 without Connection: Upgrade (RFC 6455 §4.1)",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
    [
      // RFC 6455 §4.1: "a value that is not an ASCII case-insensitive match for the value
      // 'websocket'": a list that holds it is not one (ws and Deno's WebSocket refuse it).
      "Upgrade: websocket, h2c",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
    [
      "an empty Sec-WebSocket-Protocol, none offered",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\nSec-WebSocket-Protocol: \r\n\r\n`,
    ],
    [
      "an HTTP/2.0 status line",
      async (key) =>
        "HTTP/2.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
    [
      "a malformed head (obs-fold), not the 400 a server would answer",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection:\r\n Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
    [
      "a head over maxHeadSize (16 KiB), not the 431 a server would answer",
      async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `X-Padding: ${"p".repeat(17_000)}\r\n` +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`,
    ],
  ];
  for (const [what, answer] of cases) {
    await t.step(`with 1002 for ${what}`, async () => {
      const server = rawServer(answer);
      try {
        await assert.rejects(
          connectWebSocket(server.url, { timeout: 5000 }),
          (e) => e instanceof WebSocketError && e.closeCode === 1002,
        );
      } finally {
        await server.close();
      }
    });
  }

  // A review (misc.ts, handshake.ts): answers that never end a head held the handshake for
  // the whole timeout (15 s), then failed with 1006; ws and Deno's WebSocket fail at once.
  const unending: [string, string][] = [
    ["another protocol's banner (SSH)", "SSH-2.0-OpenSSH_9.6\r\n"],
    ["a TLS alert", "\x15\x03\x03\x00\x02\x02\x46"],
    [
      "frames where the head should end",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\x81\x05hello",
    ],
  ];
  for (const [what, answer] of unending) {
    await t.step(`with 1002 at once for ${what}, the connection left open`, async () => {
      const server = rawServer(() => Promise.resolve(answer));
      try {
        const started = Date.now();
        await assert.rejects(
          connectWebSocket(server.url, { timeout: 10_000 }),
          (e) => e instanceof WebSocketError && e.closeCode === 1002,
        );
        const took = Date.now() - started;
        assert.ok(took < 2000, `${took} ms`);
      } finally {
        await server.close();
      }
    });
  }

  await t.step("with 1006 when the server does not answer within timeout", async () => {
    const server = rawServer(null);
    try {
      const started = Date.now();
      await assert.rejects(
        connectWebSocket(server.url, { timeout: 100 }),
        (e) => e instanceof WebSocketError && e.closeCode === 1006,
      );
      assert.ok(Date.now() - started < 2000);
    } finally {
      await server.close();
    }
  });

  await t.step("with 1006 when the connection ends inside the answer's head", async () => {
    // Not an HttpError: its status would be the 400 a server answers, which the server never
    // sent (a caller that takes 4xx for "do not retry" would give up on a hang-up).
    for (const answer of ["", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: web"]) {
      const server = rawServer(() => Promise.resolve(answer), { close: true });
      try {
        await assert.rejects(
          connectWebSocket(server.url, { timeout: 5000 }),
          (e) => e instanceof WebSocketError && e.closeCode === 1006,
          JSON.stringify(answer),
        );
      } finally {
        await server.close();
      }
    }
  });

  await t.step("with 1006 when nothing listens", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = `ws://127.0.0.1:${listener.addr.port}/`;
    listener.close();
    await assert.rejects(
      connectWebSocket(url, { timeout: 5000 }),
      (e) => e instanceof WebSocketError && e.closeCode === 1006,
    );
  });

  await t.step("with a TypeError for a fragment or another scheme", async () => {
    await assert.rejects(connectWebSocket("ws://127.0.0.1:1/#x"), TypeError);
    await assert.rejects(connectWebSocket("ftp://127.0.0.1:1/"), TypeError);
  });

  await t.step("with a RangeError for a bad session option, before connecting", async () => {
    // Port 1 has no server: an option checked after connecting would fail as a refused
    // connection instead.
    for (
      const options of [{ maxMessageSize: -1 }, { maxFrameSize: 0 }, { pingInterval: -5 }]
    ) {
      await assert.rejects(connectWebSocket("ws://127.0.0.1:1/", options), RangeError);
    }
  });

  await t.step(
    "with a TypeError for headers the handshake cannot carry, before connecting",
    async () => {
      for (
        const headers of [
          { "sec-websocket-protocol": "chat" },
          { "sec-websocket-extensions": "permessage-deflate" },
          { "content-length": "0" },
          { "transfer-encoding": "chunked" },
        ]
      ) {
        await assert.rejects(connectWebSocket("ws://127.0.0.1:1/", { headers }), TypeError);
      }
      await assert.rejects(connectWebSocket("ws://a:%zz@127.0.0.1:1/"), TypeError);
      await assert.rejects(connectWebSocket("ws://127.0.0.1:1/", { maxHeadSize: 0 }), RangeError);
      await assert.rejects(connectWebSocket("ws://127.0.0.1:1/", { maxHeadSize: 1.5 }), RangeError);
    },
  );

  await t.step(
    "with 1006, the reason as its cause, for a signal aborted before or during",
    async () => {
      const reason = new Error("given up");
      await assert.rejects(
        connectWebSocket("ws://127.0.0.1:1/", { signal: AbortSignal.abort(reason) }),
        (e) => e instanceof WebSocketError && e.closeCode === 1006 && e.cause === reason,
      );
      const server = rawServer(null);
      try {
        const controller = new AbortController();
        setTimeout(() => controller.abort(reason), 50);
        await assert.rejects(
          connectWebSocket(server.url, { signal: controller.signal }),
          (e) => e instanceof WebSocketError && e.closeCode === 1006 && e.cause === reason,
        );
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "with 1006, not a session, when the timeout passes while the 101 is checked",
    async () => {
      // The client's accept value takes 300 ms to work out here (the server's does not); the
      // timeout passes meanwhile, which closes the connection: no session on a closed
      // connection may come out of it.
      const server = rawServer(async (key) =>
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`
      );
      const digest = crypto.subtle.digest;
      crypto.subtle.digest = async function (
        this: SubtleCrypto,
        ...args: Parameters<typeof digest>
      ) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return await digest.apply(this, args);
      } as typeof digest;
      try {
        await assert.rejects(
          connectWebSocket(server.url, { timeout: 150 }),
          (e) => e instanceof WebSocketError && e.closeCode === 1006,
        );
      } finally {
        crypto.subtle.digest = digest;
        await server.close();
      }
    },
  );
});

Deno.test("connectWebSocket's opening handshake", async (t) => {
  const open = async (key: string) =>
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${await accept(key)}\r\n\r\n`;

  await t.step("skips interim responses before the 101 (RFC 9110 §15.2)", async () => {
    for (
      const interim of [
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
      ]
    ) {
      const server = rawServer(async (key) => interim + interim + await open(key));
      try {
        const session = await connectWebSocket(server.url, { timeout: 5000 });
        assert.equal(session.protocol, "");
        session.close();
      } finally {
        await server.close();
      }
    }
  });

  await t.step("takes 16 interim responses and refuses the 17th with 1002", async () => {
    const interim = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
    const accepted = rawServer(async (key) => interim.repeat(16) + await open(key));
    try {
      const session = await connectWebSocket(accepted.url, { timeout: 5000 });
      session.close();
    } finally {
      await accepted.close();
    }
    const refused = rawServer(async (key) => interim.repeat(17) + await open(key));
    try {
      await assert.rejects(connectWebSocket(refused.url, { timeout: 5000 }), (error) => {
        assert.ok(error instanceof WebSocketError, String(error));
        assert.equal(error.closeCode, 1002);
        assert.match(error.message, /more than 16 interim responses/);
        return true;
      });
    } finally {
      await refused.close();
    }
  });

  await t.step(
    "refuses a head one byte over maxHeadSize with 1002 (which takes 1 and up)",
    async () => {
      let size = 0;
      const answer = async (key: string) => {
        const head = await open(key);
        size = head.length;
        return head;
      };
      const measured = rawServer(answer);
      try {
        (await connectWebSocket(measured.url, { timeout: 5000 })).close();
      } finally {
        await measured.close();
      }
      // The key, and so the head's length, is the same for every handshake: base64 of 16 bytes.
      for (const [maxHeadSize, opens] of [[size, true], [size - 1, false], [1, false]] as const) {
        const server = rawServer(answer);
        try {
          const connecting = connectWebSocket(server.url, { timeout: 5000, maxHeadSize });
          if (opens) (await connecting).close();
          else {
            await assert.rejects(
              connecting,
              (e) => e instanceof WebSocketError && e.closeCode === 1002,
              `maxHeadSize ${maxHeadSize} against a ${size}-byte head`,
            );
          }
        } finally {
          await server.close();
        }
      }
    },
  );

  await t.step(
    "gives a non-101 answer's fields with its HttpError (Location, WWW-Authenticate)",
    async () => {
      const server = rawServer(() =>
        Promise.resolve(
          "HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/elsewhere\r\n" +
            'WWW-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n',
        )
      );
      try {
        const error = await connectWebSocket(server.url, { timeout: 5000 }).then(
          () => assert.fail("opened"),
          (e) => e,
        );
        assert.ok(error instanceof HttpError);
        assert.equal(error.status, 302);
        assert.equal(error.headers.get("location"), "ws://127.0.0.1:1/elsewhere");
        assert.equal(error.headers.get("www-authenticate"), 'Basic realm="x"');
      } finally {
        await server.close();
      }
    },
  );

  await t.step(
    "sends the URL's credentials as Basic, field values as Latin-1 bytes, a Host and protocols of the caller's",
    async () => {
      for (
        const [url, options, expected] of [
          [
            "ws://us%C3%A9r:p%40ss@127.0.0.1:PORT/x?y",
            { headers: { "x-latin": "caf\u00e9" }, protocols: "chat" },
            [
              "GET /x?y HTTP/1.1\r\n",
              `\r\nauthorization: Basic ${btoa("us\xc3\xa9r:p@ss")}\r\n`,
              "\r\nx-latin: caf\xe9\r\n",
              "\r\nhost: 127.0.0.1:PORT\r\n",
              "\r\nsec-websocket-protocol: chat\r\n",
            ],
          ],
          [
            "ws://user:pass@127.0.0.1:PORT/",
            { headers: { authorization: "Bearer t", host: "example.com" } },
            ["\r\nauthorization: Bearer t\r\n", "\r\nhost: example.com\r\n"],
          ],
        ] as const
      ) {
        const server = rawServer(null);
        try {
          const connecting = connectWebSocket(url.replace("PORT", String(server.port)), {
            ...options,
            timeout: 2000,
          }).then(() => "opened", (error) => error);
          const head = await Promise.race([
            server.request(),
            connecting.then((outcome) => assert.fail(`nothing sent: ${outcome}`)),
          ]);
          for (const line of expected) {
            const want = line.replace("PORT", String(server.port));
            assert.ok(head.includes(want), `${JSON.stringify(want)} in ${JSON.stringify(head)}`);
          }
        } finally {
          await server.close();
        }
      }
    },
  );
});
