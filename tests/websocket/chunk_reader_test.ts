// Copyright 2026 the wirestream authors. MIT license.
// lib/websocket/_chunk_reader.ts: reads into a reused buffer, a small one while reads are small
// (an idle session's waiting read holds it), the large one once a read fills half the small one.
import assert from "node:assert/strict";
import { ChunkReader } from "../../lib/websocket/_chunk_reader.ts";

/** A direct source that answers each read with the next size, and logs the buffers' sizes. */
function sizedSource(sizes: number[]) {
  const buffers: number[] = [];
  return {
    buffers,
    source: {
      read(buffer: Uint8Array): Promise<number | null> {
        buffers.push(buffer.length);
        const n = sizes.shift();
        if (n === undefined) return Promise.resolve(null);
        buffer.fill(0x61, 0, Math.min(n, buffer.length));
        return Promise.resolve(Math.min(n, buffer.length));
      },
    },
  };
}

/** The same, as a byte stream read with a BYOB reader. */
function sizedStream(sizes: number[]) {
  const buffers: number[] = [];
  const stream = new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      buffers.push(view.length);
      const n = sizes.shift();
      if (n === undefined) {
        controller.close();
        request.respond(0);
        return;
      }
      view.fill(0x61, 0, Math.min(n, view.length));
      request.respond(Math.min(n, view.length));
    },
  });
  return { buffers, stream };
}

Deno.test("ChunkReader", async (t) => {
  for (const kind of ["direct", "byte stream"] as const) {
    await t.step(
      `${kind}: a small buffer while reads are small, the large one after a burst`,
      async () => {
        const sizes = [10, 3000, 65_536, 100, 10, 10, 10, 10, 5];
        const { buffers, source, stream } = kind === "direct"
          ? { ...sizedSource(sizes), stream: null }
          : { ...sizedStream(sizes), source: null };
        const reader = new ChunkReader(source ?? stream!, 65_536, 4096);
        const got: number[] = [];
        for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
          got.push(chunk.length);
          reader.recycle();
        }
        assert.deepEqual(got, [10, 3000, 65_536, 100, 10, 10, 10, 10, 5]);
        // First small; a read of more than half of it (3000 > 2048) sends the next to the large
        // one, which the fourth read in a row of at most 2048 bytes leaves (the end is read small).
        assert.deepEqual(buffers, [
          4096,
          4096,
          65_536,
          65_536,
          65_536,
          65_536,
          65_536,
          4096,
          4096,
          4096,
        ]);
      },
    );
  }

  await t.step(
    "an idle read holds no large buffer, and a held chunk is never read into",
    async () => {
      const { buffers, source } = sizedSource([65_536, 1, 1, 1, 1, 1]);
      const reader = new ChunkReader(source, 65_536, 4096);
      const big = (await reader.read())!; // small buffer filled: the next read goes large
      assert.equal(big.length, 4096);
      const held = (await reader.read())!; // not recycled: kept by the caller
      assert.equal(held.buffer.byteLength, 65_536);
      for (let i = 0; i < 4; i++) {
        const chunk = (await reader.read())!;
        assert.ok(chunk.buffer !== held.buffer, "a held chunk's buffer was read into");
        reader.recycle();
      }
      assert.deepEqual(buffers, [4096, 65_536, 65_536, 65_536, 65_536, 4096]);
    },
  );

  await t.step("a large buffer no larger than the idle one reads at its own size", async () => {
    const { buffers, source } = sizedSource([16, 16, 2, 16]);
    const reader = new ChunkReader(source, 16);
    while ((await reader.read()) !== null) reader.recycle();
    assert.deepEqual(buffers, [16, 16, 16, 16, 16]);
  });
});
