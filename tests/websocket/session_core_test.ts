// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { WebSocketError } from "@wirestream/wirestream";
import { closeReason, sentCode } from "../../lib/websocket/_session_core.ts";

const utf8 = new TextEncoder();

Deno.test("closeReason", async (t) => {
  await t.step("keeps a reason of up to 123 bytes, the room in a close frame, whole", () => {
    for (const text of ["", "going away", "x".repeat(123), "é".repeat(61) + "x"]) {
      assert.equal(closeReason(text), text);
    }
  });

  await t.step("cuts a longer reason to 123 bytes or fewer, on a character boundary", () => {
    // 1-, 2-, 3- and 4-byte characters, shifted so that byte 123 falls at each of their bytes.
    for (const char of ["x", "é", "€", "𝄞"]) {
      for (let shift = 0; shift < 4; shift++) {
        const text = "a".repeat(shift) + char.repeat(200);
        const cut = closeReason(text);
        const size = utf8.encode(cut).length;
        const label = `${JSON.stringify(char)}, shifted by ${shift}`;
        assert.ok(text.startsWith(cut), label);
        assert.ok(size <= 123 && size > 123 - utf8.encode(char).length, `${label}: ${size}`);
      }
    }
  });
});

Deno.test("sentCode", async (t) => {
  await t.step("sends a failure's own code, but 1011 for 1006, which may not be sent", () => {
    for (const code of [1002, 1007, 1008, 1009, 1011]) {
      assert.equal(sentCode(new WebSocketError("x", code)), code);
    }
    assert.equal(sentCode(new WebSocketError("x", 1006)), 1011);
  });
});
