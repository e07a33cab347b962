// Copyright 2026 the wirestream authors. MIT license.
// serveFile and serveRanges over real sockets on 127.0.0.1, on both engines, with curl (-r,
// -I, -C -) and Deno's fetch as clients: what arrives is byte for byte the file's. Then
// serveFile's root behind routes, with curl --path-as-is: no URL leaves the folder.
import assert from "node:assert/strict";
import { Application, type ByteRange, serveFile, serveRanges } from "@wirestream/wirestream";
import { boundaryOf, parseByteranges } from "../_util/byteranges.ts";
import { curl, parseCurl } from "../_util/curl.ts";
import { engines } from "../_util/engines.ts";
import { delay, latin1, type WireResponse, within } from "../_util/http.ts";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";

const SIZE = 3 * (1 << 20) + 123; // 3 MiB and a bit: many chunks, an odd end
const DATA = randomBytes(seeded(42), SIZE);

/** What the slow route's sources saw: each range opened, and each cancel. */
interface SlowLog {
  opened: ByteRange[];
  cancelled: unknown[];
}

/**
 * The routes: `/file.bin` and `/big.bin` are serveFile of the fixtures; `/slow` serves ranges of DATA from
 * streams that give 16 KiB per 5 ms and log their cancels.
 */
function handler(path: string, big: string, log: SlowLog) {
  return (request: Request) => {
    const url = new URL(request.url);
    if (url.pathname === "/file.bin") return serveFile(request, path);
    if (url.pathname === "/big.bin") return serveFile(request, big);
    if (url.pathname === "/slow") {
      return serveRanges(request, {
        size: SIZE,
        contentType: "application/octet-stream",
        open: (range) => {
          log.opened.push(range);
          let at = range.first;
          return new ReadableStream<Uint8Array>({
            async pull(controller) {
              await delay(5);
              const end = Math.min(at + 16_384, range.last + 1);
              controller.enqueue(DATA.slice(at, end));
              at = end;
              if (at > range.last) controller.close();
            },
            cancel: (reason) => void log.cancelled.push(reason),
          }, { highWaterMark: 0 });
        },
      });
    }
    return new Response("not found", { status: 404 });
  };
}

/** How many of this process's file descriptors are open on `path` (Linux: /proc/self/fd). */
async function handlesOf(path: string): Promise<number> {
  let count = 0;
  for await (const entry of Deno.readDir("/proc/self/fd")) {
    const target = await Deno.readLink(`/proc/self/fd/${entry.name}`).catch(() => "");
    if (target === path) count++;
  }
  return count;
}

/** Resolves once `condition` holds, checking every 10 ms. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await delay(10);
}

/** The only response curl printed. */
async function one(stdout: Uint8Array, method = "GET"): Promise<WireResponse> {
  const responses = await parseCurl(stdout, method);
  assert.equal(responses.length, 1);
  return responses[0]!;
}

