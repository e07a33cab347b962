// Copyright 2026 the wirestream authors. MIT license.
// Regressions found in review of the pipeline: each step reproduces a defect that once existed.
import assert from "node:assert/strict";
import {
  type ConnectionPipelineOptions,
  type Handler,
  httpServer,
  startConnectionPipeline,
  upgradeWebSocket,
} from "@wirestream/wirestream";
import { deferred, delay, within } from "../_util/async.ts";
import { dial, textOf } from "../_util/http.ts";
import net from "node:net";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A pipeline over an in-memory duplex, with the output collected as text. */
function open(
  handler: Handler,
  options: ConnectionPipelineOptions = {},
  writable?: WritableStream<Uint8Array>,
) {
  const up = new TransformStream<Uint8Array, Uint8Array>();
  const down = new TransformStream<Uint8Array, Uint8Array>();
  const pipeline = startConnectionPipeline(
    { readable: up.readable, writable: writable ?? down.writable },
    handler,
    options,
  );
  const writer = up.writable.getWriter();
  let text = "";
  const reading = writable ? Promise.resolve() : (async () => {
    for await (const chunk of down.readable) text += decoder.decode(chunk);
  })().catch(() => {});
  return {
    pipeline,
    send: (data: string) => writer.write(encoder.encode(data)).catch(() => {}),
    end: () => writer.close().catch(() => {}),
    /** Fails the input, as a reset connection does. */
    fail: () => writer.abort(new Error("reset")).catch(() => {}),
    get text() {
      return text;
    },
    reading,
  };
}

const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/**
 * A transport that reads and writes directly (as a Deno.Conn does), whose reads the test
 * completes with `deliver`: a read settles exactly when the test says, so a step can act in
 * the microtask turns right after one.
 */
