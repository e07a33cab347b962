// Copyright 2026 the wirestream authors. MIT license.
// codecStreams against a TransformStream running the same core: the same behaviour, except
// that an error reaches the reader after the output queued before it.
import assert from "node:assert/strict";
import { type CodecCore, codecStreams } from "../lib/_codec_stream.ts";

/** A core that splits each string into its characters and fails on "!". */
function letters(failed?: (reason: unknown) => void): CodecCore<string, string> {
  return {
    push(chunk, sink) {
      for (const c of chunk) {
        if (c === "!") throw new Error("bad input");
        sink.enqueue(c);
      }
    },
    end() {},
    ...(failed === undefined ? {} : { failed }),
  };
}

/** The same core as a TransformStream. */
function transform(): TransformStream<string, string> {
  const core = letters();
  return new TransformStream({
    transform: (chunk, controller) => core.push(chunk, controller),
    flush: () => core.end(),
  });
}

const both = () =>
  [
    ["TransformStream", transform()],
    ["codecStreams", codecStreams(letters())],
  ] as const;

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** Settles `promise` into a plain record, or "pending" after 100 ms. */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise((resolve) => timer = setTimeout(() => resolve("pending"), 100));
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value: (value as ReadableStreamReadResult<string>)?.value ?? value }),
        (error) => ({ error: (error as Error).message }),
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("codecStreams", async (t) => {
  await t.step("a write waits for the first read, as a TransformStream's does", async () => {
    for (const [name, stream] of both()) {
      const writer = stream.writable.getWriter();
      const write = writer.write("a");
      assert.equal(await outcome(write), "pending", name);
      const reader = stream.readable.getReader();
      assert.deepEqual(await outcome(reader.read()), { value: "a" }, name);
      assert.deepEqual(await outcome(write), { value: undefined }, name);
    }
  });

  await t.step("two reads waiting get the output of two writes", async () => {
    for (const [name, stream] of both()) {
      const reader = stream.readable.getReader();
      const writer = stream.writable.getWriter();
      const first = reader.read(), second = reader.read();
      await tick();
      await writer.write("a");
      await tick();
      const write = writer.write("b");
      assert.deepEqual(await outcome(first), { value: "a" }, name);
      assert.deepEqual(await outcome(second), { value: "b" }, name);
      assert.deepEqual(await outcome(write), { value: undefined }, name);
    }
  });

  await t.step("a write that waited is not decoded once the writer aborted", async () => {
    for (const [name, stream] of both()) {
      const writer = stream.writable.getWriter();
      const write = writer.write("a"); // waits: nothing read yet
      write.catch(() => {});
      await tick();
      const aborted = writer.abort(new Error("aborted"));
      const reader = stream.readable.getReader();
      assert.deepEqual(await outcome(reader.read()), { error: "aborted" }, name);
      assert.deepEqual(await outcome(write), { error: "aborted" }, name);
      await aborted;
    }
  });

  await t.step("cancelling the output errors the input and rejects a waiting write", async () => {
    for (const [name, stream] of both()) {
      const writer = stream.writable.getWriter();
      const reader = stream.readable.getReader();
      const first = reader.read();
      await writer.write("a");
      assert.deepEqual(await outcome(first), { value: "a" }, name);
      const waiting = writer.write("b"); // no read pending: it waits
      await tick();
      await reader.cancel(new Error("enough"));
      assert.deepEqual(await outcome(waiting), { error: "enough" }, name);
      assert.deepEqual(await outcome(writer.closed), { error: "enough" }, name);
    }
  });

  await t.step("closing the input closes the output after its queue", async () => {
    for (const [name, stream] of both()) {
      const source = ReadableStream.from(["ab", "c"]);
      const got = await Array.fromAsync(source.pipeThrough(stream));
      assert.deepEqual(got, ["a", "b", "c"], name);
    }
  });

  await t.step("the one difference: an error comes after the output queued before it", async () => {
    const read = async (stream: ReadableWritablePair<string, string>) => {
      const got: string[] = [];
      try {
        for await (const c of ReadableStream.from(["abc!d"]).pipeThrough(stream)) got.push(c);
      } catch (error) {
        got.push(`error: ${(error as Error).message}`);
      }
      return got;
    };
    assert.deepEqual(await read(transform()), ["a", "error: bad input"], "TransformStream");
    assert.deepEqual(
      await read(codecStreams(letters())),
      ["a", "b", "c", "error: bad input"],
      "codecStreams",
    );
  });

  await t.step("an aborted input errors the output after what was queued", async () => {
    let pulls = 0;
    const source = new ReadableStream<string>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue("ab");
        else controller.error(new Error("reset"));
      },
    }, { highWaterMark: 0 });
    const reader = source.pipeThrough(codecStreams(letters())).getReader();
    assert.deepEqual(await outcome(reader.read()), { value: "a" });
    assert.deepEqual(await outcome(reader.read()), { value: "b" });
    assert.deepEqual(await outcome(reader.read()), { error: "reset" });
  });

  await t.step("tells the core once why it failed, whatever failed", async () => {
    const reasons: string[] = [];
    const told = (reason: unknown) => reasons.push((reason as Error).message);
    // Bad input, then a cancel of the output: told once.
    const bad = codecStreams(letters(told));
    const reader = bad.readable.getReader();
    const read = reader.read();
    await bad.writable.getWriter().write("!").catch(() => {});
    assert.deepEqual(await outcome(read), { error: "bad input" });
    await reader.cancel(new Error("later")).catch(() => {});
    // A cancelled output.
    const cancelled = codecStreams(letters(told));
    await cancelled.readable.cancel(new Error("cancelled"));
    // An aborted input.
    const aborted = codecStreams(letters(told));
    await aborted.writable.abort(new Error("aborted"));
    assert.deepEqual(reasons, ["bad input", "cancelled", "aborted"]);
  });

  await t.step("a core whose failed() throws leaves no read or write hanging", async () => {
    const throwing = () => {
      throw new Error("failed threw");
    };
    const bad = codecStreams(letters(throwing));
    const read = bad.readable.getReader().read();
    const write = bad.writable.getWriter().write("!");
    assert.deepEqual(await outcome(read), { error: "bad input" });
    assert.notEqual(await outcome(write), "pending");

    const cancelled = codecStreams(letters(throwing));
    const writer = cancelled.writable.getWriter();
    const waiting = writer.write("a"); // waits for a read that never comes
    waiting.catch(() => {});
    await cancelled.readable.cancel(new Error("cancelled")).catch(() => {});
    assert.deepEqual(await outcome(waiting), { error: "cancelled" });
  });
});
