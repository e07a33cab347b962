// Copyright 2026 the wirestream authors. MIT license.
// serveRanges in memory: the answers to each kind of request, field by field and byte for byte.
import assert from "node:assert/strict";
import {
  type ByteRange,
  type OpenRange,
  serveRanges,
  type ServeRangesOptions,
} from "@wirestream/wirestream";
import { boundaryOf, parseByteranges } from "../_util/byteranges.ts";
import { latin1, utf8 } from "../_util/http.ts";

// 20 bytes whose ranges show which bytes they took.
const DATA = utf8("0123456789abcdefghij");
const ETAG = '"v1"';
const MODIFIED = new Date("2024-03-01T12:34:56.789Z");
const MODIFIED_TEXT = "Fri, 01 Mar 2024 12:34:56 GMT";

/** The representation, with a log of the ranges opened. */
function representation(overrides: Partial<ServeRangesOptions> = {}) {
  const opened: ByteRange[] = [];
  const open: OpenRange = (r) => {
    opened.push(r);
    return DATA.subarray(r.first, r.last + 1);
  };
  const options: ServeRangesOptions = {
    size: DATA.length,
    open,
    contentType: "text/plain; charset=utf-8",
    etag: ETAG,
    lastModified: MODIFIED,
    ...overrides,
  };
  return { opened, options };
}

/** serveRanges for a request with `headers`, and the answer's text. */
async function serve(
  headers: HeadersInit = {},
  method = "GET",
  overrides: Partial<ServeRangesOptions> = {},
) {
  const { opened, options } = representation(overrides);
  const response = serveRanges(new Request("http://localhost/file", { method, headers }), options);
  const body = response.body === null ? null : new Uint8Array(await response.arrayBuffer());
  return { response, status: response.status, headers: response.headers, body, opened };
}

/** The header fields of an answer, as sorted pairs, less those that vary. */
function fields(headers: Headers, ...leaveOut: string[]): [string, string][] {
  return [...headers].filter(([name]) => !leaveOut.includes(name)).sort();
}

