// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  acceptKey,
  HttpError,
  parseProtocols,
  selectProtocol,
  type UpgradeRequestLike,
  type UpgradeValidationOptions,
  validateUpgradeRequest,
  WEBSOCKET_GUID,
} from "@wirestream/wirestream";
import { randomBytes, seeded } from "../_util/random.ts";

// RFC 6455 §1.3: the sample key and its accept value.
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/** Base64 of `bytes`. */
function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** The headers of a valid upgrade request, with `changes` applied (null removes a header). */
function headers(changes: Record<string, string | null> = {}): Headers {
  const all: Record<string, string | null> = {
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": KEY,
    "sec-websocket-version": "13",
    ...changes,
  };
  const result = new Headers();
  for (const [name, value] of Object.entries(all)) if (value !== null) result.set(name, value);
  return result;
}

/** A GET upgrade request with `changes` to its headers. */
function request(changes: Record<string, string | null> = {}): UpgradeRequestLike {
  return { method: "GET", headers: headers(changes) };
}

/** Asserts `promise` rejects with an HttpError of `status`; returns the error. */
async function rejectsWith(promise: Promise<unknown>, status: number, message?: string) {
  let caught: HttpError | undefined;
  await assert.rejects(promise, (error) => {
    assert(error instanceof HttpError, message);
    assert.equal(error.status, status, message);
    caught = error;
    return true;
  });
  return caught!;
}

