// Copyright 2026 the wirestream authors. MIT license.
// lib/_slab.ts: small buffers carved from a shared one, until a consumer transfers one.
import assert from "node:assert/strict";
import { Slab } from "../lib/_slab.ts";

Deno.test("Slab", async (t) => {
  await t.step("carves small views from one buffer, 8-byte aligned; large ones stand alone", () => {
    const slab = new Slab();
    const a = slab.allocate(5), b = slab.allocate(3);
    assert.equal(a.buffer, b.buffer);
    assert.equal(b.byteOffset - a.byteOffset, 8);
    // A 1 KiB or 2 KiB message's frame is carved too; above 2064 bytes a buffer of its own.
    assert.equal(slab.allocate(2064).buffer, a.buffer);
    assert.notEqual(slab.allocate(2065).buffer, a.buffer);
  });

  await t.step("stops sharing once a consumer transferred a view's buffer", () => {
    const slab = new Slab();
    const first = slab.allocate(4);
    (first.buffer as ArrayBuffer).transfer(); // as a byte stream's enqueue does
    const next = slab.allocate(4);
    assert.equal((next.buffer as ArrayBuffer).detached, false);
    assert.equal(next.byteLength, 4);
    assert.equal(slab.pooled, false);
    assert.notEqual(slab.allocate(4).buffer, next.buffer, "each buffer its own from then on");
  });
});