Deno.test("serveFile and serveRanges on both engines", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wirestream-ranges-" });
  const path = `${dir}/file.bin`;
  await Deno.writeFile(path, DATA);
  // A Last-Modified some seconds old, so that If-Range may use it (RFC 9110 §8.8.2.2).
  await Deno.utime(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  // A sparse file larger than the sockets' buffers: a client that stops reading holds it open.
  const big = `${dir}/big.bin`;
  await Deno.writeFile(big, new Uint8Array(0));
  await Deno.truncate(big, 256 * (1 << 20));
  try {
    for (const engine of engines) {
      await t.step(engine.name, async (t) => {
        const log: SlowLog = { opened: [], cancelled: [] };
        const server = engine.serve(handler(path, big, log));
        const url = `${server.origin}/file.bin`;
        try {
          await t.step(
            "curl -r: one range is a 206 with its bytes and Content-Length",
            async () => {
              const { code, stdout, stderr } = await curl("-i", "--raw", "-r", "1000-1999", url);
              assert.equal(code, 0, stderr);
              const response = await one(stdout);
              assert.equal(response.status, 206);
              assert.equal(response.framing, "length");
              assert.equal(response.headers.get("content-length"), "1000");
              assert.equal(response.headers.get("content-range"), `bytes 1000-1999/${SIZE}`);
              assert.equal(response.headers.get("accept-ranges"), "bytes");
              assert.equal(response.headers.get("content-type"), "application/octet-stream");
              assert.ok(sameBytes(response.body, DATA.subarray(1000, 2000)));
            },
          );

          await t.step("curl -r: ranges are a multipart 206 of the announced length", async () => {
            const { code, stdout, stderr } = await curl(
              "-i",
              "--raw",
              "-r",
              "0-9,-5,2000000-2999999",
              url,
            );
            assert.equal(code, 0, stderr);
            const response = await one(stdout);
            assert.equal(response.status, 206);
            assert.equal(response.framing, "length");
            assert.equal(Number(response.headers.get("content-length")), response.body.length);
            const parts = parseByteranges(
              response.body,
              boundaryOf(response.headers.get("content-type")),
            );
            assert.deepEqual(parts.map((p) => [p.range.first, p.range.last]), [
              [0, 9],
              [SIZE - 5, SIZE - 1],
              [2_000_000, 2_999_999],
            ]);
            for (const part of parts) {
              assert.ok(sameBytes(part.body, DATA.subarray(part.range.first, part.range.last + 1)));
            }
          });

          await t.step(
            "curl: a multipart body, then the whole file, on one connection",
            async () => {
              const connects = ["-w", "%{stderr}connects: %{num_connects}\n"];
              const { code, stdout, stderr } = await curl(
                ...["-i", "--raw", "-r", "5-6,8-9", ...connects, url],
                ...["--next", "-i", "--raw", ...connects, url],
              );
              assert.equal(code, 0, stderr);
              assert.equal(
                stderr,
                "connects: 1\nconnects: 0\n",
                "the second request reused the connection",
              );
              const [ranged, whole] = await parseCurl(stdout);
              assert.equal(ranged?.status, 206);
              const parts = parseByteranges(
                ranged.body,
                boundaryOf(ranged.headers.get("content-type")),
              );
              assert.deepEqual(parts.map((p) => [...p.body]), [[...DATA.subarray(5, 7)], [
                ...DATA.subarray(8, 10),
              ]]);
              assert.equal(whole?.status, 200, "the second response starts where the first ended");
              assert.equal(whole.headers.get("content-length"), String(SIZE));
              assert.ok(sameBytes(whole.body, DATA));
            },
          );

          await t.step("curl -I -r: HEAD ignores Range, the 200 fields and no body", async () => {
            // RFC 9110 §14.2: GET is the only method for which range handling is defined.
            const { code, stdout, stderr } = await curl("-I", "--raw", "-r", "10-19", url);
            assert.equal(code, 0, stderr);
            const response = await one(stdout, "HEAD");
            assert.equal(response.status, 200);
            assert.equal(response.headers.get("content-length"), String(SIZE));
            assert.equal(response.headers.get("content-range"), null);
            assert.ok(latin1(stdout).endsWith("\r\n\r\n"), "nothing after the head");
          });

          await t.step("curl -r past the end: 416 with bytes */size", async () => {
            const { code, stdout, stderr } = await curl("-i", "--raw", "-r", `${SIZE}-`, url);
            assert.equal(code, 0, stderr);
            const response = await one(stdout);
            assert.equal(response.status, 416);
            assert.equal(response.headers.get("content-range"), `bytes */${SIZE}`);
          });

          await t.step("curl -C -: a cut download resumes into the whole file", async () => {
            const out = `${dir}/resumed-${engine.name.split(" ")[0]}.bin`;
            await Deno.writeFile(out, DATA.subarray(0, 1_000_003));
            const { code, stderr } = await curl("-C", "-", "-o", out, url);
            assert.equal(code, 0, stderr);
            assert.ok(sameBytes(await Deno.readFile(out), DATA));
          });

          await t.step(
            "fetch: If-Range with the ETag or the date resumes; a stale one gets 200",
            async () => {
              const head = await fetch(url, { method: "HEAD" });
              assert.equal(head.status, 200);
              const etag = head.headers.get("etag")!;
              const date = head.headers.get("last-modified")!;
              for (const ifRange of [etag, date]) {
                const response = await fetch(url, {
                  headers: { range: "bytes=100-", "if-range": ifRange },
                });
                assert.equal(response.status, 206, ifRange);
                assert.ok(sameBytes(await response.bytes(), DATA.subarray(100)));
              }
              const stale = await fetch(url, {
                headers: { range: "bytes=100-", "if-range": '"stale"' },
              });
              assert.equal(stale.status, 200);
              assert.ok(sameBytes(await stale.bytes(), DATA));
              const cached = await fetch(url, { headers: { "if-none-match": etag } });
              assert.equal(cached.status, 304);
              assert.equal(await cached.text(), "");
            },
          );

          await t.step("fetch: a multipart body parses into the file's bytes", async () => {
            const response = await fetch(url, { headers: { range: "bytes=0-0, 1-1, 3-1000000" } });
            assert.equal(response.status, 206);
            const body = await response.bytes();
            assert.equal(Number(response.headers.get("content-length")), body.length);
            const parts = parseByteranges(body, boundaryOf(response.headers.get("content-type")));
            assert.deepEqual(parts.map((p) => [p.range.first, p.range.last]), [[0, 1], [
              3,
              1_000_000,
            ]]);
            assert.ok(sameBytes(parts[1]!.body, DATA.subarray(3, 1_000_001)));
          });

          await t.step("fetch aborted mid-range: the range's source is cancelled", async () => {
            log.opened.length = 0;
            log.cancelled.length = 0;
            const controller = new AbortController();
            const response = await fetch(`${server.origin}/slow`, {
              headers: { range: "bytes=0-2999999" },
              signal: controller.signal,
            });
            assert.equal(response.status, 206);
            const reader = response.body!.getReader();
            await reader.read();
            controller.abort();
            await reader.closed.catch(() => {});
            await within(
              until(() => Promise.resolve(log.cancelled.length > 0)),
              5000,
              "the source's cancel",
            );
            assert.deepEqual(log.opened, [{ first: 0, last: 2_999_999 }]);
            assert.equal(log.cancelled.length, 1);
          });

          await t.step("curl killed mid-file: the file handle is closed", async () => {
            const child = new Deno.Command("curl", {
              args: [
                "--silent",
                "--limit-rate",
                "100k",
                "-o",
                "/dev/null",
                `${server.origin}/big.bin`,
              ],
              stdout: "null",
              stderr: "null",
            }).spawn();
            await within(until(async () => (await handlesOf(big)) === 1), 5000, "the file to open");
            await delay(100);
            assert.equal(await handlesOf(big), 1, "the file is still being sent");
            child.kill("SIGKILL");
            await child.status;
            await within(
              until(async () => (await handlesOf(big)) === 0),
              5000,
              "the file to close",
            );
          });
        } finally {
          await server.close();
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serveFile with root on both engines: URLs cannot leave the folder", async (t) => {
  // base/secret.txt is outside the root; base/public is the root.
  const base = await Deno.makeTempDir({ prefix: "wirestream-root-" });
  const root = `${base}/public`;
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  await Deno.writeTextFile(`${base}/secret.txt`, "SECRET");
  await Deno.writeTextFile(`${root}/hello.txt`, "hello");
  await Deno.writeTextFile(`${root}/a..b.txt`, "dots in a name");
  await Deno.writeTextFile(`${root}/sub/a.txt`, "in sub");
  await Deno.symlink("hello.txt", `${root}/link-in.txt`); // stays inside: followed
  await Deno.symlink("../secret.txt", `${root}/link-out.txt`); // leaves: 404
  await Deno.symlink("../nothing.txt", `${root}/link-nowhere.txt`); // leaves, to nothing: 404
  await Deno.symlink("..", `${root}/up`); // a folder link that leaves: 404 below it
  const app = new Application().routing((r) => {
    r.get("/files/:name", (request, { params }) => serveFile(request, params.name!, { root }));
    r.get("/static/*", (request, { params }) => serveFile(request, params[0]!, { root }));
  });
  /** What curl gets for `path`, sent as it is (--path-as-is): the status and body. */
  const fetchAsIs = async (origin: string, path: string) => {
    const { code, stdout, stderr } = await curl("-i", "--raw", "--path-as-is", origin + path);
    assert.equal(code, 0, stderr);
    const response = await one(stdout);
    return `${response.status} ${latin1(response.body)}`;
  };
  const missing = "404 Cannot serve file: not found\n";
  try {
    for (const engine of engines) {
      await t.step(engine.name, async (t) => {
        const server = engine.serve(app.handler);
        const at = (path: string) => fetchAsIs(server.origin, path);
        try {
          await t.step("serves the folder's files, and links that stay inside", async () => {
            assert.equal(await at("/files/hello.txt"), "200 hello");
            assert.equal(await at("/files/a..b.txt"), "200 dots in a name");
            assert.equal(await at("/files/link-in.txt"), "200 hello");
            assert.equal(await at("/static/sub/a.txt"), "200 in sub");
            assert.equal(await at("/files/sub%2Fa.txt"), "200 in sub"); // a / in one segment
          });

          await t.step("a parameter that decodes to .. or / is refused: 404", async () => {
            for (
              const path of [
                "/files/..%2Fsecret.txt", // the review's repro, one level up
                "/files/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                "/files/%2e%2e%2Fsecret.txt",
                "/files/%2E%2E%2fsecret.txt",
                "/files/sub%2F..%2F..%2Fsecret.txt",
                "/files/sub%2F..%2Fhello.txt", // would stay inside: refused all the same
                "/files/%2Fetc%2Fpasswd", // absolute
                "/files/%2F" + encodeURIComponent(`${base}/secret.txt`.slice(1)),
                "/files/..%5Csecret.txt", // a backslash: a separator on Windows
                "/files/..%5c..%5c..%5cetc%5cpasswd",
                "/files/C%3A%5CWindows%5Cwin.ini", // a drive
                "/files/hello.txt%00", // NUL
                "/files/hello.txt%00.png",
                "/static/..%2Fsecret.txt",
                "/static/sub/..%2F..%2Fsecret.txt",
              ]
            ) {
              assert.equal(await at(path), missing, path);
            }
          });

          await t.step("dot segments of the URL itself never reach a route's folder", async () => {
            // The URL parser removes them (%2e%2e among them) before routing: the request is
            // for /secret.txt or /etc/passwd, which no route serves.
            for (const path of ["/static/../secret.txt", "/static/%2e%2e/%2e%2e/etc/passwd"]) {
              assert.match(await at(path), /^404 Cannot route: no route matches the path/, path);
            }
            assert.equal(await at("/static/sub/../hello.txt"), "200 hello"); // inside
          });

          await t.step("links that leave the folder get the 404 of a missing file", async () => {
            assert.equal(await at("/files/link-out.txt"), missing);
            assert.equal(await at("/files/link-nowhere.txt"), missing);
            assert.equal(await at("/static/up/secret.txt"), missing);
            // Out through a link and back in: the real path decides, and it is inside.
            assert.equal(await at("/static/up/public/hello.txt"), "200 hello");
          });

          await t.step("an outside file and an outside nothing answer alike", async () => {
            assert.equal(await at("/files/..%2Fsecret.txt"), await at("/files/..%2Fnothing.txt"));
            assert.equal(await at("/files/link-out.txt"), await at("/files/link-nowhere.txt"));
            assert.equal(await at("/files/link-out.txt"), await at("/files/no-such-file.txt"));
          });
        } finally {
          await server.close();
        }
      });
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
