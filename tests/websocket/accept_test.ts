// Copyright 2026 the wirestream authors. MIT license.
import {
  acceptWebSocket,
  type AcceptWebSocketOptions,
  Frame,
  FrameEncoder,
  HttpError,
  Opcode,
  readClosePayload,
  type Transport,
} from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { duplexPair, RawPeer } from "../_util/duplex.ts";
import { bytewise, concat } from "../_util/random.ts";

const utf8 = new TextEncoder();
const latin1 = new TextDecoder("latin1");

// The key and accept value of RFC 6455 §1.3.
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** The fields of a valid upgrade request; a test overrides or removes (null) some. */
function fields(changes: Record<string, string | null> = {}): string[] {
  const all: Record<string, string | null> = {
    Host: "example.com",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
    ...changes,
  };
  return Object.entries(all).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}`);
}

/** A request head: the request line, the field lines, and the empty line. */
function head(lines: string[], requestLine = "GET /chat?room=1 HTTP/1.1"): Uint8Array {
  return utf8.encode([requestLine, ...lines].join("\r\n") + "\r\n\r\n");
}

/** A masked client frame. */
function clientFrame(frame: Frame): Uint8Array {
  const chunks: Uint8Array[] = [];
  new FrameEncoder({ role: "client" }).encode(frame, { enqueue: (c) => chunks.push(c.slice()) });
  return concat(chunks);
}

/**
 * A server transport (with a `close()` that counts its calls) and the client's side of it.
 */
function connection(): { server: Transport & { closes: number }; client: Transport } {
  const [server, client] = duplexPair();
  const counted = {
    ...server,
    closes: 0,
    close() {
      counted.closes++;
    },
  };
  return { server: counted, client };
}

/** Everything the server wrote, up to the end of its output, as Latin-1 text. */
async function readAll(readable: ReadableStream<Uint8Array>): Promise<string> {
  return latin1.decode(concat(await Array.fromAsync(readable)));
}

/** Reads the 101 response head (written in one chunk) and releases the stream. */
async function readResponseHead(readable: ReadableStream<Uint8Array>): Promise<string> {
  const reader = readable.getReader();
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const { done, value } = await reader.read();
    assert.ok(!done, `the response ended after ${JSON.stringify(text)}`);
    text += latin1.decode(value);
  }
  reader.releaseLock();
  assert.ok(text.endsWith("\r\n\r\n"), "bytes after the 101 head came in its chunk");
  return text;
}

/** Sends `bytes` as the client, then expects an error answer of `status` and an HttpError. */
async function expectAnswer(
  bytes: Uint8Array | Uint8Array[],
  status: number,
  options: AcceptWebSocketOptions = {},
  endInput = false,
): Promise<{ response: string; error: HttpError; closes: number }> {
  const { server, client } = connection();
  const accepting = acceptWebSocket(server, options);
  accepting.catch(() => {});
  const writer = client.writable.getWriter();
  const chunks = Array.isArray(bytes) ? bytes : [bytes];
  const writing = (async () => {
    for (const chunk of chunks) await writer.write(chunk);
    if (endInput) await writer.close();
  })();
  writing.catch(() => {});
  const response = await readAll(client.readable);
  let error: HttpError | undefined;
  await assert.rejects(accepting, (e) => {
    assert.ok(e instanceof HttpError, `expected an HttpError, got ${e}`);
    error = e;
    return true;
  });
  assert.equal(error!.status, status);
  assert.match(response, new RegExp(`^HTTP/1\\.1 ${status} `), response);
  const [responseHead, body] = response.split("\r\n\r\n");
  // A 426 also carries the upgrade option that goes with its Upgrade (RFC 9110 §7.8).
  assert.match(responseHead!, /\r\nconnection: close(, upgrade)?(\r\n|$)/i);
  const length = /\r\ncontent-length: (\d+)/i.exec(responseHead!);
  assert.ok(length !== null, "no content-length");
  assert.equal(Number(length[1]), utf8.encode(body!).length);
  assert.equal(body, error!.message + "\n");
  // acceptWebSocket leaves the request's side unread: cancel it so pending writes end.
  await server.readable.cancel().catch(() => {});
  await writing.catch(() => {});
  return { response, error: error!, closes: server.closes };
}

Deno.test("acceptWebSocket", async (t) => {
  await t.step("answers 101 with the accept value and starts a server session", async () => {
    const { server, client } = connection();
    const accepting = acceptWebSocket(server, { timeout: 1000 });
    const writer = client.writable.getWriter();
    await writer.write(head(fields({ Origin: "https://example.com" })));
    // The 101 write completes once the client reads it: read it alongside.
    const [{ session, request }, response] = await Promise.all([
      accepting,
      readResponseHead(client.readable),
    ]);
    assert.equal(
      response,
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "upgrade: websocket\r\n" +
        "connection: Upgrade\r\n" +
        `sec-websocket-accept: ${ACCEPT}\r\n\r\n`,
    );
    assert.equal(session.role, "server");
    assert.equal(session.protocol, "");
    assert.equal(request.url, "http://example.com/chat?room=1");
    assert.equal(request.method, "GET");
    assert.equal(request.headers.get("sec-websocket-key"), KEY);
    assert.equal(request.headers.get("origin"), "https://example.com");
    writer.releaseLock();
    const peer = new RawPeer(client, "client");
    const reader = session.incoming.getReader();
    await peer.send(Frame.text("hello"));
    assert.equal((await reader.read()).value, "hello");
    const sent = session.send("hi");
    const reply = await peer.next();
    assert.equal(new TextDecoder().decode(reply!.payload), "hi");
    await sent;
    await peer.send(Frame.close(1000));
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    assert.equal(await peer.next(), null);
    assert.deepEqual(await session.closed, { code: 1000, reason: "", wasClean: true });
    assert.equal(server.closes, 0);
  });

  await t.step("hands the bytes read past the head to the session", async () => {
    const { server, client } = connection();
    const accepting = acceptWebSocket(server, { timeout: 1000 });
    const writer = client.writable.getWriter();
    // The head and two frames in one chunk, as a client that does not wait for the 101 sends.
    await writer.write(
      concat([head(fields()), clientFrame(Frame.text("early")), clientFrame(Frame.close(4000))]),
    );
    const [{ session }] = await Promise.all([accepting, readResponseHead(client.readable)]);
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "early");
    assert.deepEqual(await reader.read(), { done: true, value: undefined });
    writer.releaseLock();
    const peer = new RawPeer(client, "client");
    const close = await peer.next();
    assert.equal(readClosePayload(close!.payload).code, 4000);
    assert.equal(await peer.next(), null);
    assert.deepEqual(await session.closed, { code: 4000, reason: "", wasClean: true });
  });

  await t.step("reads a head that arrives one byte at a time", async () => {
    const { server, client } = connection();
    const accepting = acceptWebSocket(server, { timeout: 1000 });
    const writer = client.writable.getWriter();
    const writing = (async () => {
      for (const byte of bytewise(concat([head(fields()), clientFrame(Frame.text("x"))]))) {
        await writer.write(byte);
      }
    })();
    const [{ session }] = await Promise.all([accepting, readResponseHead(client.readable)]);
    const reader = session.incoming.getReader();
    assert.equal((await reader.read()).value, "x");
    await writing;
    writer.releaseLock();
    const peer = new RawPeer(client, "client");
    await peer.send(Frame.close(1000));
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    assert.equal((await session.closed).code, 1000);
  });

  await t.step("agrees on the client's first subprotocol that the server supports", async () => {
    for (
      const [offered, supported, agreed] of [
        ["v1.chat, v2.chat", ["v2.chat", "v1.chat"], "v1.chat"],
        ["mqtt", ["v1.chat"], ""],
        [null, ["v1.chat"], ""],
      ] as const
    ) {
      const { server, client } = connection();
      const accepting = acceptWebSocket(server, { protocols: supported, timeout: 1000 });
      const writer = client.writable.getWriter();
      await writer.write(head(fields({ "Sec-WebSocket-Protocol": offered })));
      const [{ session }, response] = await Promise.all([
        accepting,
        readResponseHead(client.readable),
      ]);
      assert.equal(session.protocol, agreed);
      if (agreed === "") assert.doesNotMatch(response, /sec-websocket-protocol/i);
      else assert.match(response, new RegExp(`\r\nsec-websocket-protocol: ${agreed}\r\n`));
      writer.releaseLock();
      const peer = new RawPeer(client, "client");
      await peer.send(Frame.close(1000));
      assert.equal((await peer.next())?.opcode, Opcode.Close);
      assert.equal((await session.closed).code, 1000);
    }
  });

  await t.step("passes session options on: maxMessageSize gives 1009", async () => {
    const { server, client } = connection();
    const accepting = acceptWebSocket(server, { maxMessageSize: 10, timeout: 100 });
    const writer = client.writable.getWriter();
    await writer.write(head(fields()));
    const [{ session }] = await Promise.all([accepting, readResponseHead(client.readable)]);
    const failed = session.incoming.getReader().read();
    failed.catch(() => {});
    writer.releaseLock();
    const peer = new RawPeer(client, "client");
    await peer.send(Frame.binary(new Uint8Array(11)));
    const close = await peer.next();
    assert.equal(readClosePayload(close!.payload).code, 1009);
    await assert.rejects(failed, { closeCode: 1009 });
    await peer.end();
    assert.equal((await session.closed).code, 1009);
  });

  await t.step("answers 426 with Sec-WebSocket-Version: 13 to another version", async () => {
    const { response, closes } = await expectAnswer(
      head(fields({ "Sec-WebSocket-Version": "8" })),
      426,
    );
    assert.match(response, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(response, /\r\nsec-websocket-version: 13\r\n/i);
    assert.match(response, /\r\nupgrade: websocket\r\n/i); // RFC 9110 §15.5.22
    assert.equal(closes, 1, "transport.close() was not called");
  });

  await t.step("answers 403 when checkOrigin refuses the origin", async () => {
    const seen: (string | null)[] = [];
    const { response } = await expectAnswer(head(fields({ Origin: "https://evil.example" })), 403, {
      checkOrigin: (origin) => {
        seen.push(origin);
        return origin === "https://example.com";
      },
    });
    assert.match(response, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.deepEqual(seen, ["https://evil.example"]);
  });

  await t.step("answers 431 to a head over maxHeadSize", async () => {
    const big = head(fields({ Cookie: "a".repeat(300) }));
    const { response } = await expectAnswer(big, 431, { maxHeadSize: 256 });
    assert.match(response, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    // The limit holds while the head is still incomplete, whatever the chunking.
    await expectAnswer(bytewise(big.subarray(0, 300)), 431, { maxHeadSize: 256 });
  });

  await t.step("accepts a head of exactly maxHeadSize bytes", async () => {
    const exact = head(fields());
    const { server, client } = connection();
    const accepting = acceptWebSocket(server, { maxHeadSize: exact.length, timeout: 1000 });
    const writer = client.writable.getWriter();
    await writer.write(exact);
    const [{ session }] = await Promise.all([accepting, readResponseHead(client.readable)]);
    writer.releaseLock();
    const peer = new RawPeer(client, "client");
    await peer.send(Frame.close(1000));
    assert.equal((await peer.next())?.opcode, Opcode.Close);
    assert.equal((await session.closed).code, 1000);
    await expectAnswer(exact, 431, { maxHeadSize: exact.length - 1 });
  });

  const bad: [string, Uint8Array][] = [
    ["a POST", head(fields(), "POST /chat HTTP/1.1")],
    ["HTTP/1.0", head(fields(), "GET /chat HTTP/1.0")],
    ["no Host", head(fields({ Host: null }))],
    ["no Upgrade", head(fields({ Upgrade: null }))],
    ["Upgrade: h2c", head(fields({ Upgrade: "h2c" }))],
    ["no Connection: upgrade", head(fields({ Connection: "keep-alive" }))],
    ["no key", head(fields({ "Sec-WebSocket-Key": null }))],
    ["a key that is not 16 bytes", head(fields({ "Sec-WebSocket-Key": "c2hvcnQ=" }))],
    ["a subprotocol that is not a token", head(fields({ "Sec-WebSocket-Protocol": "a b, c" }))],
    ["a malformed request line", head(fields(), "GET /chat")],
    ["a bare LF", utf8.encode("GET / HTTP/1.1\nHost: example.com\r\n\r\n")],
    ["an obs-folded field", head([...fields(), " folded"])],
    ["whitespace before a colon", head([...fields(), "X-Bad : 1"])],
  ];
  for (const [what, bytes] of bad) {
    await t.step(`answers 400 to ${what}`, async () => {
      const { response, closes } = await expectAnswer(bytes, 400);
      assert.match(response, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.equal(closes, 1);
    });
  }

  await t.step("answers 400 when the connection ends inside the head", async () => {
    const { error } = await expectAnswer(utf8.encode("GET / HTTP/1.1\r\nHost: a"), 400, {}, true);
    assert.match(error.message, /ended/);
  });

  await t.step("rejects with 400 and writes nothing when reading the head fails", async () => {
    const [server, client] = duplexPair();
    const failing: Transport = {
      readable: new ReadableStream({ pull: (c) => c.error(new Error("reset")) }),
      writable: server.writable,
    };
    const accepting = acceptWebSocket(failing);
    accepting.catch(() => {});
    const response = await readAll(client.readable); // a failed connection gets no answer
    assert.equal(response, "");
    await assert.rejects(accepting, (e) => e instanceof HttpError && e.status === 400);
    await client.writable.abort();
  });

  await t.step("throws the HttpError even when the answer cannot be written", async () => {
    const failing: Transport = {
      readable: ReadableStream.from([head(fields({ "Sec-WebSocket-Version": "8" }))]),
      writable: new WritableStream({
        write() {
          throw new Error("broken pipe");
        },
      }),
    };
    await assert.rejects(
      acceptWebSocket(failing),
      (e) => e instanceof HttpError && e.status === 426,
    );
  });
});
