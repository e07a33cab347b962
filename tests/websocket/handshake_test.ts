// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  acceptKey,
  type ExtensionOffer,
  HttpError,
  parseExtensions,
  parseProtocols,
  selectProtocol,
  type UpgradeRequestLike,
  type UpgradeValidationOptions,
  validateUpgradeRequest,
  WEBSOCKET_GUID,
} from "@wirestream/wirestream";
import { between, randomBytes, seeded } from "../_util/random.ts";

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

/** Asserts that parseExtensions refuses `value` with 400. */
function refusesExtensions(value: string): void {
  assert.throws(() => parseExtensions(value), (error) => {
    assert(error instanceof HttpError, `${JSON.stringify(value)}: ${String(error)}`);
    assert.equal(error.status, 400, value);
    assert.match(error.message, /^Cannot upgrade: Sec-WebSocket-Extensions /, value);
    return true;
  }, JSON.stringify(value));
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

Deno.test("parseExtensions", async (t) => {
  await t.step("gives no offers for an absent or empty header", () => {
    assert.deepEqual(parseExtensions(null), []);
    assert.deepEqual(parseExtensions(""), []);
    assert.deepEqual(parseExtensions(" , ,"), []);
  });

  await t.step("reads what browsers and ws offer", () => {
    // Chromium and npm:ws; Firefox and Safari.
    assert.deepEqual(parseExtensions("permessage-deflate; client_max_window_bits"), [
      { name: "permessage-deflate", params: [["client_max_window_bits", null]] },
    ]);
    assert.deepEqual(parseExtensions("permessage-deflate"), [
      { name: "permessage-deflate", params: [] },
    ]);
  });

  await t.step("reads several offers, values, quoted values and spaces around", () => {
    const offers = parseExtensions(
      "permessage-deflate; client_max_window_bits=10 ;server_no_context_takeover, " +
        'permessage-deflate\t,x-foo ; a = "b\\c" ; a="12", , x-bar',
    );
    assert.deepEqual(offers, [
      {
        name: "permessage-deflate",
        params: [["client_max_window_bits", "10"], ["server_no_context_takeover", null]],
      },
      { name: "permessage-deflate", params: [] },
      { name: "x-foo", params: [["a", "bc"], ["a", "12"]] }, // an escape, a duplicate kept
      { name: "x-bar", params: [] },
    ]);
  });

  await t.step("refuses what the ABNF of RFC 6455 §9.1 does not allow, with 400", () => {
    for (
      const value of [
        "permessage-deflate;", // a parameter with no name
        "permessage-deflate; =15",
        "permessage-deflate; client_max_window_bits=",
        'x; a="not a token"', // a quoted value must be a token once unquoted
        'x; a=""',
        'x; a="unterminated',
        'x; a="ends with an escape\\',
        "x; a=b=c",
        "x; a b",
        "permessage deflate",
        ";x",
        "x,;",
        "x; a=(b)",
        "x/y",
        "déflate",
        "x; a=\u0001",
        'x; a="\u0001"',
        'x; a="b"c',
      ]
    ) refusesExtensions(value);
  });

  await t.step("reads back any list it is given, however it is spaced (300 seeds)", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seeded(seed);
      const token = () =>
        Array.from(
          { length: between(random, 1, 6) },
          () => TCHARS[between(random, 0, TCHARS.length - 1)],
        )
          .join("");
      const space = () => [" ", "", "\t", "  "][between(random, 0, 3)]!;
      const want: ExtensionOffer[] = [];
      let text = "";
      for (let e = between(random, 1, 4); e > 0; e--) {
        const offer: ExtensionOffer = { name: token(), params: [] };
        text += (text === "" ? space() : `${space()},${space()}`) + offer.name;
        for (let p = between(random, 0, 3); p > 0; p--) {
          const name = token();
          const form = between(random, 0, 2);
          const value = form === 0 ? null : token();
          offer.params.push([name, value]);
          text += `${space()};${space()}${name}`;
          if (value !== null) {
            const quoted = form === 2 ? `"${value.replace(/[\\"]/g, "\\$&")}"` : value;
            text += `${space()}=${space()}${quoted}`;
          }
        }
        want.push(offer);
      }
      assert.deepEqual(parseExtensions(text + space()), want, `seed ${seed}: ${text}`);
    }
  });

  await t.step("ends any string in offers or a 400, never another error (2000 seeds)", () => {
    const alphabet = 'ab=;," \\\t\u0001é(';
    for (let seed = 1; seed <= 2000; seed++) {
      const random = seeded(seed);
      const value = Array.from(
        { length: between(random, 0, 24) },
        () => alphabet[between(random, 0, alphabet.length - 1)],
      ).join("");
      try {
        for (const offer of parseExtensions(value)) {
          assert.match(offer.name, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, value);
          for (const [name, param] of offer.params) {
            assert.match(name, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, value);
            if (param !== null) assert.match(param, /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, value);
          }
        }
      } catch (error) {
        assert(error instanceof HttpError && error.status === 400, `${value}: ${String(error)}`);
      }
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
    "refuses options of the wrong type with a TypeError, before any fault of the request's",
    async () => {
      const bad: [string, UpgradeValidationOptions][] = [
        ["checkOrigin", { checkOrigin: "https://a.example" as never }],
        ["protocols", { protocols: "chat" as never }],
        ["protocols", { protocols: ["chat", "not a token"] }],
        ["protocols", { protocols: [5] as never }],
      ];
      // An async check decides nothing in time: its promise was taken for a yes.
      await assert.rejects(
        validateUpgradeRequest(request({ origin: "https://evil.example" }), {
          checkOrigin: (() => Promise.resolve(false)) as never,
        }),
        (e) => e instanceof TypeError && e.message.startsWith("Invalid checkOrigin"),
      );
      for (const [name, options] of bad) {
        for (const faulty of [request(), request({ "sec-websocket-key": null })]) {
          await assert.rejects(
            validateUpgradeRequest(faulty, options),
            (e) => e instanceof TypeError && e.message.startsWith(`Invalid ${name}`),
            name,
          );
        }
      }
    },
  );

  await t.step(
    "accepts a valid request and gives the key, accept, protocol and origin",
    async () => {
      assert.deepEqual(await validateUpgradeRequest(request()), {
        key: KEY,
        accept: ACCEPT,
        protocol: "",
        offeredProtocols: [],
        offeredExtensions: [],
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

  await t.step("accepts HTTP/1.1 and later when the transport tells the version", async () => {
    // HTTP/2 and HTTP/3 are named without a minor version (RFC 9113, RFC 9114).
    for (const httpVersion of ["HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3"]) {
      const info = await validateUpgradeRequest({ ...request(), httpVersion });
      assert.equal(info.accept, ACCEPT, httpVersion);
    }
  });

  await t.step("rejects HTTP/1.0, and what is no HTTP version, with 400", async () => {
    for (const httpVersion of ["HTTP/1.0", "HTTP/0.9", "HTTP/1", "HTTP/", "HTTP/2.", "HTTP/22"]) {
      await rejectsWith(validateUpgradeRequest({ ...request(), httpVersion }), 400, httpVersion);
    }
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
      // RFC 9110 §15.5.22: a 426 names the protocol, with its connection option (§7.8).
      assert.equal(response.headers.get("upgrade"), "websocket");
      assert.equal(response.headers.get("connection"), "upgrade");
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

  await t.step("gives the extensions offered, and refuses a malformed offer with 400", async () => {
    const offered = request({
      "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
    });
    assert.deepEqual((await validateUpgradeRequest(offered)).offeredExtensions, [
      { name: "permessage-deflate", params: [["client_max_window_bits", null]] },
    ]);
    const bad = request({ "sec-websocket-extensions": "permessage-deflate; =15" });
    await rejectsWith(validateUpgradeRequest(bad), 400);
  });

  await t.step("takes a real Request", async () => {
    const valid = new Request("http://example.com/chat", {
      headers: headers({
        origin: "https://example.com",
        "sec-websocket-protocol": "chat",
        "sec-websocket-extensions": "permessage-deflate",
      }),
    });
    const info = await validateUpgradeRequest(valid, { protocols: ["chat"] });
    assert.deepEqual(info, {
      key: KEY,
      accept: ACCEPT,
      protocol: "chat",
      offeredProtocols: ["chat"],
      offeredExtensions: [{ name: "permessage-deflate", params: [] }],
      origin: "https://example.com",
    });
    const post = new Request("http://example.com/chat", { method: "POST", headers: headers() });
    await rejectsWith(validateUpgradeRequest(post), 400);
    await post.body?.cancel();
  });
});
