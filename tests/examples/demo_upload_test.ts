// Copyright 2026 the wirestream authors. MIT license.
// The demo's upload quota, on each engine: examples/demo/main.ts as a child process with
// --upload-quota, and fetch, a client we did not write, uploading multipart forms to it. (The
// browser test drives the same page with Chromium.)
import assert from "node:assert/strict";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";
import { startDemo } from "../_util/serve.ts";
import { dial, textOf } from "../_util/http.ts";

const MiB = 1024 * 1024;
const MAX_UPLOAD = 2 * MiB;
const QUOTA = 2.5 * MiB;

interface UploadAnswer {
  status: number;
  body: { saved: { name: string; size: number; stored: string }[]; error?: string };
}

/** Uploads `bytes` as the file `name` of a multipart form. */
async function upload(origin: string, name: string, bytes: Uint8Array): Promise<UploadAnswer> {
  const form = new FormData();
  form.append("file", new Blob([bytes.slice()]), name); // a copy: a Blob takes no shared buffer
  const response = await fetch(`${origin}/upload`, { method: "POST", body: form });
  return { status: response.status, body: await response.json() };
}

/** The bytes of the files in the demo's upload directory, and how many there are. */
async function onDisk(dataDir: string): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  for await (const entry of Deno.readDir(`${dataDir}/uploads`)) {
    files++;
    bytes += (await Deno.stat(`${dataDir}/uploads/${entry.name}`)).size;
  }
  return { files, bytes };
}

Deno.test("the demo's upload quota", async (t) => {
  for (const engine of ["native", "wire"]) {
    await t.step(`on the ${engine} engine`, async (t) => {
      const dataDir = await Deno.makeTempDir({ prefix: "wirestream_demo_" });
      // A file from an earlier run: it counts toward the quota.
      await Deno.mkdir(`${dataDir}/uploads`);
      await Deno.writeFile(`${dataDir}/uploads/earlier.bin`, new Uint8Array(MiB));
      const demo = await startDemo(engine, dataDir, { maxUpload: MAX_UPLOAD, uploadQuota: QUOTA });
      const random = seeded(engine.length);
      try {
        await t.step("two uploads at once cannot pass it together", async () => {
          // 1 MiB is taken and 1.5 MiB free: both of these would take 2 MiB.
          const files = [randomBytes(random, MiB), randomBytes(random, MiB)];
          const answers = await Promise.all(
            files.map((bytes, i) => upload(demo.origin, `both-${i}.bin`, bytes)),
          );
          const statuses = answers.map((a) => a.status);
          assert.ok(statuses.includes(507), `statuses ${statuses}`);
          for (const [i, { status, body }] of answers.entries()) {
            if (status === 507) continue; // both may be refused, as both were writing at once
            assert.equal(status, 200, JSON.stringify(body));
            const stored = await Deno.readFile(`${dataDir}/uploads/${body.saved[0]!.stored}`);
            assert.ok(sameBytes(stored, files[i]!), `upload ${i} is intact`);
          }
          const disk = await onDisk(dataDir);
          assert.ok(disk.bytes <= QUOTA, `${disk.bytes} bytes on disk`);
          assert.equal(disk.files, 1 + statuses.filter((s) => s === 200).length);
        });

        await t.step("the bytes of a refused upload are free again: the rest fits", async () => {
          const free = QUOTA - (await onDisk(dataDir)).bytes;
          const { status, body } = await upload(demo.origin, "rest.bin", new Uint8Array(free));
          assert.equal(status, 200, JSON.stringify(body));
          assert.deepEqual(body.saved.map((f) => f.size), [free]);
          assert.equal((await onDisk(dataDir)).bytes, QUOTA);
        });

        await t.step("one byte more is refused with 507, and nothing of it stays", async () => {
          const before = await onDisk(dataDir);
          const { status, body } = await upload(demo.origin, "one.bin", Uint8Array.of(1));
          assert.equal(status, 507);
          assert.deepEqual(body, {
            error: `Upload refused: the upload quota of ${QUOTA} bytes is full`,
            saved: [],
          });
          assert.deepEqual(await onDisk(dataDir), before);
        });

        await t.step("an empty file takes no room, so it is still saved", async () => {
          const { status, body } = await upload(demo.origin, "empty.bin", new Uint8Array(0));
          assert.equal(status, 200, JSON.stringify(body));
          assert.equal((await onDisk(dataDir)).bytes, QUOTA);
        });
      } finally {
        await demo.stop();
        await Deno.remove(dataDir, { recursive: true });
      }
    });
  }
});

