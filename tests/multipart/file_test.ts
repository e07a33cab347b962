// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { HttpError, parseMultipart, savePart } from "@wirestream/wirestream";
import { bytes } from "../_util/multipart.ts";
import { concat, randomBytes, sameBytes, seeded, split } from "../_util/random.ts";
import { within } from "../_util/async.ts";

/** A body stream of `chunks`, then an error if `failure` is given. */
function body(chunks: readonly Uint8Array[], failure?: unknown): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else if (failure !== undefined) controller.error(failure);
      else controller.close();
    },
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The temporary files that savePart left in `dir`. */
async function leftovers(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir)))
    .map((entry) => entry.name)
    .filter((name) => name.endsWith(".savepart"));
}

Deno.test("savePart", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wirestream-save-" });
  try {
    await t.step("writes a part's body byte for byte and returns its size", async () => {
      const content = randomBytes(seeded(1), 1_000_003);
      const wire = concat([bytes("--b\r\n\r\n"), content, bytes("\r\n--b--")]);
      const events = parseMultipart(body(split(wire, seeded(2), 70_000)), { boundary: "b" });
      const path = `${dir}/whole.bin`;
      for await (const event of events) {
        if (event.type === "part") assert.equal(await savePart(event, path), content.length);
      }
      assert(sameBytes(await Deno.readFile(path), content));
    });

    await t.step("replaces an existing file unless createNew", async () => {
      const path = `${dir}/existing.bin`;
      await Deno.writeTextFile(path, "old content that is longer");
      assert.equal(await savePart({ body: body([bytes("new")]) }, path), 3);
      assert.equal(await Deno.readTextFile(path), "new");
      let cancelled: unknown = null;
      const part = {
        body: new ReadableStream<Uint8Array>({
          pull: (c) => c.enqueue(bytes("newer")),
          cancel: (reason) => void (cancelled = reason),
        }),
      };
      await assert.rejects(savePart(part, path, { createNew: true }), Deno.errors.AlreadyExists);
      assert.equal(await Deno.readTextFile(path), "new");
      assert(cancelled instanceof Deno.errors.AlreadyExists, "the body is cancelled");
      assert.equal(part.body.locked, false);
    });

    await t.step("a failed or truncated upload leaves an existing file as it was", async () => {
      const path = `${dir}/kept.bin`;
      await Deno.writeTextFile(path, "old content");
      const failure = new Error("connection reset");
      await assert.rejects(
        savePart({ body: body([bytes("new"), bytes("er")], failure) }, path),
        (e) => e === failure,
      );
      assert.equal(await Deno.readTextFile(path), "old content");
      const wire = bytes("--b\r\n\r\n" + "x".repeat(100_000)); // no delimiter: cut off
      for await (
        const event of parseMultipart(body(split(wire, seeded(4), 10_000)), { boundary: "b" })
          .values({ preventCancel: true })
      ) {
        if (event.type !== "part") continue;
        await assert.rejects(
          savePart(event, path),
          (e) => e instanceof HttpError && e.status === 400,
        );
        break;
      }
      assert.equal(await Deno.readTextFile(path), "old content");
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step("success replaces an existing file, from a path or a file: URL", async () => {
      const path = `${dir}/replaced.bin`;
      await Deno.writeTextFile(path, "old content that is longer");
      assert.equal(await savePart({ body: body([bytes("new")]) }, path), 3);
      assert.equal(await Deno.readTextFile(path), "new");
      const url = new URL(`file://${dir}/replaced%20by%20url.bin`);
      assert.equal(await savePart({ body: body([bytes("url")]) }, url), 3);
      assert.equal(await Deno.readTextFile(`${dir}/replaced by url.bin`), "url");
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step("a URL with a host or of another scheme is a TypeError", async () => {
      // file://host/… is not the local path (Deno.open refuses it too): never write there.
      const local = new URL(`file://${dir}/hosted.bin`);
      const urls = [
        new URL(`file://evil.example${local.pathname}`),
        new URL("https://x/y"),
        new URL(`x-custom:${dir}/schemed.bin`), // no host: only the scheme is wrong
      ];
      for (const url of urls) {
        await assert.rejects(savePart({ body: body([bytes("x")]) }, url), TypeError, url.href);
      }
      await assert.rejects(Deno.lstat(`${dir}/hosted.bin`), Deno.errors.NotFound);
      await assert.rejects(Deno.lstat(`${dir}/schemed.bin`), Deno.errors.NotFound);
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step("a symlink at the path is replaced, not written through", async () => {
      const target = `${dir}/link-target.txt`, link = `${dir}/link.txt`;
      await Deno.writeTextFile(target, "target content");
      await Deno.symlink(target, link);
      // A failure leaves both the link and its target.
      await assert.rejects(savePart({ body: body([bytes("x")], new Error("reset")) }, link));
      assert.equal((await Deno.lstat(link)).isSymlink, true);
      assert.equal(await Deno.readTextFile(target), "target content");
      // Success puts a file where the link was; the target is left as it was.
      assert.equal(await savePart({ body: body([bytes("new")]) }, link), 3);
      assert.equal((await Deno.lstat(link)).isFile, true);
      assert.equal(await Deno.readTextFile(link), "new");
      assert.equal(await Deno.readTextFile(target), "target content");
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step("createNew: an existing file or symlink fails and is left intact", async () => {
      const path = `${dir}/taken.bin`, dangling = `${dir}/dangling.txt`;
      await Deno.writeTextFile(path, "taken");
      await Deno.symlink(`${dir}/nowhere`, dangling);
      for (const existing of [path, dangling]) {
        await assert.rejects(
          savePart({ body: body([bytes("x")]) }, existing, { createNew: true }),
          Deno.errors.AlreadyExists,
        );
      }
      assert.equal(await Deno.readTextFile(path), "taken");
      assert.equal(await Deno.readLink(dangling), `${dir}/nowhere`);
      await assert.rejects(Deno.stat(`${dir}/nowhere`), Deno.errors.NotFound);
      // A path that appears while the body is copied is not overwritten either.
      const late = `${dir}/late.bin`;
      const part = {
        body: new ReadableStream<Uint8Array>({
          async pull(c) { // first called once the copy has begun: after the check
            await Deno.writeTextFile(late, "first");
            c.enqueue(bytes("second"));
            c.close();
          },
        }),
      };
      const saving = savePart(part, late, { createNew: true });
      await assert.rejects(saving, Deno.errors.AlreadyExists);
      assert.equal(await Deno.readTextFile(late), "first");
      // With nothing there it saves.
      assert.equal(
        await savePart({ body: body([bytes("x")]) }, `${dir}/free.bin`, { createNew: true }),
        1,
      );
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step("a truncated part fails with its 400 and leaves no file", async () => {
      const wire = bytes("--b\r\n\r\n" + "x".repeat(100_000)); // no delimiter: cut off
      const events = parseMultipart(body(split(wire, seeded(3), 10_000)), { boundary: "b" });
      const path = `${dir}/truncated.bin`;
      const reader = events.getReader();
      const { value } = await reader.read();
      assert(value?.type === "part");
      await assert.rejects(
        savePart(value, path),
        (e) => e instanceof HttpError && e.status === 400,
      );
      assert.equal(await exists(path), false);
      await assert.rejects(reader.read(), HttpError);
    });

    await t.step("a source error is thrown as it is, and leaves no file", async () => {
      const failure = new Error("connection reset");
      const path = `${dir}/failed.bin`;
      await assert.rejects(
        savePart({ body: body([bytes("abc")], failure) }, path),
        (e) => e === failure,
      );
      assert.equal(await exists(path), false);
    });

    await t.step("aborting stops the copy, cancels the body, and leaves no file", async () => {
      const controller = new AbortController();
      let cancelled: unknown = null;
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (++sent === 3) controller.abort(new Error("stop"));
          c.enqueue(new Uint8Array(1000));
        },
        cancel(reason) {
          cancelled = reason;
        },
      });
      const path = `${dir}/aborted.bin`;
      await assert.rejects(
        savePart({ body: stream }, path, { signal: controller.signal }),
        { message: "stop" },
      );
      assert.equal(await exists(path), false);
      assert.equal((cancelled as Error)?.message, "stop");
    });

    await t.step("an aborted signal throws before the file is created", async () => {
      const path = `${dir}/never.bin`;
      await assert.rejects(
        savePart({ body: body([]) }, path, { signal: AbortSignal.abort(new Error("early")) }),
        { message: "early" },
      );
      assert.equal(await exists(path), false);
    });

    await t.step(
      "an abort while the file opens ends the copy of a body that sends nothing more",
      async () => {
        // The listener came after the open: an abort during it was never heard, and a stalled
        // body held the copy and its temporary file for good.
        for (const createNew of [false, true]) {
          const controller = new AbortController();
          let cancelled: unknown = null;
          const stalled = new ReadableStream<Uint8Array>({
            pull: () => new Promise(() => {}), // nothing ever comes
            cancel: (reason) => void (cancelled = reason),
          });
          const path = `${dir}/stalled-${createNew}.bin`;
          const saving = savePart({ body: stalled }, path, {
            signal: controller.signal,
            createNew,
          });
          queueMicrotask(() => controller.abort(new Error("stop early")));
          const outcome = await within(
            saving.then(() => "saved", (error: Error) => error.message),
            2000,
            "the copy to end",
          );
          assert.equal(outcome, "stop early", `createNew ${createNew}`);
          assert.equal((cancelled as Error)?.message, "stop early");
          assert.equal(await exists(path), false);
          assert.deepEqual(await leftovers(dir), []);
        }
      },
    );

    await t.step("a file: URL with a malformed percent-encoding is a TypeError", async () => {
      let cancelled = false;
      const part = {
        body: new ReadableStream<Uint8Array>({ cancel: () => void (cancelled = true) }),
      };
      await assert.rejects(
        savePart(part, new URL(`file://${dir}/a%zz`)),
        (e) => e instanceof TypeError && /malformed percent-encoding/.test(e.message),
      );
      assert.ok(cancelled);
      assert.deepEqual(await leftovers(dir), []);
    });

    await t.step(
      "gathers small chunks, and writes every byte in order, whatever the sizes",
      async () => {
        // Chunks of 1 B to 40 KiB: small ones are gathered into 64 KiB, large ones go as they are.
        const random = seeded(7);
        const content = randomBytes(random, 3_000_000);
        const chunks: Uint8Array[] = [];
        for (let at = 0; at < content.length;) {
          const size = Math.min(
            content.length - at,
            [1, 17, 1000, 16_383, 16_384, 40_000][
              Math.floor(random() * 6)
            ]!,
          );
          chunks.push(content.slice(at, at + size));
          at += size;
        }
        const path = `${dir}/gathered.bin`;
        assert.equal(await savePart({ body: body(chunks) }, path), content.length);
        assert(sameBytes(await Deno.readFile(path), content));
      },
    );

    await t.step(
      "a chunk that is not a Uint8Array is a TypeError, and leaves no file",
      async () => {
        // Gathered into the staging buffer, "abc" would be saved as three zeros.
        for (const chunk of ["abc", Uint16Array.of(1, 2), [1, 2, 3]]) {
          const path = `${dir}/not-bytes.bin`;
          await assert.rejects(
            savePart({ body: body([bytes("ok"), chunk as unknown as Uint8Array]) }, path),
            TypeError,
          );
          assert.equal(await exists(path), false);
          assert.deepEqual(await leftovers(dir), []);
        }
      },
    );

    await t.step("mode sets the new file's permissions", async () => {
      const path = `${dir}/mode.bin`;
      await savePart({ body: body([bytes("x")]) }, path, { mode: 0o600 });
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      await savePart({ body: body([bytes("y")]) }, path, { mode: 0o640 }); // replacing one too
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
