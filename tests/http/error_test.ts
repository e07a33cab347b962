// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { HttpError } from "@wirestream/wirestream";

Deno.test("HttpError", async (t) => {
  await t.step("is an Error with its name, status and message", () => {
    const error = new HttpError(431, "Cannot read request head: it exceeds 8192 bytes");
    assert(error instanceof Error);
    assert.equal(error.name, "HttpError");
    assert.equal(error.status, 431);
    assert.equal(error.message, "Cannot read request head: it exceeds 8192 bytes");
    assert.match(String(error), /^HttpError: Cannot read request head/);
    assert.equal(typeof error.stack, "string");
  });

  await t.step("has no headers and no cause by default", () => {
    const error = new HttpError(400, "bad");
    assert.deepEqual([...error.headers], []);
    assert.equal("cause" in error, false);
  });

  await t.step("takes headers in any HeadersInit form", () => {
    const inits: HeadersInit[] = [
      { "Sec-WebSocket-Version": "13" },
      [["sec-websocket-version", "13"]],
      new Headers({ "sec-websocket-version": "13" }),
    ];
    for (const headers of inits) {
      const error = new HttpError(426, "upgrade", { headers });
      assert.deepEqual([...error.headers], [["sec-websocket-version", "13"]]);
    }
  });

  await t.step("copies the headers it is given", () => {
    const headers = new Headers({ allow: "GET" });
    const error = new HttpError(405, "method", { headers });
    headers.set("allow", "POST");
    assert.equal(error.headers.get("allow"), "GET");
  });

  await t.step("keeps the cause", () => {
    const cause = new TypeError("inner");
    const error = new HttpError(400, "outer", { cause });
    assert.equal(error.cause, cause);
    assert.equal(new HttpError(400, "falsy cause", { cause: 0 }).cause, 0);
  });
});

Deno.test("HttpError.toResponse", async (t) => {
  await t.step("answers with the status, the headers and the message as plain text", async () => {
    const error = new HttpError(426, "Cannot upgrade: Sec-WebSocket-Version is not 13", {
      headers: { "sec-websocket-version": "13" },
    });
    const response = error.toResponse();
    assert.equal(response.status, 426);
    assert.equal(response.headers.get("sec-websocket-version"), "13");
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await response.text(), "Cannot upgrade: Sec-WebSocket-Version is not 13\n");
  });

  await t.step("encodes the body as UTF-8", async () => {
    const response = new HttpError(400, 'Cannot upgrade: origin "https://é.example" 🙅')
      .toResponse();
    assert.deepEqual(
      new Uint8Array(await response.arrayBuffer()),
      new TextEncoder().encode('Cannot upgrade: origin "https://é.example" 🙅\n'),
    );
  });

  await t.step("always sends text/plain, whatever content-type the headers had", async () => {
    const response = new HttpError(400, "bad", { headers: { "content-type": "text/html" } })
      .toResponse();
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    await response.body?.cancel();
  });

  await t.step(
    "leaves the error's headers alone and gives a fresh response each call",
    async () => {
      const error = new HttpError(403, "forbidden", { headers: { "x-reason": "origin" } });
      const first = error.toResponse();
      first.headers.set("x-reason", "changed");
      const second = error.toResponse();
      assert.deepEqual([...error.headers], [["x-reason", "origin"]]);
      assert.equal(second.headers.get("x-reason"), "origin");
      assert.equal(await first.text(), "forbidden\n");
      assert.equal(await second.text(), "forbidden\n");
    },
  );

  await t.step("answers any 4xx or 5xx status", async () => {
    for (const status of [400, 403, 408, 413, 416, 426, 431, 500, 501, 505, 599]) {
      const response = new HttpError(status, "x").toResponse();
      assert.equal(response.status, status);
      await response.body?.cancel();
    }
  });

  await t.step(
    "answers 204, 205 and 304 (a client's error for a server's answer) without a body",
    () => {
      // A Response refuses a body with a null-body status: this threw a TypeError.
      for (const status of [204, 205, 304]) {
        const response = new HttpError(status, "the server said so", {
          headers: { etag: '"v1"' },
        }).toResponse();
        assert.equal(response.status, status);
        assert.equal(response.body, null);
        assert.equal(response.headers.get("etag"), '"v1"');
      }
    },
  );

  await t.step(
    "throws a RangeError for a status outside 200-599 (101 included) or not an integer",
    () => {
      for (const status of [100, 101, 103, 199, 600, 999, 204.5, 304.9, NaN]) {
        assert.throws(() => new HttpError(status, "x").toResponse(), RangeError, String(status));
      }
    },
  );
});