Deno.test("the demo removes leftover .savepart files at the start", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "wirestream_demo_" });
  await Deno.mkdir(`${dataDir}/uploads`);
  // What a save killed mid-way leaves: a hidden temporary file, as big as the whole quota.
  const leftover = `${dataDir}/uploads/.${crypto.randomUUID()}.savepart`;
  await Deno.writeFile(leftover, new Uint8Array(MiB));
  await Deno.writeFile(`${dataDir}/uploads/kept.savepart`, new Uint8Array(0)); // not hidden
  const demo = await startDemo("native", dataDir, { maxUpload: MiB, uploadQuota: MiB });
  try {
    await assert.rejects(Deno.stat(leftover), Deno.errors.NotFound);
    await Deno.stat(`${dataDir}/uploads/kept.savepart`);
    const { status, body } = await upload(demo.origin, "full.bin", new Uint8Array(MiB));
    assert.equal(status, 200, JSON.stringify(body));
  } finally {
    await demo.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the demo's upload limits answer with its own message on each engine", async (t) => {
  for (const engine of ["native", "wire"]) {
    await t.step(`on the ${engine} engine`, async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "wirestream_demo_" });
      const demo = await startDemo(engine, dataDir, { maxUpload: MiB, uploadQuota: 64 * MiB });
      try {
        // Three files that each fit: refused before as if one were too big (their total was
        // held to one file's limit).
        const form = new FormData();
        for (const name of ["a.bin", "b.bin", "c.bin"]) {
          form.append("file", new Blob([new Uint8Array(MiB - 1000)]), name);
        }
        const three = await fetch(`${demo.origin}/upload`, { method: "POST", body: form });
        const saved = await three.json();
        assert.equal(three.status, 200, JSON.stringify(saved));
        assert.equal(saved.saved.length, 3);
        // A file 2 MiB over the limit: the demo's JSON 413 (on the wire engine it was the
        // engine's own plain-text 413, past its maxBodySize).
        const big = await upload(demo.origin, "big.bin", new Uint8Array(3 * MiB));
        assert.equal(big.status, 413);
        assert.equal(big.body.error, `Upload refused: each file is limited to ${MiB} bytes`);
        // Too many files at once.
        const many = new FormData();
        for (let i = 0; i < 17; i++) many.append("file", new Blob(["x"]), `${i}.txt`);
        const refused = await fetch(`${demo.origin}/upload`, { method: "POST", body: many });
        assert.equal(refused.status, 413);
        assert.equal((await refused.json()).error, "Upload refused: at most 16 files at once");
        // A body declared far past the whole limit: the engine's 413 at once (its maxBodySize
        // is the whole limit), and the connection closes rather than take the rest.
        const client = await dial(Number(new URL(demo.origin).port));
        try {
          await client.send(
            "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n" +
              "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n",
          );
          const response = (await client.next())!;
          assert.equal(response.status, 413);
          // (Deno.serve sends the handler's Connection field beside its own: "close, close".)
          assert.match(response.headers.get("connection") ?? "", /^close(, close)?$/);
          assert.match(textOf(response.body), /exceeds/);
        } finally {
          await client.close();
        }
      } finally {
        await demo.stop();
        await Deno.remove(dataDir, { recursive: true });
      }
    });
  }
});
