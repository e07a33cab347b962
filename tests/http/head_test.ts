// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { HttpError } from "@wirestream/wirestream";
import { hasToken, type Head, parseHead, readHead } from "../../lib/websocket/_head.ts";
import { bytewise, concat, seeded, split } from "../_util/random.ts";

/** Bytes of a string of code points 0–255, one byte each (heads are not UTF-8). */
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

const REQUEST = "GET /chat?room=1 HTTP/1.1\r\n" + // request line
  "Host: example.com\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: keep-alive, Upgrade\r\n" +
  "X-Empty:\r\n" + // an empty value
  "X-Padded: \t v a l \t\r\n" + // whitespace around the value is dropped, not inside
  "X-Twice: 1\r\n" +
  "x-twice: 2\r\n" + // repeated: combined
  "\r\n";

const RESPONSE = "HTTP/1.1 101 Switching Protocols\r\n" + // status line
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
  "\r\n";

const NONE = new Uint8Array(0);

/** A head as plain data, to compare with deepEqual. */
function plain(head: Head) {
  return { start: head.start, headers: [...head.headers], rest: [...head.rest] };
}

/** Asserts that `fn` throws an HttpError with `status`. */
function throwsStatus(fn: () => unknown, status: number, message?: string): void {
  assert.throws(fn, (error) => {
    assert(error instanceof HttpError, message);
    assert.equal(error.status, status, message);
    return true;
  });
}

/** A head of `kind` with `line` added as a field line. */
function withLine(line: string, kind: "request" | "response" = "request"): Uint8Array {
  const start = kind === "request" ? "GET / HTTP/1.1\r\n" : "HTTP/1.1 101 Switching Protocols\r\n";
  return bytes(`${start}Host: a\r\n${line}\r\n\r\n`);
}

/** A stream of `chunks`, each a copy. */
function streamOf(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => c.slice()));
}

