// Copyright 2026 the wirestream authors. MIT license.
// Uploads end to end on both engines (httpServer and Deno.serve), from clients we did not
// write: curl -F, and fetch with a FormData body. The handlers parse with parseMultipart,
// readFormData and savePart (examples/upload.ts).
import assert from "node:assert/strict";
import { HttpError, parseMultipart } from "@wirestream/wirestream";
import { type SavedFile, uploadHandler, type UploadResult } from "../../examples/upload.ts";
import { deferred, within } from "../_util/async.ts";
import { engines } from "../_util/engines.ts";
import { dial, textOf, utf8 } from "../_util/http.ts";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";

/** What a handler saw of a part. */
interface Seen {
  name: string | null;
  filename: string | null;
  contentType: string | null;
  size: number;
  sha256: string;
}

async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Answers with what parseMultipart gave: each part's head, size and digest, as JSON. */
async function describe(request: Request): Promise<Response> {
  try {
    const seen: Seen[] = [];
    for await (const event of parseMultipart(request)) {
      if (event.type !== "part") continue;
      const data = await new Response(event.body).bytes();
      const { name, filename, contentType } = event;
      seen.push({ name, filename, contentType, size: data.length, sha256: await sha256(data) });
    }
    return Response.json(seen);
  } catch (error) {
    if (error instanceof HttpError) return error.toResponse();
    throw error;
  }
}

/** Runs curl with `args`. */
async function curl(...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", "--max-time", "20", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: textOf(stdout), stderr: textOf(stderr) };
}

const FILE = randomBytes(seeded(5), 3 * 1024 * 1024 + 17); // big enough for Expect: 100-continue
const SMALL = utf8("line one\r\n--not a boundary\r\nline three");

Deno.test("uploads end to end", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wirestream-upload-" });
  const filePath = `${dir}/source.bin`, smallPath = `${dir}/small.txt`;
  await Deno.writeFile(filePath, FILE);
  await Deno.writeFile(smallPath, SMALL);
  const want: Seen[] = [
    {
      name: "title",
      filename: null,
      contentType: null,
      size: 5,
      sha256: await sha256(utf8("Hello")),
    },
    {
      name: "data",
      filename: "source.bin",
      contentType: "application/x-test",
      size: FILE.length,
      sha256: await sha256(FILE),
    },
    {
      name: "notes",
      filename: "small.txt",
      contentType: "text/plain",
      size: SMALL.length,
      sha256: await sha256(SMALL),
    },
  ];
  /** Posts the form with curl -F: a field and the two files; returns the answer. */
  const curlForm = async (origin: string): Promise<string> => {
    const { code, stdout, stderr } = await curl(
      ...["-F", "title=Hello", "-F", `data=@${filePath};type=application/x-test`],
      ...["-F", `notes=@${smallPath}`, `${origin}/upload`],
    );
    assert.equal(code, 0, stderr);
    return stdout;
  };
  try {
    for (const engine of engines) {
      await t.step(`${engine.name}: curl -F, parsed with parseMultipart`, async () => {
        const served = engine.serve(describe);
        try {
          assert.deepEqual(JSON.parse(await curlForm(served.origin)), want);
        } finally {
          await served.close();
        }
      });

      await t.step(
        `${engine.name}: fetch with a FormData body, parsed with parseMultipart`,
        async () => {
          const served = engine.serve(describe);
          try {
            const form = new FormData();
            form.append("title", "Hello");
            form.append(
              "data",
              new File([FILE as Uint8Array<ArrayBuffer>], "source.bin", {
                type: "application/x-test",
              }),
            );
            form.append(
              "notes",
              new File([SMALL as Uint8Array<ArrayBuffer>], "small.txt", { type: "text/plain" }),
            );
            const response = await fetch(`${served.origin}/upload`, { method: "POST", body: form });
            assert.equal(response.status, 200);
            assert.deepEqual(await response.json(), want);
          } finally {
            await served.close();
          }
        },
      );

      await t.step(
        `${engine.name}: curl -F to examples/upload.ts, files saved with savePart`,
        async () => {
          const saved = await Deno.makeTempDir({ dir, prefix: "saved-" });
          const served = engine.serve(uploadHandler(saved));
          try {
            const result = JSON.parse(await curlForm(served.origin)) as UploadResult;
            assert.deepEqual(result.fields, [["title", "Hello"]]);
            assert.deepEqual(
              result.files.map((f: SavedFile) => [f.field, f.filename, f.type, f.size]),
              [["data", "source.bin", "application/x-test", FILE.length], [
                "notes",
                "small.txt",
                "text/plain",
                SMALL.length,
              ]],
            );
            assert(sameBytes(await Deno.readFile(result.files[0]!.path), FILE));
            assert(sameBytes(await Deno.readFile(result.files[1]!.path), SMALL));
          } finally {
            await served.close();
          }
        },
      );

      await t.step(
        `${engine.name}: an upload cut off mid-file fails and leaves no file`,
        async () => {
          const saved = await Deno.makeTempDir({ dir, prefix: "cut-" });
          const handler = uploadHandler(saved);
          // The wire engine fails the body with a 400 HttpError; Deno.serve with BadResource,
          // which the example answers with 400 too (nobody reads it: the client is gone).
          const finished = deferred<number | string>();
          const served = engine.serve(async (request) => {
            try {
              const response = await handler(request);
              finished.resolve(response.status);
              return response;
            } catch (error) {
              finished.resolve(String(error));
              throw error;
            }
          }, { onError: () => new Response(null, { status: 500 }) });
          const client = await dial(Number(new URL(served.origin).port));
          try {
            const head =
              '--cut\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\n\r\n';
            await client.send(
              "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                "Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: 1000000\r\n\r\n" +
                head + "x".repeat(100_000),
            );
            await client.conn.closeWrite();
            const outcome = await within(finished.promise, 5000, "the handler to finish");
            assert.equal(outcome, 400);
            for await (const entry of Deno.readDir(saved)) assert.fail(`left ${entry.name} behind`);
          } finally {
            await client.close();
            await served.close();
          }
        },
      );

      await t.step(
        `${engine.name}: a body over a limit gets 413 while it is still coming`,
        async () => {
          let error: unknown = null;
          const served = engine.serve(async (request) => {
            try {
              for await (const event of parseMultipart(request, { maxPartSize: 100_000 })) {
                if (event.type === "part") await new Response(event.body).arrayBuffer();
              }
              return new Response("ok");
            } catch (caught) {
              error = caught;
              return (caught as HttpError).toResponse();
            }
          });
          try {
            const { code, stdout, stderr } = await curl(
              "-F",
              `data=@${filePath}`,
              `${served.origin}/`,
            );
            assert.equal(code, 0, stderr);
            assert.match(stdout, /maxPartSize of 100000 bytes/);
            assert(error instanceof HttpError && error.status === 413);
          } finally {
            await served.close();
          }
        },
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
