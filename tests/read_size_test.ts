// Copyright 2026 the wirestream authors. MIT license.
// lib/_read_size.ts: the next read buffer's size, from what the reads returned.
import assert from "node:assert/strict";
import { ReadSize } from "../lib/_read_size.ts";

Deno.test("ReadSize", async (t) => {
  await t.step("grows when a read fills more than half, never past max", () => {
    const size = new ReadSize(4096, 65_536, (s) => s * 4, 1024, 8);
    size.read(2048); // half: not more than half
    assert.equal(size.size, 4096);
    size.read(2049);
    assert.equal(size.size, 16_384);
    size.read(16_384);
    assert.equal(size.size, 65_536);
    size.read(Number.MAX_SAFE_INTEGER); // whatever a source claims, the size stays bounded
    assert.equal(size.size, 65_536);
  });

  await t.step(
    "goes back to initial after a run of small reads; a mid-sized read restarts it",
    () => {
      const size = new ReadSize(4096, 65_536, () => 65_536, 2048, 4);
      size.read(4096);
      assert.equal(size.size, 65_536);
      for (let i = 0; i < 3; i++) size.read(10);
      size.read(3000); // not small: the run starts again
      for (let i = 0; i < 3; i++) size.read(2048);
      assert.equal(size.size, 65_536, "three small reads since the last larger one");
      size.read(0);
      assert.equal(size.size, 4096);
      size.read(10);
      assert.equal(size.size, 4096, "stays small while reads are");
    },
  );
});
