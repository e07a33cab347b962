// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { HttpError, parseMultipart, savePart } from "@wirestream/wirestream";
import { bytes } from "../_util/multipart.ts";
import { concat, randomBytes, sameBytes, seeded, split } from "../_util/random.ts";

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

    await t.step("mode sets the new file's permissions", async () => {
      const path = `${dir}/mode.bin`;
      await savePart({ body: body([bytes("x")]) }, path, { mode: 0o600 });
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
