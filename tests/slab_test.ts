// Copyright 2026 the wirestream authors. MIT license.
// lib/_slab.ts: small buffers carved from a shared one, until a consumer transfers one; larger
// ones lent from a pool to an owner that gives each back once written.
import assert from "node:assert/strict";
import { markWritesDone, Slab, writesDone } from "../lib/_slab.ts";

Deno.test("Slab", async (t) => {
  await t.step("carves small views from one buffer, 8-byte aligned; large ones stand alone", () => {
    const slab = new Slab();
    const a = slab.allocate(5), b = slab.allocate(3);
    assert.ok(a.buffer === b.buffer);
    assert.equal(b.byteOffset - a.byteOffset, 8);
    // A 1 KiB or 2 KiB message's frame is carved too; above 2064 bytes a buffer of its own.
    assert.ok(slab.allocate(2064).buffer === a.buffer);
    assert.ok(slab.allocate(2065).buffer !== a.buffer);
  });

  await t.step("stops sharing once a consumer transferred a view's buffer", () => {
    const slab = new Slab();
    const first = slab.allocate(4);
    (first.buffer as ArrayBuffer).transfer(); // as a byte stream's enqueue does
    const next = slab.allocate(4);
    assert.equal((next.buffer as ArrayBuffer).detached, false);
    assert.equal(next.byteLength, 4);
    assert.equal(slab.pooled, false);
    assert.ok(slab.allocate(4).buffer !== next.buffer, "each buffer its own from then on");
  });

  await t.step(
    "lends one block at a time for a large chunk, and takes it back once written",
    () => {
      const slab = new Slab();
      slab.lending = true;
      const first = slab.allocate(5000);
      assert.equal(first.byteLength, 5000);
      assert.ok(first.buffer.byteLength > 5000, "a view of a larger block");
      first.fill(0xaa);
      // While it is out (its write under way), a large chunk gets a buffer of its own.
      const second = slab.allocate(4100);
      assert.ok(second.buffer !== first.buffer);
      assert.equal(second.buffer.byteLength, 4100);
      slab.giveBack(second); // not the lent one: ignored
      slab.giveBack(first.subarray(10)); // another view of the lent block: ignored too
      assert.equal(slab.allocate(4100).buffer.byteLength, 4100, "still out");
      slab.giveBack(first);
      const third = slab.allocate(3000);
      assert.ok(third.buffer === first.buffer, "the block is reused once given back");
      assert.ok(new Uint8Array(third.buffer).every((b) => b === 0), "zeroed whole, past it too");
      // Another slab shares the pool, never a block that is out.
      const other = new Slab();
      other.lending = true;
      assert.ok(other.allocate(4100).buffer !== third.buffer);
      slab.giveBack(first); // an earlier chunk of the block lent again: not the loan
      const another = new Slab();
      another.lending = true;
      assert.ok(another.allocate(4100).buffer !== third.buffer, "third's block still out");
      slab.giveBack(third);
      assert.equal(other.allocate(4100).buffer.byteLength, 4100, "one block out per slab");
    },
  );

  await t.step("lends a 32 KiB block for a chunk over 8 KiB, from a pool of its own", () => {
    const slab = new Slab();
    slab.lending = true;
    const large = slab.allocate(20_000);
    assert.equal(large.buffer.byteLength, 32_768);
    large.fill(0xbb);
    slab.giveBack(large);
    const small = slab.allocate(5000);
    assert.equal(small.buffer.byteLength, 8192, "a small chunk takes a small block");
    slab.giveBack(small);
    const again = slab.allocate(9000);
    assert.ok(again.buffer === large.buffer, "the large block, back in its pool");
    assert.ok(new Uint8Array(again.buffer).every((b) => b === 0), "zeroed whole");
    slab.giveBack(again);
    assert.equal(slab.allocate(32_769).buffer.byteLength, 32_769, "over 32 KiB: its own");
    for (
      const [size, block] of [[1024, 8192], [2064, 8192], [2065, 8192], [8192, 8192], [
        8193,
        32_768,
      ], [32_768, 32_768]]
    ) {
      assert.equal(slab.canLend(size!), true, `can lend ${size}`);
      const chunk = slab.allocate(size!);
      assert.equal(chunk.buffer.byteLength, block, `${size} bytes in a block of ${block}`);
      slab.giveBack(chunk);
    }
    assert.equal(slab.canLend(1023), false, "a slab region");
    assert.equal(slab.canLend(32_769), false);
  });

  await t.step("lends nothing unless lending, pooled, and the chunk fits a block", () => {
    const plain = new Slab();
    const a = plain.allocate(4100);
    plain.giveBack(a);
    assert.ok(plain.allocate(4100).buffer !== a.buffer, "not lending: fresh each time");
    const unpooled = new Slab();
    unpooled.lending = true;
    unpooled.pooled = false;
    assert.equal(unpooled.allocate(4100).buffer.byteLength, 4100);
    const lending = new Slab();
    lending.lending = true;
    const huge = lending.allocate(100_000);
    assert.equal(huge.buffer.byteLength, 100_000, "over a block: a buffer of its own");
    assert.notEqual(lending.allocate(2065).buffer.byteLength, 2065, "just over the slab's regions");
    lending.giveBack(lending.allocate(1)); // not lent: ignored
    const region = lending.allocate(1023);
    assert.equal(region.buffer.byteLength, 8192);
    assert.ok(lending.allocate(8).buffer === region.buffer, "under 1 KiB: a region of the slab");
  });

  await t.step(
    "a lending slab carves small chunks from a pooled block, back once every region was written",
    () => {
      const slab = new Slab();
      slab.lending = true;
      const a = slab.allocate(100), b = slab.allocate(40);
      assert.ok(a.buffer === b.buffer);
      assert.equal(a.buffer.byteLength, 8192);
      a.fill(0xcc);
      b.fill(0xdd);
      const block = a.buffer;
      slab.giveBack(a);
      slab.giveBack(a); // twice: not a second region
      slab.giveBack(b.subarray(1)); // a view of a region: not the region
      const other = new Slab();
      other.lending = true;
      assert.ok(other.allocate(10).buffer !== block, "b is still out: the block is not back");
      assert.deepEqual([...b.subarray(0, 2)], [0xdd, 0xdd], "b untouched");
      slab.giveBack(b);
      // Back in the pool, zeroed: the next small chunk of any lending slab may take it.
      const third = new Slab();
      third.lending = true;
      const c = third.allocate(16);
      assert.ok(c.buffer === block, "the block went back and was borrowed again");
      assert.ok(new Uint8Array(block).every((x) => x === 0), "zeroed where its regions were");
      // The first slab holds no block now: its next chunk borrows one.
      assert.ok(slab.allocate(8).buffer !== block);
      // A slab that does not lend keeps carving one buffer of its own.
      const plain = new Slab();
      const d = plain.allocate(8);
      plain.giveBack(d);
      assert.ok(plain.allocate(8).buffer === d.buffer);
    },
  );

  await t.step("never lends a block a consumer transferred", () => {
    const slab = new Slab();
    slab.lending = true;
    const chunk = slab.allocate(5000);
    const buffer = chunk.buffer as ArrayBuffer;
    slab.giveBack(chunk);
    buffer.transfer(); // a transport that broke the contract, after the write resolved
    const next = slab.allocate(5000);
    assert.equal((next.buffer as ArrayBuffer).detached, false);
    assert.equal(next.byteLength, 5000);
  });

  await t.step("knows the transports marked as done with their bytes once written", () => {
    const marked = {}, other = {};
    markWritesDone(marked);
    assert.equal(writesDone(marked), true);
    assert.equal(writesDone(other), false);
  });
});