Deno.test("parseHead", async (t) => {
  await t.step("parses a request: the request line and the fields", () => {
    const rest = Uint8Array.of(1, 2);
    const head = parseHead(bytes(REQUEST), rest, "request");
    assert.deepEqual(head.start, ["GET", "/chat?room=1", "HTTP/1.1"]);
    assert.equal(head.headers.get("host"), "example.com");
    assert.equal(head.headers.get("connection"), "keep-alive, Upgrade");
    assert.equal(head.headers.get("x-empty"), "");
    assert.equal(head.headers.get("x-padded"), "v a l");
    assert.equal(head.headers.get("x-twice"), "1, 2");
    assert.equal(head.rest, rest);
  });

  await t.step("parses a response: the status line and the fields", () => {
    const head = parseHead(bytes(RESPONSE), NONE, "response");
    assert.deepEqual(head.start, ["HTTP/1.1", "101", "Switching Protocols"]);
    assert.equal(head.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert.deepEqual(parseHead(bytes("HTTP/1.1 101\r\n\r\n"), NONE, "response").start, [
      "HTTP/1.1",
      "101",
      "",
    ]);
    assert.deepEqual(parseHead(bytes("HTTP/1.1 400 \r\n\r\n"), NONE, "response").start, [
      "HTTP/1.1",
      "400",
      "",
    ]);
  });

  await t.step("parses a head with no fields", () => {
    const head = parseHead(bytes("GET / HTTP/1.1\r\n\r\n"), NONE, "request");
    assert.deepEqual(plain(head), { start: ["GET", "/", "HTTP/1.1"], headers: [], rest: [] });
  });

  await t.step("rejects a malformed request line with 400", () => {
    for (
      const line of [
        "GET /chat", // no version
        "GET  /chat HTTP/1.1", // two spaces
        "GET /chat HTTP/1.1 ", // trailing space
        "GET /chat HTTP/11",
        "G(T /chat HTTP/1.1", // the method is not a token
        "",
      ]
    ) {
      throwsStatus(
        () => parseHead(bytes(`${line}\r\nHost: a\r\n\r\n`), NONE, "request"),
        400,
        line,
      );
    }
  });

  await t.step("rejects a malformed status line with 400", () => {
    for (const line of ["HTTP/1.1 abc", "HTTP/1.1 10 OK", "ICY 200 OK", "HTTP/1.1", ""]) {
      throwsStatus(() => parseHead(bytes(`${line}\r\n\r\n`), NONE, "response"), 400, line);
    }
  });

  await t.step(
    "rejects a status code of four digits or with no space after it",
    () => {
      // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ], and
      // status-code = 3DIGIT. The parser takes the first three digits and leaves the rest to the
      // reason: "HTTP/1.1 1011 Nope" gives ["HTTP/1.1", "101", "1 Nope"], a switch of protocols.
      for (
        const line of ["HTTP/1.1 1011 Nope", "HTTP/1.1 1010", "HTTP/1.1 101Switching Protocols"]
      ) {
        throwsStatus(() => parseHead(bytes(`${line}\r\n\r\n`), NONE, "response"), 400, line);
      }
    },
  );

  await t.step("rejects a bare LF, a bare CR or a NUL anywhere with 400", () => {
    const heads = [
      "GET / HTTP/1.1\nHost: a\r\n\r\n", // bare LF after the request line
      "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", // bare LF between fields
      "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", // bare CR in a value
      "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", // NUL in a value
      "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", // NUL in the target
      "GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n", // CR in a name
    ];
    for (const head of heads) {
      throwsStatus(() => parseHead(bytes(head), NONE, "request"), 400, JSON.stringify(head));
    }
    throwsStatus(() => parseHead(bytes("HTTP/1.1 101 OK\nX: y\r\n\r\n"), NONE, "response"), 400);
  });

  await t.step("rejects obs-fold (a line starting with a space or tab) with 400", () => {
    throwsStatus(() => parseHead(withLine("X: a\r\n b"), NONE, "request"), 400);
    throwsStatus(() => parseHead(withLine("X: a\r\n\tb"), NONE, "request"), 400);
    throwsStatus(() => parseHead(withLine(" X: a"), NONE, "request"), 400);
    throwsStatus(() => parseHead(withLine("X: a\r\n b", "response"), NONE, "response"), 400);
  });

  await t.step("rejects whitespace before the colon with 400", () => {
    throwsStatus(() => parseHead(withLine("Host : a"), NONE, "request"), 400);
    throwsStatus(() => parseHead(withLine("Host\t: a"), NONE, "request"), 400);
  });

  await t.step("rejects a field name that is not a token, or no name, with 400", () => {
    for (
      const line of ["Ho(st: a", "X/Y: a", 'X"Y: a', "H\xf6st: a", ": a", "no colon", "X Y: a"]
    ) {
      throwsStatus(() => parseHead(withLine(line), NONE, "request"), 400, line);
    }
  });

  await t.step("rejects control characters in a value with 400", () => {
    for (const line of ["X: a\x01b", "X: a\x7fb", "X: a\x1bb"]) {
      throwsStatus(() => parseHead(withLine(line), NONE, "request"), 400, JSON.stringify(line));
    }
  });

  await t.step(
    "accepts obs-text (bytes 0x80–0xFF) in a value as opaque data",
    () => {
      // RFC 9110 §5.5: field-vchar = VCHAR / obs-text, obs-text = %x80-FF, which _head.ts's own
      // FIELD_VALUE means to allow. But TextDecoder("latin1") is windows-1252 in the Encoding
      // Standard: 0x80 becomes U+20AC, which FIELD_VALUE then refuses with a 400.
      const rejected: string[] = [];
      for (let byte = 0x80; byte <= 0xff; byte++) {
        try {
          const head = parseHead(withLine(`X: a${String.fromCharCode(byte)}`), NONE, "request");
          assert.equal(head.headers.get("x"), `a${String.fromCharCode(byte)}`);
        } catch {
          rejected.push(byte.toString(16));
        }
      }
      assert.deepEqual(rejected, [], "bytes refused or changed in a field value");
    },
  );
});

Deno.test("readHead", async (t) => {
  const wire = bytes(REQUEST);
  const want = plain(parseHead(wire, NONE, "request"));

  await t.step("reads a head given in one chunk", async () => {
    assert.deepEqual(plain(await readHead(streamOf([wire]), 8192, "request")), want);
    const response = await readHead(streamOf([bytes(RESPONSE)]), 8192, "response");
    assert.deepEqual(response.start, ["HTTP/1.1", "101", "Switching Protocols"]);
  });

  await t.step("reads the same head split at every offset, and what follows it", async () => {
    const after = bytes("\x81\x05hello"); // what follows the head: a frame
    const all = concat([wire, after]);
    for (let at = 0; at <= all.length; at++) {
      const readable = streamOf([all.subarray(0, at), all.subarray(at)]);
      const head = await readHead(readable, 8192, "request");
      // The rest holds what the last chunk read had past the head; the stream, the others.
      const rest = at < wire.length ? after : all.subarray(wire.length, at);
      assert.deepEqual(plain(head), { ...want, rest: [...rest] }, `split at ${at}`);
      const unread = concat(await Array.fromAsync(readable));
      assert.deepEqual(concat([head.rest, unread]), after, `split at ${at}`);
    }
  });

  await t.step(
    "reads the same head one byte at a time and in random chunks (100 seeds)",
    async () => {
      assert.deepEqual(plain(await readHead(streamOf(bytewise(wire)), 8192, "request")), want);
      for (let seed = 1; seed <= 100; seed++) {
        const chunks = split(wire, seeded(seed), 16);
        assert.deepEqual(
          plain(await readHead(streamOf(chunks), 8192, "request")),
          want,
          `seed ${seed}`,
        );
      }
    },
  );

  await t.step(
    "gives back only the bytes of the last chunk read, leaving the rest in the stream",
    async () => {
      const readable = streamOf([concat([wire, bytes("ab")]), bytes("cd"), bytes("ef")]);
      const head = await readHead(readable, 8192, "request");
      assert.deepEqual([...head.rest], [...bytes("ab")]);
      assert.equal(readable.locked, false);
      const reader = readable.getReader(); // a new reader takes over
      assert.deepEqual(await reader.read(), { done: false, value: bytes("cd") });
      assert.deepEqual(await reader.read(), { done: false, value: bytes("ef") });
      assert.deepEqual(await reader.read(), { done: true, value: undefined });
    },
  );

  await t.step(
    "accepts a head of maxSize bytes and rejects one of maxSize + 1 with 431",
    async () => {
      const size = wire.length;
      assert.deepEqual(plain(await readHead(streamOf([wire]), size, "request")), want);
      assert.deepEqual(plain(await readHead(streamOf(bytewise(wire)), size, "request")), want);
      await assert.rejects(readHead(streamOf([wire]), size - 1, "request"), isStatus(431));
      await assert.rejects(readHead(streamOf(bytewise(wire)), size - 1, "request"), isStatus(431));
    },
  );

  await t.step("does not count the bytes after the head toward maxSize", async () => {
    const head = await readHead(
      streamOf([concat([wire, new Uint8Array(100)])]),
      wire.length,
      "request",
    );
    assert.equal(head.rest.length, 100);
  });

  await t.step("rejects an endless head with 431 without reading it all", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(bytes("X-Filler: aaaaaaaaaaaaaaaaaaaaaa\r\n"));
      },
    });
    await assert.rejects(readHead(endless, 1024, "request"), isStatus(431));
    assert(pulled < 100, `pulled ${pulled} chunks`);
    assert.equal(endless.locked, false);
    await endless.cancel();
  });

  await t.step("rejects a stream that ends before the head does with 400", async () => {
    const cases = [[], [NONE], [bytes("GET / HTTP/1.1\r\nHost: a\r\n")], [wire.subarray(0, -1)]];
    for (const chunks of cases) {
      const readable = streamOf(chunks);
      await assert.rejects(readHead(readable, 8192, "request"), isStatus(400));
      assert.equal(readable.locked, false);
    }
  });

  await t.step("rejects a malformed head with 400 and releases the stream", async () => {
    const readable = streamOf([bytes("HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n"), bytes("more")]);
    await assert.rejects(readHead(readable, 8192, "response"), isStatus(400));
    assert.equal(readable.locked, false);
    await readable.cancel();
  });
});

