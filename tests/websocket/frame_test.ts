// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  CloseCode,
  Frame,
  isValidCloseCode,
  Opcode,
  readClosePayload,
  WebSocketError,
} from "@wirestream/wirestream";
import { hex } from "../_util/random.ts";

const utf8 = new TextEncoder();

/** Asserts that `fn` throws a WebSocketError with `code`, and returns it. */
function assertWebSocketError(fn: () => unknown, code: number): WebSocketError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof WebSocketError, `expected a WebSocketError, got ${caught}`);
  assert.equal(caught.name, "WebSocketError");
  assert.equal(caught.closeCode, code);
  assert.match(caught.message, /^Cannot read close frame: /);
  return caught;
}

Deno.test("Opcode", async (t) => {
  await t.step("holds the opcodes of RFC 6455 §5.2", () => {
    assert.deepEqual({ ...Opcode }, {
      Continuation: 0x0,
      Text: 0x1,
      Binary: 0x2,
      Close: 0x8,
      Ping: 0x9,
      Pong: 0xa,
    });
  });

  await t.step("sets the top bit for control opcodes only", () => {
    for (const op of [Opcode.Continuation, Opcode.Text, Opcode.Binary]) assert.equal(op & 0x8, 0);
    for (const op of [Opcode.Close, Opcode.Ping, Opcode.Pong]) assert.equal(op & 0x8, 0x8);
  });
});

Deno.test("CloseCode", async (t) => {
  await t.step("holds the codes of RFC 6455 §7.4.1 and the IANA registry", () => {
    assert.deepEqual({ ...CloseCode }, {
      NormalClosure: 1000,
      GoingAway: 1001,
      ProtocolError: 1002,
      UnsupportedData: 1003,
      NoStatusReceived: 1005,
      AbnormalClosure: 1006,
      InvalidPayload: 1007,
      PolicyViolation: 1008,
      MessageTooBig: 1009,
      MandatoryExtension: 1010,
      InternalError: 1011,
      ServiceRestart: 1012,
      TryAgainLater: 1013,
      BadGateway: 1014,
      TlsHandshake: 1015,
    });
  });

  await t.step("marks exactly 1005, 1006 and 1015 as never sent", () => {
    const neverSent = Object.values(CloseCode).filter((code) => !isValidCloseCode(code));
    assert.deepEqual(neverSent, [1005, 1006, 1015]);
  });
});

Deno.test("isValidCloseCode", async (t) => {
  await t.step("accepts 1000–1003, 1007–1014 and 3000–4999", () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 3999, 4000, 4999]) {
      assert.equal(isValidCloseCode(code), true, `code ${code}`);
    }
  });

  await t.step("rejects reserved, unassigned and out-of-range codes at each boundary", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535, -1000]) {
      assert.equal(isValidCloseCode(code), false, `code ${code}`);
    }
  });

  await t.step("agrees with a plain reading of RFC 6455 §7.4 for every 16-bit code", () => {
    for (let code = 0; code <= 0xffff; code++) {
      const want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
        (code >= 3000 && code <= 4999);
      assert.equal(isValidCloseCode(code), want, `code ${code}`);
    }
  });
});

