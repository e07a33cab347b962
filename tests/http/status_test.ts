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

  await t.step("holds every code of the IANA registry with its phrase, and no other", () => {
    // https://www.iana.org/assignments/http-status-codes (RFC 9110 §15 and the RFCs it
    // lists). 418 is "(Unused)" there; the table keeps RFC 2324's phrase, which clients know.
    const registry: Record<number, string> = {
      100: "Continue",
      101: "Switching Protocols",
      102: "Processing",
      103: "Early Hints",
      200: "OK",
      201: "Created",
      202: "Accepted",
      203: "Non-Authoritative Information",
      204: "No Content",
      205: "Reset Content",
      206: "Partial Content",
      207: "Multi-Status",
      208: "Already Reported",
      226: "IM Used",
      300: "Multiple Choices",
      301: "Moved Permanently",
      302: "Found",
      303: "See Other",
      304: "Not Modified",
      305: "Use Proxy",
      307: "Temporary Redirect",
      308: "Permanent Redirect",
      400: "Bad Request",
      401: "Unauthorized",
      402: "Payment Required",
      403: "Forbidden",
      404: "Not Found",
      405: "Method Not Allowed",
      406: "Not Acceptable",
      407: "Proxy Authentication Required",
      408: "Request Timeout",
      409: "Conflict",
      410: "Gone",
      411: "Length Required",
      412: "Precondition Failed",
      413: "Content Too Large",
      414: "URI Too Long",
      415: "Unsupported Media Type",
      416: "Range Not Satisfiable",
      417: "Expectation Failed",
      418: "I'm a Teapot",
      421: "Misdirected Request",
      422: "Unprocessable Content",
      423: "Locked",
      424: "Failed Dependency",
      425: "Too Early",
      426: "Upgrade Required",
      428: "Precondition Required",
      429: "Too Many Requests",
      431: "Request Header Fields Too Large",
      451: "Unavailable For Legal Reasons",
      500: "Internal Server Error",
      501: "Not Implemented",
      502: "Bad Gateway",
      503: "Service Unavailable",
      504: "Gateway Timeout",
      505: "HTTP Version Not Supported",
      506: "Variant Also Negotiates",
      507: "Insufficient Storage",
      508: "Loop Detected",
      510: "Not Extended",
      511: "Network Authentication Required",
    };
    assert.deepEqual({ ...STATUS_TEXT }, registry);
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