Deno.test("serveRanges", async (t) => {
  await t.step("answers a request without Range with 200 and the whole", async () => {
    const { status, headers, body, opened } = await serve();
    assert.equal(status, 200);
    assert.deepEqual(fields(headers), [
      ["accept-ranges", "bytes"],
      ["content-length", "20"],
      ["content-type", "text/plain; charset=utf-8"],
      ["etag", ETAG],
      ["last-modified", MODIFIED_TEXT],
    ]);
    assert.equal(latin1(body!), "0123456789abcdefghij");
    assert.deepEqual(opened, [{ first: 0, last: 19 }]);
  });

  await t.step("answers one range with 206 and Content-Range", async () => {
    const { status, headers, body } = await serve({ range: "bytes=2-5" });
    assert.equal(status, 206);
    assert.deepEqual(fields(headers), [
      ["accept-ranges", "bytes"],
      ["content-length", "4"],
      ["content-range", "bytes 2-5/20"],
      ["content-type", "text/plain; charset=utf-8"],
      ["etag", ETAG],
      ["last-modified", MODIFIED_TEXT],
    ]);
    assert.equal(latin1(body!), "2345");
    for (
      const [range, want, text] of [["bytes=-3", "bytes 17-19/20", "hij"], [
        "bytes=18-",
        "bytes 18-19/20",
        "ij",
      ], ["bytes=15-99", "bytes 15-19/20", "fghij"]]
    ) {
      const answer = await serve({ range: range! });
      assert.equal(answer.status, 206, range);
      assert.equal(answer.headers.get("content-range"), want, range);
      assert.equal(latin1(answer.body!), text, range);
    }
  });

  await t.step("answers ranges that coalesce into one with a single-part 206", async () => {
    const { status, headers, body } = await serve({ range: "bytes=0-3,2-6,7-7" });
    assert.equal(status, 206);
    assert.equal(headers.get("content-range"), "bytes 0-7/20");
    assert.equal(latin1(body!), "01234567");
  });

  await t.step(
    "answers several ranges with a multipart/byteranges 206 of the announced length",
    async () => {
      const { status, headers, body, opened } = await serve({ range: "bytes=10-12, 0-1, -2" });
      assert.equal(status, 206);
      const boundary = boundaryOf(headers.get("content-type"));
      assert.match(boundary, /^[0-9a-f]{24}$/);
      assert.deepEqual(fields(headers, "content-type", "content-length"), [
        ["accept-ranges", "bytes"],
        ["etag", ETAG],
        ["last-modified", MODIFIED_TEXT],
      ]);
      assert.equal(headers.get("content-range"), null);
      assert.equal(Number(headers.get("content-length")), body!.length);
      assert.equal(
        latin1(body!),
        `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 10-12/20\r\n\r\nabc\r\n` +
          `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/20\r\n\r\n01\r\n` +
          `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 18-19/20\r\n\r\nij\r\n` +
          `--${boundary}--\r\n`,
      );
      assert.deepEqual(opened, [{ first: 10, last: 12 }, { first: 0, last: 1 }, {
        first: 18,
        last: 19,
      }]);
      // A fresh boundary each time.
      const again = await serve({ range: "bytes=10-12, 0-1" });
      assert.notEqual(boundaryOf(again.headers.get("content-type")), boundary);
      // Without a media type, the parts carry none.
      const untyped = await serve({ range: "bytes=0-0,2-2" }, "GET", { contentType: undefined });
      const parts = parseByteranges(untyped.body!, boundaryOf(untyped.headers.get("content-type")));
      assert.deepEqual(parts.map((p) => [...p.headers]), [[["content-range", "bytes 0-0/20"]], [[
        "content-range",
        "bytes 2-2/20",
      ]]]);
    },
  );

  await t.step("answers no satisfiable range with 416 and bytes */size", async () => {
    const { status, headers, body, opened } = await serve({ range: "bytes=20-,30-40" });
    assert.equal(status, 416);
    assert.equal(headers.get("content-range"), "bytes */20");
    assert.equal(headers.get("content-type"), "text/plain; charset=utf-8");
    const text = 'Cannot serve ranges: none of "bytes=20-,30-40" lies within the 20 bytes\n';
    assert.equal(latin1(body!), text);
    assert.equal(headers.get("content-length"), String(text.length));
    assert.deepEqual(opened, []);
  });

  await t.step("ignores a malformed Range, another unit, and too many ranges: 200", async () => {
    for (const range of ["bytes=5-2", "bytes=x", "items=0-1", "bytes 0-1"]) {
      const { status, headers, body } = await serve({ range });
      assert.equal(status, 200, range);
      assert.equal(headers.get("content-range"), null, range);
      assert.equal(body!.length, 20, range);
    }
    const many = "bytes=" + Array.from({ length: 5 }, (_, i) => `${i * 2}-${i * 2}`).join(",");
    assert.equal((await serve({ range: many }, "GET", { maxRanges: 5 })).status, 206);
    assert.equal((await serve({ range: many }, "GET", { maxRanges: 4 })).status, 200);
    assert.equal((await serve({ range: "bytes=0-0" }, "GET", { maxRanges: 1 })).status, 206);
    assert.equal((await serve({ range: "bytes=0-0,2-2" }, "GET", { maxRanges: 1 })).status, 200);
  });

  await t.step(
    "HEAD ignores Range and If-Range: a whole GET's fields, no body, nothing read",
    async () => {
      // RFC 9110 §14.2: GET is the only method for which range handling is defined.
      const whole = await serve();
      for (const range of [null, "bytes=2-5", "bytes=0-1,4-5", "bytes=99-"]) {
        for (const ifRange of [null, ETAG, '"v0"']) {
          const headers: Record<string, string> = {};
          if (range !== null) headers.range = range;
          if (ifRange !== null) headers["if-range"] = ifRange;
          const context = JSON.stringify(headers);
          const head = await serve(headers, "HEAD");
          assert.equal(head.status, 200, context);
          assert.equal(head.body, null, context);
          assert.deepEqual(head.opened, [], context);
          assert.deepEqual(fields(head.headers), fields(whole.headers), context);
          assert.equal(head.headers.get("content-length"), "20", context);
        }
      }
      // The conditions still apply.
      assert.equal(
        (await serve({ range: "bytes=0-1", "if-none-match": ETAG }, "HEAD")).status,
        304,
      );
      assert.equal((await serve({ range: "bytes=0-1", "if-match": '"v0"' }, "HEAD")).status, 412);
    },
  );

  await t.step(
    "If-Range with the strong ETag serves the ranges; any other tag the whole",
    async () => {
      assert.equal((await serve({ range: "bytes=0-1", "if-range": ETAG })).status, 206);
      assert.equal((await serve({ range: "bytes=0-1", "if-range": ` ${ETAG}\t` })).status, 206);
      for (const ifRange of ['"v0"', 'W/"v1"', '"v1', "v1", '"v1", "v2"']) {
        const { status, body } = await serve({ range: "bytes=0-1", "if-range": ifRange });
        assert.equal(status, 200, ifRange);
        assert.equal(body!.length, 20, ifRange);
      }
      // A weak ETag never matches, not even itself (RFC 9110 §13.1.5).
      const weak = await serve({ range: "bytes=0-1", "if-range": 'W/"v1"' }, "GET", {
        etag: 'W/"v1"',
      });
      assert.equal(weak.status, 200);
      // Without an ETag, no tag matches.
      assert.equal(
        (await serve({ range: "bytes=0-1", "if-range": ETAG }, "GET", { etag: undefined })).status,
        200,
      );
      // An unsatisfiable range under a failed If-Range is the whole, not 416.
      assert.equal((await serve({ range: "bytes=99-", "if-range": '"v0"' })).status, 200);
    },
  );

  await t.step(
    "If-Range with a date serves the ranges only for the exact Last-Modified",
    async () => {
      const ifRange = (date: string, lastModified = MODIFIED) =>
        serve({ range: "bytes=0-1", "if-range": date }, "GET", { lastModified });
      assert.equal((await ifRange(MODIFIED_TEXT)).status, 206);
      assert.equal((await ifRange("Friday, 01-Mar-24 12:34:56 GMT")).status, 206); // RFC 850
      assert.equal((await ifRange("Fri Mar  1 12:34:56 2024")).status, 206); // asctime
      assert.equal((await ifRange("Fri, 01 Mar 2024 12:34:55 GMT")).status, 200); // earlier
      assert.equal((await ifRange("Fri, 01 Mar 2024 12:34:57 GMT")).status, 200); // later
      assert.equal((await ifRange("2024-03-01T12:34:56Z")).status, 200); // not an HTTP-date
      const unknown = serve({ range: "bytes=0-1", "if-range": MODIFIED_TEXT }, "GET", {
        lastModified: undefined,
      });
      assert.equal((await unknown).status, 200); // no Last-Modified
      // A Last-Modified of the last second or two is a weak validator (RFC 9110 §8.8.2.2).
      const recent = new Date(Date.now() - 500);
      assert.equal((await ifRange(recent.toUTCString(), recent)).status, 200);
      const older = new Date(Date.now() - 3000);
      assert.equal((await ifRange(older.toUTCString(), older)).status, 206);
    },
  );

  await t.step("sends a Last-Modified in the future as the time of the answer", async () => {
    // RFC 9110 §8.8.2.1: no Last-Modified later than the message's origination.
    const before = Math.floor(Date.now() / 1000) * 1000;
    const { headers } = await serve({}, "GET", { lastModified: new Date(Date.now() + 86_400_000) });
    const sent = Date.parse(headers.get("last-modified")!);
    assert.ok(sent >= before && sent <= Date.now(), headers.get("last-modified")!);
    // The conditions use the same time: the date sent gives 304.
    const since = { "if-modified-since": headers.get("last-modified")! };
    const future = new Date(Date.now() + 86_400_000);
    assert.equal((await serve(since, "GET", { lastModified: future })).status, 304);
  });

  await t.step("cuts a Last-Modified before 1970 down to its second, as after", async () => {
    const before1970 = new Date(-1500); // 1969-12-31T23:59:58.500Z
    const { headers } = await serve({}, "GET", { lastModified: before1970 });
    assert.equal(headers.get("last-modified"), "Wed, 31 Dec 1969 23:59:58 GMT");
    const since = { "if-modified-since": "Wed, 31 Dec 1969 23:59:58 GMT" };
    assert.equal((await serve(since, "GET", { lastModified: before1970 })).status, 304);
  });

  await t.step("If-None-Match and If-Modified-Since answer 304 with the validators", async () => {
    for (const ifNoneMatch of [ETAG, 'W/"v1"', '"x", "v1"', '"a,b", W/"v1"', "*", ' "v1" ']) {
      const { status, headers, body, opened } = await serve({
        "if-none-match": ifNoneMatch,
        range: "bytes=0-1",
      });
      assert.equal(status, 304, ifNoneMatch);
      assert.equal(body, null);
      assert.deepEqual(opened, []);
      assert.deepEqual(fields(headers), [
        ["accept-ranges", "bytes"],
        ["etag", ETAG],
        ["last-modified", MODIFIED_TEXT],
      ], ifNoneMatch);
    }
    for (const ifNoneMatch of ['"v2"', '"v1', "v1", '"a,b"']) {
      assert.equal((await serve({ "if-none-match": ifNoneMatch })).status, 200, ifNoneMatch);
    }
    assert.equal((await serve({ "if-modified-since": MODIFIED_TEXT })).status, 304);
    assert.equal(
      (await serve({ "if-modified-since": "Sat, 02 Mar 2024 00:00:00 GMT" })).status,
      304,
    );
    assert.equal(
      (await serve({ "if-modified-since": "Fri, 01 Mar 2024 12:34:55 GMT" })).status,
      200,
    );
    assert.equal((await serve({ "if-modified-since": "yesterday" })).status, 200);
    // If-None-Match takes precedence: If-Modified-Since is not looked at (RFC 9110 §13.1.3).
    assert.equal(
      (await serve({ "if-none-match": '"v2"', "if-modified-since": MODIFIED_TEXT })).status,
      200,
    );
    assert.equal((await serve({ "if-modified-since": MODIFIED_TEXT }, "HEAD")).status, 304);
  });

  await t.step("If-Match and If-Unmodified-Since fail with 412", async () => {
    for (const ifMatch of ['"v2"', 'W/"v1"', "garbage"]) {
      const { status, body, opened } = await serve({ "if-match": ifMatch });
      assert.equal(status, 412, ifMatch);
      assert.equal(latin1(body!), "Cannot serve: a precondition of the request failed\n");
      assert.deepEqual(opened, []);
    }
    for (const ifMatch of [ETAG, '"v0", "v1"', "*"]) {
      assert.equal((await serve({ "if-match": ifMatch })).status, 200, ifMatch);
    }
    assert.equal((await serve({ "if-match": ETAG }, "GET", { etag: undefined })).status, 412);
    assert.equal(
      (await serve({ "if-unmodified-since": "Fri, 01 Mar 2024 12:34:55 GMT" })).status,
      412,
    );
    assert.equal((await serve({ "if-unmodified-since": MODIFIED_TEXT })).status, 200);
    // If-Match takes precedence over If-Unmodified-Since, and 412 over 304.
    assert.equal(
      (await serve({ "if-match": ETAG, "if-unmodified-since": "Mon, 01 Jan 2024 00:00:00 GMT" }))
        .status,
      200,
    );
    assert.equal((await serve({ "if-match": '"v2"', "if-none-match": ETAG })).status, 412);
    const head = await serve({ "if-match": '"v2"' }, "HEAD");
    assert.equal(head.status, 412);
    assert.equal(head.body, null);
    assert.equal(head.headers.get("content-length"), "51");
  });

  await t.step("answers other methods with 405 and Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const { status, headers, opened } = await serve({ range: "bytes=0-1" }, method);
      assert.equal(status, 405, method);
      assert.equal(headers.get("allow"), "GET, HEAD");
      assert.deepEqual(opened, []);
    }
  });

  await t.step("serves an empty representation without opening it", async () => {
    const empty = { size: 0 };
    const whole = await serve({}, "GET", empty);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get("content-length"), "0");
    assert.equal(whole.body, null);
    assert.deepEqual(whole.opened, []);
    const ranged = await serve({ range: "bytes=0-" }, "GET", empty);
    assert.equal(ranged.status, 416);
    assert.equal(ranged.headers.get("content-range"), "bytes */0");
    // A non-empty suffix is satisfiable (RFC 9110 §14.1.1), but a 206 cannot send no bytes.
    const suffix = await serve({ range: "bytes=-5" }, "GET", empty);
    assert.equal(suffix.status, 200);
    assert.equal(suffix.headers.get("content-length"), "0");
    assert.equal(suffix.headers.get("content-range"), null);
    assert.deepEqual(suffix.opened, []);
  });

  await t.step("adds the extra headers, and sets its own over them", async () => {
    const { headers } = await serve({ range: "bytes=0-1" }, "GET", {
      headers: { "cache-control": "max-age=60", "accept-ranges": "none", "content-length": "1" },
    });
    assert.equal(headers.get("cache-control"), "max-age=60");
    assert.equal(headers.get("accept-ranges"), "bytes");
    assert.equal(headers.get("content-length"), "2");
  });

  await t.step("fails the body when open gives the wrong number of bytes", async () => {
    const response = serveRanges(
      new Request("http://localhost/", { headers: { range: "bytes=0-4" } }),
      {
        size: 20,
        open: () => DATA,
      },
    );
    assert.equal(response.status, 206);
    await assert.rejects(response.arrayBuffer(), RangeError);
  });

  await t.step("refuses invalid options", () => {
    const request = new Request("http://localhost/");
    const { options } = representation();
    assert.throws(() => serveRanges(request, { ...options, size: -1 }), RangeError);
    assert.throws(() => serveRanges(request, { ...options, size: 1.5 }), RangeError);
    assert.throws(() => serveRanges(request, { ...options, maxRanges: 0 }), RangeError);
    // Checked first: not hidden behind a 405, 304 or 412 that needs no size.
    const post = new Request("http://localhost/", { method: "POST" });
    assert.throws(() => serveRanges(post, { ...options, size: -1 }), RangeError);
    const cached = new Request("http://localhost/", { headers: { "if-none-match": "*" } });
    assert.throws(() => serveRanges(cached, { ...options, size: 1.5 }), RangeError);
    const failed = new Request("http://localhost/", { headers: { "if-match": '"other"' } });
    assert.throws(() => serveRanges(failed, { ...options, size: -1 }), RangeError);
    assert.throws(
      () => serveRanges(request, { ...options, lastModified: new Date(NaN) }),
      RangeError,
    );
    for (const etag of ["v1", '"v"1"', 'w/"v1"', '"a\r\nb"']) {
      assert.throws(() => serveRanges(request, { ...options, etag }), TypeError, etag);
    }
    assert.throws(
      () => serveRanges(request, { ...options, open: null as unknown as OpenRange }),
      TypeError,
    );
    assert.throws(() => serveRanges(request, { ...options, contentType: "a\r\nb" }), TypeError);
  });
});
