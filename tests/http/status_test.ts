// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { STATUS_TEXT } from "@wirestream/wirestream";

Deno.test("STATUS_TEXT", async (t) => {
  await t.step("gives the reason phrases of RFC 9110 §15", () => {
    const spots: [number, string][] = [
      [100, "Continue"],
      [101, "Switching Protocols"],
      [200, "OK"],
      [204, "No Content"],
      [206, "Partial Content"],
      [301, "Moved Permanently"],
      [304, "Not Modified"],
      [308, "Permanent Redirect"],
      [400, "Bad Request"],
      [404, "Not Found"],
      [405, "Method Not Allowed"],
      [408, "Request Timeout"],
      [413, "Content Too Large"], // RFC 9110 renamed "Payload Too Large"
      [414, "URI Too Long"],
      [416, "Range Not Satisfiable"],
      [422, "Unprocessable Content"], // RFC 9110 renamed "Unprocessable Entity"
      [426, "Upgrade Required"],
      [500, "Internal Server Error"],
      [501, "Not Implemented"],
      [503, "Service Unavailable"],
      [505, "HTTP Version Not Supported"],
    ];
    for (const [status, reason] of spots) assert.equal(STATUS_TEXT[status], reason, `${status}`);
  });

  await t.step("gives the phrases of the other registered codes the server uses", () => {
    assert.equal(STATUS_TEXT[103], "Early Hints"); // RFC 8297
    assert.equal(STATUS_TEXT[429], "Too Many Requests"); // RFC 6585
    assert.equal(STATUS_TEXT[431], "Request Header Fields Too Large"); // RFC 6585
    assert.equal(STATUS_TEXT[451], "Unavailable For Legal Reasons"); // RFC 7725
  });

  await t.step("has no phrase for unregistered codes", () => {
    for (const status of [0, 99, 199, 299, 306, 419, 499, 509, 599, 600, 1000]) {
      assert.equal(STATUS_TEXT[status], undefined, `${status}`);
    }
  });

  await t.step("holds only three-digit codes with phrases fit for a status line", () => {
    const entries = Object.entries(STATUS_TEXT);
    assert(entries.length >= 60, `${entries.length} codes`);
    for (const [code, reason] of entries) {
      assert.match(code, /^[1-5]\d\d$/);
      // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), here visible ASCII.
      assert.match(reason, /^[\x21-\x7e]( ?[\x21-\x7e])*$/, code);
    }
  });
});
