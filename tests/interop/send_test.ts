// Copyright 2026 the wirestream authors. MIT license.
// serveFile against npm:send (what Express's static files use), a server we did not write,
// on the same files: the same requests get the same status, range fields and bytes, on both
// engines. send answers several ranges with the whole file, so a multipart answer of ours is
// compared part by part with send's bytes; where send departs from RFC 9110, the test says so
// and pins both answers.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import send from "send";
import { serveFile } from "@wirestream/wirestream";
import { boundaryOf, parseByteranges } from "../_util/byteranges.ts";
import { engines } from "../_util/engines.ts";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";

const SIZE = 200_000;
const DATA = randomBytes(seeded(9), SIZE);
const TEXT = new TextEncoder().encode("plain text, for the charset\n");
// Both servers read the mtime; a minute old, so that an If-Range date is a strong validator.
const MTIME = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);

/** npm:send on node:http, serving `root`. */
async function sendServer(root: string) {
  const server = http.createServer((req, res) => {
    send(req, new URL(req.url!, "http://x").pathname, { root }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An answer, reduced to what the two servers must agree on. */
interface Answer {
  status: number;
  /** The range-related fields (null when absent). */
  fields: Record<string, string | null>;
  body: Uint8Array;
  headers: Headers;
}

const RANGE_FIELDS = ["content-range", "content-length", "accept-ranges", "content-type"];

/** Asks `origin` for `path` with `method` and `headers`. */
async function ask(
  origin: string,
  path: string,
  headers: HeadersInit = {},
  method = "GET",
): Promise<Answer> {
  const response = await fetch(origin + path, { method, headers });
  const body = await response.bytes();
  const fields: Record<string, string | null> = {};
  for (const name of RANGE_FIELDS) fields[name] = response.headers.get(name);
  return { status: response.status, fields, body, headers: response.headers };
}

/** Asserts the two answers agree on status, the range fields that apply, and bytes. */
function assertAgree(ours: Answer, theirs: Answer, what: string): void {
  assert.equal(ours.status, theirs.status, `${what}: status`);
  if (ours.status === 200 || ours.status === 206) {
    assert.deepEqual(ours.fields, theirs.fields, `${what}: range fields`);
    assert.ok(sameBytes(ours.body, theirs.body), `${what}: bytes`);
  } else if (ours.status === 416) {
    // The bodies are each server's own error page.
    assert.equal(
      ours.fields["content-range"],
      theirs.fields["content-range"],
      `${what}: Content-Range`,
    );
  }
}

// Requests whose answers RFC 9110 and send agree on: [what, path, headers, method].
const AGREED: [string, string, Record<string, string>, string][] = [
  ["no Range", "/clip.mp4", {}, "GET"],
  ["the first byte", "/clip.mp4", { range: "bytes=0-0" }, "GET"],
  ["a first-last range", "/clip.mp4", { range: "bytes=100-1099" }, "GET"],
  ["an open-ended range", "/clip.mp4", { range: "bytes=150000-" }, "GET"],
  ["a suffix range", "/clip.mp4", { range: "bytes=-100" }, "GET"],
  ["a last position past the end", "/clip.mp4", { range: "bytes=199990-999999" }, "GET"],
  ["the whole as a range", "/clip.mp4", { range: "bytes=0-199999" }, "GET"],
  ["adjacent ranges", "/clip.mp4", { range: "bytes=0-9,10-19" }, "GET"],
  ["overlapping ranges", "/clip.mp4", { range: "bytes=0-50, 25-75" }, "GET"],
  ["a first position at the end", "/clip.mp4", { range: "bytes=200000-" }, "GET"],
  ["an empty suffix", "/clip.mp4", { range: "bytes=-0" }, "GET"],
  ["no range within", "/clip.mp4", { range: "bytes=300000-400000" }, "GET"],
  ["another unit", "/clip.mp4", { range: "items=0-9" }, "GET"],
  ["no '='", "/clip.mp4", { range: "bytes" }, "GET"],
  ["HEAD", "/clip.mp4", {}, "HEAD"],
  ["a text file's range", "/notes.txt", { range: "bytes=0-4" }, "GET"],
  ["If-Range with the exact date", "/clip.mp4", {
    range: "bytes=5-9",
    "if-range": MTIME.toUTCString(),
  }, "GET"],
  ["If-Range with an earlier date", "/clip.mp4", {
    range: "bytes=5-9",
    "if-range": new Date(MTIME.getTime() - 5000).toUTCString(),
  }, "GET"],
  ["If-Range with another ETag", "/clip.mp4", { range: "bytes=5-9", "if-range": '"other"' }, "GET"],
  ["If-Modified-Since the date", "/clip.mp4", { "if-modified-since": MTIME.toUTCString() }, "GET"],
  ["If-Modified-Since before", "/clip.mp4", {
    "if-modified-since": new Date(MTIME.getTime() - 5000).toUTCString(),
  }, "GET"],
  ["If-Match another ETag", "/clip.mp4", { "if-match": '"other"' }, "GET"],
  ["If-Unmodified-Since before", "/clip.mp4", {
    "if-unmodified-since": new Date(MTIME.getTime() - 5000).toUTCString(),
  }, "GET"],
];

Deno.test("serveFile agrees with npm:send", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "wirestream-send-" });
  await Deno.writeFile(`${root}/clip.mp4`, DATA);
  await Deno.writeFile(`${root}/notes.txt`, TEXT);
  for (const name of ["clip.mp4", "notes.txt"]) await Deno.utime(`${root}/${name}`, MTIME, MTIME);
  const theirs = await sendServer(root);
  try {
    for (const engine of engines) {
      const ours = engine.serve((request) =>
        serveFile(request, root + new URL(request.url).pathname)
      );
      try {
        await t.step(`${engine.name}: status, range fields and bytes`, async () => {
          for (const [what, path, headers, method] of AGREED) {
            assertAgree(
              await ask(ours.origin, path, headers, method),
              await ask(theirs.origin, path, headers, method),
              what,
            );
          }
        });

        await t.step(
          `${engine.name}: If-Range and If-None-Match with each one's own ETag`,
          async () => {
            for (const origin of [ours.origin, theirs.origin]) {
              const etag = (await ask(origin, "/clip.mp4", {}, "HEAD")).headers.get("etag")!;
              const resumed = await ask(origin, "/clip.mp4", {
                range: "bytes=7-8",
                "if-range": etag,
              });
              assert.equal(resumed.status, 206, origin);
              assert.ok(sameBytes(resumed.body, DATA.subarray(7, 9)));
              assert.equal(
                (await ask(origin, "/clip.mp4", { "if-none-match": etag })).status,
                304,
                origin,
              );
            }
          },
        );

        await t.step(`${engine.name}: several ranges: our parts are send's bytes`, async () => {
          const range = { range: "bytes=0-9, 100000-100099, -10" };
          const whole = await ask(theirs.origin, "/clip.mp4", range);
          assert.equal(whole.status, 200, "send answers several ranges with the whole");
          const multi = await ask(ours.origin, "/clip.mp4", range);
          assert.equal(multi.status, 206);
          assert.equal(Number(multi.fields["content-length"]), multi.body.length);
          const parts = parseByteranges(multi.body, boundaryOf(multi.headers.get("content-type")));
          assert.deepEqual(parts.map((p) => [p.range.first, p.range.last, p.range.size]), [
            [0, 9, SIZE],
            [100_000, 100_099, SIZE],
            [SIZE - 10, SIZE - 1, SIZE],
          ]);
          for (const part of parts) {
            assert.equal(part.headers.get("content-type"), whole.fields["content-type"]);
            assert.ok(
              sameBytes(part.body, whole.body.subarray(part.range.first, part.range.last + 1)),
            );
          }
        });

        await t.step(`${engine.name}: where send departs from RFC 9110`, async () => {
          // A suffix longer than the file is all of it (§14.1.3); send refuses it.
          const suffix = { range: "bytes=-500000" };
          assert.equal((await ask(theirs.origin, "/clip.mp4", suffix)).status, 416);
          const all = await ask(ours.origin, "/clip.mp4", suffix);
          assert.equal(all.status, 206);
          assert.equal(all.fields["content-range"], `bytes 0-${SIZE - 1}/${SIZE}`);
          assert.ok(sameBytes(all.body, DATA));
          // A range whose last position is below its first makes the header invalid, to be
          // ignored (§14.1.1); send answers 416.
          const reversed = { range: "bytes=5-2" };
          assert.equal((await ask(theirs.origin, "/clip.mp4", reversed)).status, 416);
          assert.equal((await ask(ours.origin, "/clip.mp4", reversed)).status, 200);
          // If-Range: a weak ETag never matches, and a date must be Last-Modified exactly
          // (§13.1.5); send takes both.
          const weak = (await ask(theirs.origin, "/clip.mp4", {}, "HEAD")).headers.get("etag")!;
          assert.match(weak, /^W\//);
          const later = new Date(MTIME.getTime() + 5000).toUTCString();
          for (const ifRange of [weak, later]) {
            const headers = { range: "bytes=5-9", "if-range": ifRange };
            assert.equal((await ask(theirs.origin, "/clip.mp4", headers)).status, 206, ifRange);
            assert.equal((await ask(ours.origin, "/clip.mp4", headers)).status, 200, ifRange);
          }
          // Range is defined for GET only, and other methods must ignore it (§14.2); send
          // answers a HEAD with a range with the 206 fields.
          const head = { range: "bytes=10-19" };
          const partial = await ask(theirs.origin, "/clip.mp4", head, "HEAD");
          assert.equal(partial.status, 206);
          assert.equal(partial.fields["content-length"], "10");
          const whole = await ask(ours.origin, "/clip.mp4", head, "HEAD");
          assert.equal(whole.status, 200);
          assert.equal(whole.fields["content-length"], String(SIZE));
          assert.equal(whole.fields["content-range"], null);
        });
      } finally {
        await ours.close();
      }
    }
  } finally {
    await theirs.close();
    await Deno.remove(root, { recursive: true });
  }
});