Deno.test("Frame", async (t) => {
  await t.step("defaults to an empty final payload with no reserved bits", () => {
    const frame = new Frame(Opcode.Binary);
    assert.equal(frame.opcode, Opcode.Binary);
    assert.equal(frame.payload.length, 0);
    assert.deepEqual([frame.fin, frame.rsv1, frame.rsv2, frame.rsv3], [true, false, false, false]);
  });

  await t.step("keeps every constructor argument, the payload by reference", () => {
    const payload = Uint8Array.of(1, 2, 3);
    const frame = new Frame(Opcode.Text, payload, false, true, false, true);
    assert.equal(frame.payload, payload);
    assert.deepEqual([frame.fin, frame.rsv1, frame.rsv2, frame.rsv3], [false, true, false, true]);
  });

  await t.step("tells control frames from data frames", () => {
    for (const op of [Opcode.Continuation, Opcode.Text, Opcode.Binary]) {
      assert.equal(new Frame(op).isControl, false, `opcode ${op}`);
    }
    for (const op of [Opcode.Close, Opcode.Ping, Opcode.Pong]) {
      assert.equal(new Frame(op).isControl, true, `opcode ${op}`);
    }
  });

  await t.step("builds a text frame from a string as UTF-8", () => {
    const frame = Frame.text("héllo €");
    assert.equal(frame.opcode, Opcode.Text);
    assert.equal(frame.fin, true);
    // h, é (c3 a9), l, l, o, space, € (e2 82 ac)
    assert.deepEqual(frame.payload, hex("68 c3a9 6c 6c 6f 20 e282ac"));
  });

  await t.step("builds a text frame from bytes without copying them", () => {
    const bytes = utf8.encode("hi");
    const frame = Frame.text(bytes, false);
    assert.equal(frame.payload, bytes);
    assert.equal(frame.fin, false);
  });

  await t.step("builds binary and continuation frames around the given bytes", () => {
    const bytes = Uint8Array.of(0xde, 0xad);
    for (
      const [frame, opcode] of [[Frame.binary(bytes), Opcode.Binary], [
        Frame.continuation(bytes),
        Opcode.Continuation,
      ]] as const
    ) {
      assert.equal(frame.opcode, opcode);
      assert.equal(frame.payload, bytes);
      assert.equal(frame.fin, true);
    }
    assert.equal(Frame.binary(bytes, false).fin, false);
    assert.equal(Frame.continuation(bytes, false).fin, false);
  });

  await t.step("builds ping and pong frames, empty by default", () => {
    assert.equal(Frame.ping().opcode, Opcode.Ping);
    assert.equal(Frame.ping().payload.length, 0);
    assert.equal(Frame.pong().opcode, Opcode.Pong);
    assert.equal(Frame.pong().payload.length, 0);
    const data = utf8.encode("Hello");
    assert.equal(Frame.ping(data).payload, data);
    assert.equal(Frame.pong(data).payload, data);
  });

  await t.step("builds a close frame without a code as an empty payload", () => {
    const frame = Frame.close();
    assert.equal(frame.opcode, Opcode.Close);
    assert.equal(frame.fin, true);
    assert.equal(frame.payload.length, 0);
  });

  await t.step("builds a close frame as a big-endian code then the UTF-8 reason", () => {
    assert.deepEqual(Frame.close(1000).payload, hex("03e8")); // 1000
    assert.deepEqual(Frame.close(4999, "bye").payload, hex("1387 627965")); // 4999, "bye"
    assert.deepEqual(Frame.close(1001, "é").payload, hex("03e9 c3a9")); // 1001, "é"
  });

  await t.step("accepts a reason of 123 bytes and rejects 124 with RangeError", () => {
    assert.equal(Frame.close(1000, "x".repeat(123)).payload.length, 125);
    assert.throws(() => Frame.close(1000, "x".repeat(124)), RangeError);
    // 62 × "é" is 124 bytes though only 62 characters.
    assert.equal(Frame.close(1000, "é".repeat(61) + "x").payload.length, 125);
    assert.throws(() => Frame.close(1000, "é".repeat(62)), RangeError);
  });

  await t.step("rejects a reason without a code with RangeError", () => {
    assert.throws(() => Frame.close(undefined, "why"), RangeError);
  });

  await t.step("rejects codes that may not be sent with RangeError", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 1000.5, NaN, Infinity]) {
      assert.throws(() => Frame.close(code), RangeError, `code ${code}`);
    }
  });

  await t.step("round-trips every sendable code through readClosePayload", () => {
    for (let code = 0; code <= 5000; code++) {
      if (!isValidCloseCode(code)) continue;
      assert.deepEqual(readClosePayload(Frame.close(code, "ok").payload), { code, reason: "ok" });
    }
  });
});

Deno.test("readClosePayload", async (t) => {
  await t.step("reads an empty payload as 1005 with no reason", () => {
    assert.deepEqual(readClosePayload(new Uint8Array(0)), { code: 1005, reason: "" });
  });

  await t.step("reads a code alone", () => {
    assert.deepEqual(readClosePayload(hex("03e8")), { code: 1000, reason: "" }); // 1000
  });

  await t.step("reads a code and a UTF-8 reason", () => {
    // 1001 (03e9), then "going ✓" with ✓ as e2 9c 93
    assert.deepEqual(readClosePayload(hex("03e9 676f696e67 20 e29c93")), {
      code: 1001,
      reason: "going ✓",
    });
  });

  await t.step("reads a payload that is a view at an odd offset", () => {
    const buffer = hex("ff 0fa0 6f6b ff"); // junk, 4000, "ok", junk
    assert.deepEqual(readClosePayload(buffer.subarray(1, 5)), { code: 4000, reason: "ok" });
  });

  await t.step("keeps a leading byte order mark in the reason", () => {
    // 1000, then U+FEFF (ef bb bf) and "a": the BOM is a character of the reason here.
    assert.deepEqual(readClosePayload(hex("03e8 efbbbf 61")), { code: 1000, reason: "\ufeffa" });
  });

  await t.step("rejects a 1-byte payload with WebSocketError 1002", () => {
    assertWebSocketError(() => readClosePayload(hex("03")), 1002);
  });

  await t.step("rejects codes that may not be sent with WebSocketError 1002", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 0xffff]) {
      const payload = Uint8Array.of(code >>> 8, code & 0xff);
      assertWebSocketError(() => readClosePayload(payload), 1002);
    }
  });

  await t.step("rejects a reason that is not UTF-8 with WebSocketError 1007 and a cause", () => {
    for (
      const reason of [
        "ff", // never valid in UTF-8
        "c3", // a truncated 2-byte sequence
        "c0af", // an overlong "/"
        "eda080", // a UTF-16 surrogate (U+D800)
        "f4908080", // above U+10FFFF
      ]
    ) {
      const error = assertWebSocketError(() => readClosePayload(hex("03e8" + reason)), 1007);
      assert(error.cause instanceof TypeError, `reason ${reason}`);
    }
  });
});