/** A predicate for `assert.rejects`: an HttpError with `status`. */
function isStatus(status: number) {
  return (error: unknown) => {
    assert(error instanceof HttpError);
    assert.equal(error.status, status);
    return true;
  };
}

Deno.test("hasToken", async (t) => {
  await t.step("is false for an absent header", () => {
    assert.equal(hasToken(null, "upgrade"), false);
  });

  await t.step("matches case-insensitively", () => {
    for (const value of ["upgrade", "Upgrade", "UPGRADE", "uPgRaDe"]) {
      assert.equal(hasToken(value, "upgrade"), true, value);
    }
  });

  await t.step("finds the token anywhere in a comma list, around spaces and tabs", () => {
    for (
      const value of [
        "keep-alive, Upgrade",
        "keep-alive,upgrade",
        " upgrade ,x",
        "a,\tUpgrade\t,b",
        ", ,upgrade,,",
      ]
    ) {
      assert.equal(hasToken(value, "upgrade"), true, JSON.stringify(value));
    }
  });

  await t.step("does not match part of an item", () => {
    for (
      const value of [
        "",
        "upgrades",
        "upgrade-insecure",
        "up grade",
        "keep-alive",
        "keep-alive upgrade",
        "x;upgrade",
      ]
    ) {
      assert.equal(hasToken(value, "upgrade"), false, JSON.stringify(value));
    }
  });
});