Deno.test("WEBSOCKET_GUID", () => {
  assert.equal(WEBSOCKET_GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
});

Deno.test("acceptKey", async (t) => {
  await t.step("gives the accept value of the RFC 6455 §1.3 sample key", async () => {
    assert.equal(await acceptKey(KEY), ACCEPT);
  });

  await t.step("is base64(SHA-1(key + GUID)) for any key (100 seeds)", async () => {
    const random = seeded(1);
    for (let seed = 1; seed <= 100; seed++) {
      const key = base64(randomBytes(random, 16));
      const want = createHash("sha1").update(key + WEBSOCKET_GUID).digest("base64");
      assert.equal(await acceptKey(key), want, `key ${key}`);
    }
  });
});

Deno.test("parseProtocols", async (t) => {
  await t.step("gives no subprotocols for an absent header", () => {
    assert.deepEqual(parseProtocols(null), []);
  });

  await t.step("splits a comma list and trims spaces and tabs around items", () => {
    assert.deepEqual(parseProtocols("chat"), ["chat"]);
    assert.deepEqual(parseProtocols("chat, superchat"), ["chat", "superchat"]);
    assert.deepEqual(parseProtocols(" v1.chat ,\tv2.chat\t,mqtt"), ["v1.chat", "v2.chat", "mqtt"]);
  });

  await t.step("ignores empty list items (RFC 9110 §5.6.1.2)", () => {
    assert.deepEqual(parseProtocols("chat, , superchat,"), ["chat", "superchat"]);
    assert.deepEqual(parseProtocols(""), []);
    assert.deepEqual(parseProtocols(" , "), []);
  });

  await t.step("rejects an item that is not a token with 400", () => {
    for (const value of ["chat, sup er", "a/b", "chat;q=1", '"chat"', "chät"]) {
      assert.throws(() => parseProtocols(value), (error) => {
        assert(error instanceof HttpError, value);
        assert.equal(error.status, 400, value);
        return true;
      });
    }
  });
});

Deno.test("selectProtocol", async (t) => {
  await t.step("picks the first subprotocol the client offered that the server supports", () => {
    assert.equal(selectProtocol(["v2.chat", "v1.chat"], ["v1.chat", "v2.chat"]), "v2.chat");
    assert.equal(selectProtocol(["mqtt", "v1.chat"], ["v1.chat", "v2.chat"]), "v1.chat");
  });

  await t.step('gives "" when none matches', () => {
    assert.equal(selectProtocol(["mqtt"], ["v1.chat"]), "");
    assert.equal(selectProtocol([], ["v1.chat"]), "");
    assert.equal(selectProtocol(["mqtt"], []), "");
  });
});

Deno.test("validateUpgradeRequest", async (t) => {
  await t.step(
    "accepts a valid request and gives the key, accept, protocol and origin",
    async () => {
      assert.deepEqual(await validateUpgradeRequest(request()), {
        key: KEY,
        accept: ACCEPT,
        protocol: "",
        offeredProtocols: [],
        origin: null,
      });
    },
  );

  await t.step("matches Upgrade and Connection tokens case-insensitively in lists", async () => {
    for (
      const [upgrade, connection] of [
        ["WebSocket", "keep-alive, Upgrade"],
        ["WEBSOCKET", "UPGRADE"],
        ["h2c, websocket", "upgrade,keep-alive"],
      ]
    ) {
      const info = await validateUpgradeRequest(
        request({ upgrade: upgrade!, connection: connection! }),
      );
      assert.equal(info.accept, ACCEPT, `${upgrade} / ${connection}`);
    }
  });

  await t.step("accepts HTTP/1.1 when the transport tells the version", async () => {
    const info = await validateUpgradeRequest({ ...request(), httpVersion: "HTTP/1.1" });
    assert.equal(info.accept, ACCEPT);
  });

  await t.step("rejects HTTP/1.0 with 400", async () => {
    await rejectsWith(validateUpgradeRequest({ ...request(), httpVersion: "HTTP/1.0" }), 400);
  });

  await t.step("rejects a method other than GET with 400", async () => {
    for (const method of ["POST", "HEAD", "get"]) {
      await rejectsWith(validateUpgradeRequest({ method, headers: headers() }), 400, method);
    }
  });

  await t.step("rejects a request with no Host with 400", async () => {
    await rejectsWith(validateUpgradeRequest(request({ host: null })), 400);
  });

  await t.step("rejects a missing or wrong Upgrade with 400", async () => {
    for (const upgrade of [null, "", "h2c", "websockets", "web socket", "websocket/13"]) {
      await rejectsWith(validateUpgradeRequest(request({ upgrade })), 400, `${upgrade}`);
    }
  });

  await t.step("rejects a Connection with no upgrade token with 400", async () => {
    for (const connection of [null, "", "keep-alive", "upgrades", "keep-alive upgrade"]) {
      await rejectsWith(validateUpgradeRequest(request({ connection })), 400, `${connection}`);
    }
  });

  await t.step("rejects a missing key with 400", async () => {
    await rejectsWith(validateUpgradeRequest(request({ "sec-websocket-key": null })), 400);
  });

  await t.step("rejects a key that is not the base64 of 16 bytes with 400", async () => {
    const random = seeded(2);
    const keys = [
      "", // empty
      "dGhlIHNhbXBsZSBub25jZQ", // no padding
      "dGhlIHNhbXBsZSBub25jZQ=", // one "=" short
      "dGhlIHNhbXBsZSBub25jZQ===", // one "=" too many
      "dGhlIHNhbXBsZSBub25jZR==", // non-canonical: the last character's low bits are not zero
      "dGhlIHNhbXBsZSBub25jZf==",
      "dGhlIHNhbXBsZSBub25j-Q==", // base64url alphabet
      "dGhlIHNhbXBsZSBub25 jZQ==", // a space inside
      "=GhlIHNhbXBsZSBub25jZQ==",
      base64(randomBytes(random, 15)), // 20 characters
      base64(randomBytes(random, 17)), // 24 characters ending in one "="
      base64(randomBytes(random, 32)),
    ];
    for (const key of keys) {
      await rejectsWith(validateUpgradeRequest(request({ "sec-websocket-key": key })), 400, key);
    }
  });

  await t.step("accepts any base64 of 16 bytes as the key (100 seeds)", async () => {
    const random = seeded(3);
    for (let i = 0; i < 100; i++) {
      const key = base64(randomBytes(random, 16));
      assert.equal((await validateUpgradeRequest(request({ "sec-websocket-key": key }))).key, key);
    }
  });

  await t.step("rejects a version other than 13, or none, with 426 and version 13", async () => {
    for (const version of ["8", "12", "14", "13, 8", null]) {
      const error = await rejectsWith(
        validateUpgradeRequest(request({ "sec-websocket-version": version })),
        426,
        `${version}`,
      );
      assert.equal(error.headers.get("sec-websocket-version"), "13");
      const response = error.toResponse();
      assert.equal(response.status, 426);
      assert.equal(response.headers.get("sec-websocket-version"), "13");
      await response.body?.cancel();
    }
  });

  await t.step("rejects an origin that checkOrigin refuses with 403", async () => {
    const seen: (string | null)[] = [];
    const options: UpgradeValidationOptions = {
      checkOrigin: (origin) => {
        seen.push(origin);
        return origin === "https://example.com";
      },
    };
    const info = await validateUpgradeRequest(request({ origin: "https://example.com" }), options);
    assert.equal(info.origin, "https://example.com");
    await rejectsWith(
      validateUpgradeRequest(request({ origin: "https://evil.example" }), options),
      403,
    );
    await rejectsWith(validateUpgradeRequest(request(), options), 403);
    assert.deepEqual(seen, ["https://example.com", "https://evil.example", null]);
  });

  await t.step("gives checkOrigin null when Origin is absent", async () => {
    const info = await validateUpgradeRequest(request(), {
      checkOrigin: (origin) => origin === null,
    });
    assert.equal(info.origin, null);
  });

  await t.step(
    "agrees on the first subprotocol the client offered that the server supports",
    async () => {
      const info = await validateUpgradeRequest(
        request({ "sec-websocket-protocol": "mqtt, v2.chat, v1.chat" }),
        { protocols: ["v1.chat", "v2.chat"] },
      );
      assert.equal(info.protocol, "v2.chat");
      assert.deepEqual(info.offeredProtocols, ["mqtt", "v2.chat", "v1.chat"]);
    },
  );

  await t.step('agrees on "" when no subprotocol matches or none is supported', async () => {
    const offered = request({ "sec-websocket-protocol": "mqtt" });
    assert.equal((await validateUpgradeRequest(offered, { protocols: ["v1.chat"] })).protocol, "");
    assert.equal((await validateUpgradeRequest(offered)).protocol, "");
    assert.deepEqual((await validateUpgradeRequest(offered)).offeredProtocols, ["mqtt"]);
  });

  await t.step("rejects a subprotocol item that is not a token with 400", async () => {
    const offered = request({ "sec-websocket-protocol": "chat, bad item" });
    await rejectsWith(validateUpgradeRequest(offered, { protocols: ["chat"] }), 400);
  });

  await t.step("takes a real Request", async () => {
    const valid = new Request("http://example.com/chat", {
      headers: headers({ origin: "https://example.com", "sec-websocket-protocol": "chat" }),
    });
    const info = await validateUpgradeRequest(valid, { protocols: ["chat"] });
    assert.deepEqual(info, {
      key: KEY,
      accept: ACCEPT,
      protocol: "chat",
      offeredProtocols: ["chat"],
      origin: "https://example.com",
    });
    const post = new Request("http://example.com/chat", { method: "POST", headers: headers() });
    await rejectsWith(validateUpgradeRequest(post), 400);
    await post.body?.cancel();
  });
});