function directTransport() {
  let pending: ((n: number | null) => void) | null = null;
  let buffer: Uint8Array | null = null;
  const transport = {
    closed: false,
    read(p: Uint8Array): Promise<number | null> {
      if (transport.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
      buffer = p;
      return new Promise<number | null>((resolve) => (pending = resolve));
    },
    written: 0,
    write(p: Uint8Array): Promise<number> {
      if (transport.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
      transport.written += p.length;
      return Promise.resolve(p.length);
    },
    close(): void {
      transport.closed = true;
      const complete = pending;
      pending = null;
      complete?.(null);
    },
    readable: new ReadableStream<Uint8Array>(),
    writable: new WritableStream<Uint8Array>(),
    /** Completes the read under way (waiting for the pipeline to start one) with `bytes`. */
    async deliver(bytes: Uint8Array): Promise<void> {
      while (pending === null) await delay(1);
      buffer!.set(bytes);
      const complete = pending;
      pending = null;
      complete(bytes.length);
    },
  };
  return transport;
}

Deno.test("startConnectionPipeline (review regressions)", async (t) => {
  await t.step("finishes when the writer stops while the request queue is full", async () => {
    // A body that fails once its head went out: the connection is cut, the writer stops. (One
    // that fails before anything was written is answered with 500 instead.)
    const c = open(
      () => {
        let pulls = 0;
        return new Response(
          new ReadableStream({
            async pull(controller) {
              if (pulls++ === 0) return controller.enqueue(new Uint8Array(1));
              await delay(20);
              controller.error(new Error("body failed"));
            },
          }),
        );
      },
      { maxPipelined: 1 },
    );
    const logged: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void logged.push(args[1]);
    try {
      c.send(GET + GET + GET);
      await within(c.pipeline.finished, 3000, "finished");
    } finally {
      console.error = original;
    }
    assert.deepEqual(logged.map((e) => (e as Error).message), ["body failed"]); // reported
    c.end();
  });

  await t.step("runs at most maxPipelined handlers for a client that never reads", async () => {
    let handled = 0;
    const stuck = new WritableStream<Uint8Array>({ write: () => new Promise(() => {}) });
    const c = open(
      () => {
        handled++;
        return new Response(new Uint8Array(16_000));
      },
      { maxPipelined: 16, writeTimeout: 300 },
      stuck,
    );
    c.send(GET.repeat(2000));
    await delay(150);
    assert.ok(handled <= 16, `${handled} handlers ran for a client that reads nothing`);
    await within(c.pipeline.finished, 3000, "the write timeout to end the connection");
    c.end();
  });

  await t.step("writes a streamed response's head before its first chunk", async () => {
    let push!: (chunk: string) => void;
    const c = open(() =>
      new Response(
        new ReadableStream<string>({
          start: (controller) => void (push = (s) => controller.enqueue(s)),
        })
          .pipeThrough(new TextEncoderStream()),
      )
    );
    c.send(GET);
    await delay(100);
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*transfer-encoding: chunked\r\n\r\n$/);
    push("later");
    await delay(20);
    assert.match(c.text, /5\r\nlater\r\n$/);
    c.end();
    await within(c.pipeline.finished, 3000, "finished");
  });

  await t.step("writes the chunks a stream had ready at once before waiting for more", async () => {
    // Review (held.ts, latency.ts): an SSE greeting, or chunks ready when the handler answered,
    // were taken by the read-ahead and then held until the stream's next chunk: forever for
    // a stream that then waits.
    for (const ready of [["connected"], ["one", "two"]]) {
      let push!: (chunk: string) => void;
      const c = open(() =>
        new Response(
          new ReadableStream<string>({
            start(controller) {
              for (const chunk of ready) controller.enqueue(chunk);
              push = (s) => controller.enqueue(s);
            },
          }).pipeThrough(new TextEncoderStream()),
        )
      );
      c.send(GET);
      await delay(100);
      const sent = ready.map((chunk) => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join("");
      assert.ok(c.text.endsWith(`\r\n\r\n${sent}`), JSON.stringify(c.text));
      push("later");
      await delay(20);
      assert.match(c.text, /5\r\nlater\r\n$/);
      c.end();
      await within(c.pipeline.finished, 3000, "finished");
    }
  });

  await t.step("sends 100 Continue to an echo that returned before reading", async () => {
    const c = open((request) => new Response(request.body));
    c.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    await delay(100);
    assert.match(c.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    c.send("hello");
    await delay(50);
    assert.match(c.text, /5\r\nhello\r\n0\r\n\r\n$/);
    c.end();
    await within(c.pipeline.finished, 3000, "finished");
  });

  await t.step("cancels a streamed response body when the client leaves, and cuts it", async () => {
    // Review (repro_halfclose_truncated.ts): the cancelled body's read settled as done, and
    // the client got the last chunk of a body cut short.
    for (const leave of ["end", "fail"] as const) {
      let cancelled = false;
      const c = open(() =>
        new Response(
          new ReadableStream({
            start: (controller) => controller.enqueue(encoder.encode("tick")),
            cancel: () => void (cancelled = true),
          }),
        )
      );
      c.send(GET);
      await delay(50);
      c[leave]();
      await within(c.pipeline.finished, 3000, "finished");
      await c.reading;
      assert.equal(cancelled, true, leave);
      assert.match(c.text, /transfer-encoding: chunked\r\n[\s\S]*\r\n4\r\ntick\r\n$/, leave);
    }
  });

  await t.step("fails the session of an upgrade whose 101 is never written", async () => {
    const sessions: Promise<{ code: number }>[] = [];
    const c = open((request) => {
      if (new URL(request.url).pathname === "/first") {
        return new Response("bye", { headers: { connection: "close" } });
      }
      const { response, session } = upgradeWebSocket(request);
      sessions.push(session.closed);
      session.incoming.cancel().catch(() => {});
      return response;
    });
    c.send(
      "GET /first HTTP/1.1\r\nHost: a\r\n\r\n" +
        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await within(c.pipeline.finished, 3000, "finished");
    assert.equal(sessions.length, 1, "the handler upgraded");
    assert.equal((await within(sessions[0]!, 3000, "the session")).code, 1006);
    c.end();
  });

  await t.step(
    "answers 500, not a whole response with a wrong Content-Length, keeping earlier ones",
    async () => {
      const c = open((request) =>
        new URL(request.url).pathname === "/ok"
          ? new Response("fine")
          : new Response("hello", { headers: { "content-length": "10" } })
      );
      const errors: unknown[] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => void errors.push(args);
      try {
        c.send("GET /ok HTTP/1.1\r\nHost: a\r\n\r\n" + GET);
        await within(c.pipeline.finished, 3000, "finished");
        await c.reading;
      } finally {
        console.error = original;
      }
      assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nfineHTTP\/1\.1 500 /);
      assert.equal(errors.length, 1);
      c.end();
    },
  );

  await t.step(
    "finishes when abort() comes in the turns after a request head was read",
    async () => {
      // Review (schedule fuzzing, repro_abort_race.ts): the read loop went on after the head's
      // read settled, ran the handler and queued its request behind a write loop that abort()
      // had ended, then waited for that request's body forever: `finished` never resolved.
      const request = encoder.encode(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello",
      );
      for (const split of [false, true]) {
        for (let turns = 0; turns <= 20; turns++) {
          const transport = directTransport();
          let ran = false, aborted = false, completed = false;
          const pipeline = startConnectionPipeline(transport, (request, info) => {
            ran = true;
            request.signal.addEventListener("abort", () => (aborted = true));
            info.completed.then(() => (completed = true));
            return new Response("ok");
          });
          if (split) {
            await transport.deliver(request.subarray(0, 10)); // the head in two reads
            await delay(5);
            await transport.deliver(request.subarray(10));
          } else await transport.deliver(request);
          for (let i = 0; i < turns; i++) await null;
          pipeline.abort();
          const what = `finished (split: ${split}, abort() ${turns} turns after the read)`;
          await within(pipeline.finished, 1000, what);
          await null;
          // A handler that ran is done with: its response written, or its signal aborted.
          if (ran) assert.ok(completed && (aborted || transport.written > 0), what);
        }
      }
    },
  );

  await t.step("refuses framing headers with 0xA0 around their values", async () => {
    for (const field of ["Content-Length: \xa03", "Transfer-Encoding: \xa0chunked"]) {
      const c = open(() => new Response("x"));
      await c.send(`POST / HTTP/1.1\r\nHost: a\r\n${field}\r\n\r\n`);
      await within(c.pipeline.finished, 3000, field);
      await c.reading;
      assert.match(c.text, /^HTTP\/1\.1 (400|501) /, field);
      c.end();
    }
  });

  await t.step("refuses an absolute-form target with another scheme or a bad host", async () => {
    for (const target of ["https://bank.example/admin", "http://a b/"]) {
      const c = open((request) => new Response(request.url));
      await c.send(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await within(c.pipeline.finished, 3000, target);
      await c.reading;
      assert.match(c.text, /^HTTP\/1\.1 400 /, target);
      c.end();
    }
  });

  await t.step("refuses a lowercase head request with 501 and its whole body", async () => {
    // "The method token is case-sensitive" (RFC 9110 §9.1): `head` is not HEAD, so its
    // response is not framed as HEAD's, and a Request could only report it as HEAD.
    let calls = 0;
    const c = open(() => (calls++, new Response("hello")));
    await c.send("head / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    await within(c.pipeline.finished, 3000, "finished");
    await c.reading;
    assert.match(c.text, /^HTTP\/1\.1 501 /);
    const length = Number(/content-length: (\d+)\r\n/i.exec(c.text)?.[1]);
    assert.equal(c.text.length - c.text.indexOf("\r\n\r\n") - 4, length, "the whole body");
    assert.equal(calls, 0, "no handler ran");
    c.end();
  });
});

/**
 * A raw TCP client (node:net, which can reset a connection): `leave("fin")` ends its side,
 * `leave("reset")` resets the connection.
 */
async function tcpClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.on("data", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
  return {
    send: (data: string) => void socket.write(data),
    leave(how: "fin" | "reset"): void {
      if (how === "fin") socket.end();
      else socket.resetAndDestroy();
    },
    /** Closes the socket (if the server did not) and waits until it is. */
    async close(): Promise<void> {
      socket.destroy();
      await closed;
    },
  };
}

const UPGRADE = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

Deno.test("httpServer (review regressions)", async (t) => {
  await t.step(
    "aborts request.signal when the client leaves while the read loop waits with requests in flight",
    async () => {
      // Review (schedule fuzzing, repro_signal_watch.ts): nothing read the connection while
      // maxPipelined requests were in flight (with maxPipelined: 1, every request), while a
      // request with an Upgrade header waited for its answer, or after a malformed request
      // pipelined behind one: a handler waiting on request.signal held the connection forever.
      const cases: [string, ConnectionPipelineOptions, string, number][] = [
        ["maxPipelined: 1", { maxPipelined: 1 }, GET, 1],
        ["16 requests in flight, maxPipelined 16", {}, GET.repeat(16), 16],
        ["20 requests sent, maxPipelined 4", { maxPipelined: 4 }, GET.repeat(20), 4],
        ["an Upgrade header", {}, UPGRADE, 1],
        ["a malformed request behind", {}, GET + "NOT HTTP\r\n\r\n", 1],
      ];
      const missed: string[] = [];
      for (const [name, options, wire, handlers] of cases) {
        for (const how of ["fin", "reset"] as const) {
          const what = `${name}, client ${how}`;
          let started = 0, aborted = 0;
          const all = deferred(), gone = deferred();
          const server = httpServer(
            { hostname: "127.0.0.1", port: 0, shutdownTimeout: 1000, ...options },
            async (request) => {
              if (++started === handlers) all.resolve();
              await new Promise((resolve) => request.signal.addEventListener("abort", resolve));
              if (++aborted === handlers) gone.resolve();
              return new Response("too late");
            },
          );
          const client = await tcpClient(server.addr.port);
          try {
            client.send(wire);
            await within(all.promise, 2000, `${what}: the handlers to start`);
            await delay(20); // the read loop waits now
            client.leave(how);
            await within(gone.promise, 1000, "").catch(() => missed.push(what));
            await delay(20);
            // A client gone: no more of its requests are read (20 were sent to the third).
            assert.equal(started, handlers, `${what}: handlers started`);
          } finally {
            await client.close();
            await within(server.shutdown(), 3000, `${what}: shutdown()`);
          }
        }
      }
      assert.deepEqual(missed, [], "request.signal did not abort within 1 s");
    },
  );

  await t.step(
    "aborts request.signal when the client leaves before an upgrade answered behind it is written",
    async () => {
      // Found re-running the review's h6 harness (seed 1036): the read loop stopped at the
      // upgrade's answer, and the watch with it once bytes came after, while the 101 waited
      // behind a handler that waits on its signal.
      for (const how of ["fin", "reset"] as const) {
        const waiting = deferred(), gone = deferred();
        const closed = deferred<{ code: number }>();
        const server = httpServer({ hostname: "127.0.0.1", port: 0 }, async (request) => {
          if (request.headers.has("upgrade")) {
            const { response, session } = upgradeWebSocket(request);
            session.closed.then(closed.resolve);
            return response;
          }
          waiting.resolve();
          await new Promise((resolve) => request.signal.addEventListener("abort", resolve));
          gone.resolve();
          return new Response("too late");
        });
        const client = await tcpClient(server.addr.port);
        try {
          client.send(GET + UPGRADE);
          await within(waiting.promise, 2000, `${how}: the first handler to start`);
          await delay(20);
          client.send("early frame bytes"); // read by the watch, kept for the session
          await delay(20);
          client.leave(how);
          await within(gone.promise, 2000, `${how}: request.signal to abort`);
          assert.equal((await within(closed.promise, 2000, `${how}: the session`)).code, 1006);
        } finally {
          await client.close();
          await within(server.shutdown(), 3000, `${how}: shutdown()`);
        }
      }
    },
  );

  await t.step(
    "a client that half-closes gets no body cut short that looks whole, whatever the timing",
    async () => {
      // Review (schedule fuzzing, repro_halfclose_truncated.ts): a client's FIN while a
      // chunked body streamed cancelled the body, whose cancelled read then ended it with a
      // proper last chunk; a FIN that came before the body started let it stream whole. Now a
      // FIN with responses owed is a client gone, as Deno.serve and Node take it: what is
      // ready goes out, a body that streams is cut, and nothing is written after.
      const cancels: Promise<void>[] = [];
      const server = httpServer({ hostname: "127.0.0.1", port: 0 }, async (request) => {
        const path = new URL(request.url).pathname;
        if (path === "/ready") return new Response("ready"); // all there at once
        if (path.startsWith("/late")) await delay(30); // answers after the FIN
        const cancelled = deferred();
        cancels.push(cancelled.promise);
        let n = 0, timer: ReturnType<typeof setInterval> | undefined;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            timer = setInterval(() => {
              controller.enqueue(encoder.encode(`line ${n++}\n`)); // 7 bytes a line
              if (n === 10) {
                clearInterval(timer);
                controller.close();
              }
            }, 20);
          },
          cancel() {
            clearInterval(timer);
            cancelled.resolve();
          },
        });
        const headers: Record<string, string> = path.endsWith("length")
          ? { "content-length": "70" }
          : {};
        return new Response(body, { headers });
      });
      try {
        for (const path of ["/chunked", "/length", "/late", "/late-length", "/ready"]) {
          for (const finAfter of [0, 50]) {
            for (const connection of ["keep-alive", "close"]) {
              const what = `${path}, FIN after ${finAfter} ms, ${connection}`;
              const c = await dial(server.addr.port);
              try {
                await c.send(
                  `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: ${connection}\r\n\r\n`,
                );
                await delay(finAfter);
                await c.conn.closeWrite(); // still reading the answer
                const response = await within(c.responses.next(), 3000, what);
                const rest = await within(c.responses.rest(), 3000, what);
                assert.equal(rest.length, 0, `${what}: nothing after the response`);
                if (response === null) continue; // nothing was written: fine
                if (response.complete) {
                  // Only a response that was all there when the FIN came.
                  assert.equal(path, "/ready", `${what}: a whole response`);
                  assert.equal(textOf(response.body), "ready", what);
                } else {
                  assert.ok(response.body.length < 70, `${what}: all of the body, cut`);
                }
              } finally {
                await c.close();
              }
            }
          }
        }
        await within(Promise.all(cancels), 3000, "every body that was cut to be cancelled");
      } finally {
        await within(server.shutdown(), 3000, "shutdown()");
      }
    },
  );

  await t.step("closes a connection past maxConnections at once", async () => {
    const server = httpServer(
      { hostname: "127.0.0.1", port: 0, maxConnections: 1 },
      () => new Response("ok"),
    );
    const first = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const second = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await first.write(encoder.encode(GET));
      const buffer = new Uint8Array(1024);
      const n = await within(first.read(buffer), 3000, "the first answer");
      assert.match(decoder.decode(buffer.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
      await second.write(encoder.encode(GET)).catch(() => 0);
      const m = await within(second.read(buffer).catch(() => null), 3000, "the second to close");
      assert.equal(m, null, "the second connection is closed, unanswered");
      assert.throws(
        () => httpServer({ port: 0, maxConnections: 0 }, () => new Response()),
        RangeError,
      );
    } finally {
      first.close();
      second.close();
      await server.shutdown();
    }
  });
});
