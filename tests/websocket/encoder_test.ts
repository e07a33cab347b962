// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  Frame,
  FrameDecoder,
  FrameEncoder,
  type FrameEncoderOptions,
  FrameEncoderStream,
  type Opcode,
  type Role,
} from "@wirestream/wirestream";
import { concat, hex, randomBytes, seeded } from "../_util/random.ts";
import { encoderSlab } from "../../lib/websocket/encoder.ts";

/** Encodes one frame and returns the chunks the encoder emitted. */
function encode(frame: Frame, options?: FrameEncoderOptions): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  new FrameEncoder(options).encode(frame, { enqueue: (c) => void chunks.push(c) });
  return chunks;
}

/** Decodes bytes (copied first) with a decoder of `role` that allows every RSV bit. */
function decode(bytes: Uint8Array, role: Role): Frame[] {
  const frames: Frame[] = [];
  const allowedRsv = { rsv1: true, rsv2: true, rsv3: true };
  const decoder = new FrameDecoder({ role, maxFrameSize: Infinity, allowedRsv });
  decoder.push(bytes.slice(), { enqueue: (f) => void frames.push(f) });
  decoder.end();
  return frames;
}

/** The header size of an encoded frame: 2, plus 2 or 8 length bytes, plus 4 key bytes. */
function headerSize(bytes: Uint8Array): number {
  const len7 = bytes[1]! & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((bytes[1]! & 0x80) !== 0 ? 4 : 0);
}

/** The masking key of an encoded masked frame. */
function keyOf(bytes: Uint8Array): Uint8Array {
  const at = headerSize(bytes) - 4;
  return bytes.slice(at, at + 4);
}

const utf8 = new TextEncoder();
const HELLO = utf8.encode("Hello");

Deno.test("FrameEncoder", async (t) => {
  await t.step("encodes the RFC 6455 §5.7 unmasked examples byte-exact", () => {
    assert.deepEqual(encode(Frame.text("Hello")), [hex(
      "81" + // FIN, opcode 0x1 (text)
        "05" + // MASK 0, length 5
        "48656c6c6f", // "Hello"
    )]);
    assert.deepEqual([
      ...encode(Frame.text("Hel", false)),
      ...encode(Frame.continuation(utf8.encode("lo"))),
    ], [
      hex("01 03 48656c"), // FIN 0, text, length 3, "Hel"
      hex("80 02 6c6f"), // FIN, continuation, length 2, "lo"
    ]);
    assert.deepEqual(encode(Frame.ping(HELLO)), [hex("89 05 48656c6c6f")]); // FIN, ping, 5, "Hello"
    assert.deepEqual(encode(Frame.pong(HELLO)), [hex("8a 05 48656c6c6f")]); // FIN, pong, 5, "Hello"
    const bytes256 = randomBytes(seeded(1), 256);
    assert.deepEqual(encode(Frame.binary(bytes256)), [concat([
      hex("82 7e 0100"), // FIN, binary, 16-bit length 256
      bytes256,
    ])]);
    const bytes64k = randomBytes(seeded(2), 65_536);
    const chunks = encode(Frame.binary(bytes64k));
    assert.deepEqual(chunks[0], hex("82 7f 0000000000010000")); // FIN, binary, 64-bit 65536
    assert.equal(chunks[1], bytes64k);
  });

  await t.step("encodes the masked RFC 6455 §5.7 example with the key it drew", () => {
    const [bytes] = encode(Frame.text("Hello"), { role: "client" });
    assert.equal(bytes!.length, 2 + 4 + 5);
    assert.deepEqual(bytes!.subarray(0, 2), hex("81 85")); // FIN, text; MASK 1, length 5
    const key = keyOf(bytes!);
    const body = bytes!.subarray(6).map((b, i) => b ^ key[i & 3]!);
    assert.deepEqual(body, HELLO);
  });

  await t.step("uses the minimal length encoding at 0, 125, 126, 65535 and 65536", () => {
    const cases: [number, string][] = [
      [0, "82 00"], // 7-bit length 0
      [125, "82 7d"], // 7-bit length 125
      [126, "82 7e 007e"], // 16-bit length 126
      [65_535, "82 7e ffff"], // 16-bit length 65535
      [65_536, "82 7f 0000000000010000"], // 64-bit length 65536
      [70_000, "82 7f 0000000000011170"], // 64-bit length 70000
    ];
    for (const [n, head] of cases) {
      const chunks = encode(Frame.binary(new Uint8Array(n)));
      assert.deepEqual(chunks[0]!.subarray(0, headerSize(chunks[0]!)), hex(head), `length ${n}`);
      const masked = encode(Frame.binary(new Uint8Array(n)), { role: "client" })[0]!;
      const want = hex(head);
      want[1]! |= 0x80; // the MASK bit
      assert.deepEqual(masked.subarray(0, want.length), want, `masked length ${n}`);
      assert.equal(masked.length, want.length + 4 + n, `masked length ${n}`);
    }
  });

  await t.step("writes 64-bit lengths above 4 GiB in full (with a stand-in payload)", () => {
    // An unmasked payload over 4096 bytes is enqueued as is after its header, so an object
    // with only a length stands in for gigabytes that the test does not allocate.
    const cases: [number, string][] = [
      [2 ** 32, "82 7f 0000000100000000"], // 4 GiB: the high word is 1
      [2 ** 32 + 0x0102, "82 7f 0000000100000102"],
      [2 ** 53 - 1, "82 7f 001fffffffffffff"], // the largest exact length
    ];
    for (const [n, head] of cases) {
      const payload = { length: n } as unknown as Uint8Array;
      const chunks = encode(Frame.binary(payload));
      assert.deepEqual(chunks[0], hex(head), `length ${n}`);
      assert.equal(chunks[1], payload);
    }
  });

  await t.step("sets FIN, the RSV bits and the opcode in the first byte", () => {
    for (const opcode of [0x0, 0x1, 0x2] as Opcode[]) {
      for (let bits = 0; bits < 16; bits++) {
        const fin = (bits & 8) !== 0;
        const frame = new Frame(
          opcode,
          HELLO,
          fin,
          (bits & 4) !== 0,
          (bits & 2) !== 0,
          (bits & 1) !== 0,
        );
        assert.equal(encode(frame)[0]![0], (bits << 4) | opcode, `opcode ${opcode} bits ${bits}`);
      }
    }
    assert.equal(encode(new Frame(0x9, HELLO, true, true))[0]![0], 0xc9); // FIN, RSV1, ping
  });

  await t.step("masks every frame in the client role", () => {
    for (const n of [0, 1, 5, 125, 126, 4096, 4097, 65_536, 70_000]) {
      const payload = randomBytes(seeded(n), n);
      const chunks = encode(Frame.binary(payload), { role: "client" });
      assert.equal(chunks.length, 1, `length ${n}`);
      const bytes = chunks[0]!;
      assert.equal(bytes[1]! & 0x80, 0x80, `MASK bit at length ${n}`);
      const at = headerSize(bytes);
      const key = keyOf(bytes);
      assert.deepEqual(bytes.subarray(at).map((b, i) => b ^ key[i & 3]!), payload, `length ${n}`);
      assert.deepEqual(decode(bytes, "server").map((f) => f.payload), [payload], `length ${n}`);
    }
  });

  await t.step("masks server frames with masking: true", () => {
    const bytes = encode(Frame.text("Hello"), { role: "server", masking: true })[0]!;
    assert.equal(bytes[1], 0x85); // MASK 1, length 5
    assert.equal(bytes.length, 2 + 4 + 5);
    assert.deepEqual(decode(bytes, "server")[0]!.payload, HELLO);
  });

  await t.step("does not mask server frames by default or with masking: false", () => {
    for (const options of [undefined, {}, { role: "server" as const, masking: false }]) {
      assert.deepEqual(encode(Frame.text("Hello"), options), [hex("81 05 48656c6c6f")]);
    }
  });

  await t.step("masks client frames even with masking: false", () => {
    const bytes = encode(Frame.text("Hello"), { role: "client", masking: false })[0]!;
    assert.equal(bytes[1], 0x85);
  });

  await t.step("leaves the frame's payload unchanged when masking", () => {
    for (const n of [1, 5, 31, 32, 33, 2047, 2048, 2049, 65_536, 65_537, 140_000]) {
      const payload = randomBytes(seeded(n), n);
      const copy = payload.slice();
      encode(Frame.binary(payload), { role: "client" });
      assert.deepEqual(payload, copy, `length ${n}`);
    }
  });

  await t.step("masks a payload that is a view at an unaligned offset", () => {
    const buffer = randomBytes(seeded(5), 10_000);
    for (const [start, end] of [[1, 40], [3, 3000], [7, 9999]]) {
      const payload = buffer.subarray(start, end);
      const before = buffer.slice();
      const bytes = encode(Frame.binary(payload), { role: "client" })[0]!;
      assert.deepEqual(decode(bytes, "server")[0]!.payload, payload, `${start}..${end}`);
      assert.deepEqual(buffer, before, `${start}..${end}`);
    }
  });

  await t.step("merges the header and an unmasked payload up to 4096 bytes into one chunk", () => {
    for (const n of [0, 1, 125, 126, 4095, 4096]) {
      const payload = randomBytes(seeded(n), n);
      const chunks = encode(Frame.binary(payload));
      assert.equal(chunks.length, 1, `length ${n}`);
      assert.notEqual(chunks[0]!.buffer, payload.buffer, `a copy at length ${n}`);
      assert.deepEqual(chunks[0]!.subarray(headerSize(chunks[0]!)), payload, `length ${n}`);
    }
  });

  await t.step("emits the header, then the very payload object, above 4096 bytes", () => {
    for (const n of [4097, 65_535, 65_536, 100_000]) {
      const payload = new Uint8Array(n);
      const chunks = encode(Frame.binary(payload));
      assert.equal(chunks.length, 2, `length ${n}`);
      assert.equal(chunks[0]!.length, headerSize(chunks[0]!), `header only at length ${n}`);
      assert.equal(chunks[1], payload, `the same object at length ${n}`);
    }
  });

  await t.step(
    "with a pooled block to lend (a session on an engine's connection), merges up to 16380 bytes",
    () => {
      // lib/_slab.ts lends blocks of 8 and 32 KiB: a header of 4 and a payload of up to 16380
      // go in one; past that, or with the block out, the header and the payload itself.
      const encoder = new FrameEncoder();
      const slab = encoderSlab(encoder);
      slab.lending = true;
      for (const n of [4097, 8188, 8189, 16_380, 16_381, 65_536]) {
        const payload = randomBytes(seeded(n), n);
        const chunks: Uint8Array[] = [];
        encoder.encode(Frame.binary(payload), { enqueue: (c) => void chunks.push(c) });
        if (n <= 16_380) {
          assert.equal(chunks.length, 1, `one chunk at ${n}`);
          const block = n <= 8188 ? 8192 : 32_768;
          assert.equal(chunks[0]!.buffer.byteLength, block, `a lent block at ${n}`);
          assert.deepEqual(chunks[0]!.subarray(4), payload);
          // With the block out, the next frame of that size is header and payload.
          const next: Uint8Array[] = [];
          encoder.encode(Frame.binary(payload), { enqueue: (c) => void next.push(c) });
          assert.equal(next.length, 2, `block out at ${n}`);
          assert.ok(next[1] === payload);
        } else {
          assert.equal(chunks.length, 2, `header and payload at ${n}`);
          assert.ok(chunks[1] === payload);
        }
        assert.deepEqual(concat(chunks), concat(encode(Frame.binary(payload))), `bytes at ${n}`);
        slab.giveBack(chunks[0]!);
      }
      // A client's frames are masked into one chunk whatever the slab: the same bytes.
      const client = new FrameEncoder({ role: "client" });
      const clientSlab = encoderSlab(client);
      clientSlab.lending = true;
      for (const n of [4097, 8000, 20_000]) {
        const chunks: Uint8Array[] = [];
        client.encode(Frame.binary(new Uint8Array(n).fill(3)), {
          enqueue: (c) => void chunks.push(c),
        });
        assert.equal(chunks.length, 1);
        const frame = decode(chunks[0]!, "server")[0]!;
        assert.deepEqual(frame.payload, new Uint8Array(n).fill(3));
        const block = n + 8 > 8192 ? 32_768 : 8192;
        assert.equal(chunks[0]!.buffer.byteLength, block, `masked into a lent block at ${n}`);
        clientSlab.giveBack(chunks[0]!);
      }
    },
  );

  await t.step("emits one chunk for a masked payload of any size", () => {
    for (const n of [4096, 4097, 100_000]) {
      assert.equal(encode(Frame.binary(new Uint8Array(n)), { role: "client" }).length, 1);
    }
  });

  await t.step("draws a different masking key for each frame", () => {
    // 2100 frames draw keys across two refills of the 4096-byte key pool. Random 32-bit keys
    // collide with a chance of about 1 in 2000 for the whole set, so allow a few.
    const encoder = new FrameEncoder({ role: "client" });
    const keys: string[] = [];
    for (let i = 0; i < 2100; i++) {
      encoder.encode(Frame.binary(HELLO), { enqueue: (c) => void keys.push(keyOf(c).join()) });
    }
    assert(new Set(keys).size >= 2095, `only ${new Set(keys).size} distinct keys`);
    for (let i = 1; i < keys.length; i++) assert.notEqual(keys[i], keys[i - 1], `frame ${i}`);
  });

  await t.step("takes each key as 4 fresh pool bytes, and refills once per 1024 frames", () => {
    // RFC 6455 §5.3: a key must not be derivable from earlier frames. With the system's
    // randomness replaced by a known pattern, each key is the next 4 bytes of the pool, in
    // order, and the pool is refilled only when all 4096 bytes were used.
    const real = crypto.getRandomValues;
    let calls = 0;
    const pattern = (call: number, at: number) => (at * 7 + call) & 0xff;
    crypto.getRandomValues = (<T extends ArrayBufferView | null>(array: T): T => {
      calls++;
      const bytes = array as unknown as Uint8Array;
      for (let i = 0; i < bytes.length; i++) bytes[i] = pattern(calls, i);
      return array;
    }) as typeof crypto.getRandomValues;
    try {
      const encoder = new FrameEncoder({ role: "client" });
      const keys: number[][] = [];
      const sink = { enqueue: (c: Uint8Array) => void keys.push([...keyOf(c)]) };
      // Up to the refill (the pool's state depends on the steps before): its frame takes the
      // new pool's first key.
      while (calls === 0) {
        encoder.encode(Frame.text("x"), sink);
        assert.ok(keys.length <= 1024, "no refill within 1024 frames");
      }
      const first = keys.length - 1;
      for (let i = 0; i < 1024; i++) encoder.encode(Frame.text("x"), sink);
      assert.equal(calls, 2, "one refill per 1024 frames");
      for (let j = 0; j < 1024; j++) {
        assert.deepEqual(keys[first + j], [0, 1, 2, 3].map((b) => pattern(1, 4 * j + b)), `${j}`);
      }
      assert.deepEqual(keys[first + 1024], [0, 1, 2, 3].map((b) => pattern(2, b)));
    } finally {
      crypto.getRandomValues = real;
    }
  });

  await t.step("pooled = false: each chunk has a buffer of its own, safe to transfer", () => {
    const encoder = new FrameEncoder();
    assert.equal(encoder.pooled, true);
    encoder.pooled = false;
    assert.equal(encoder.pooled, false);
    const chunks: Uint8Array[] = [];
    for (const text of ["a", "b"]) {
      encoder.encode(Frame.text(text), { enqueue: (c) => void chunks.push(c) });
    }
    assert.deepEqual(chunks.map((c) => c.buffer.byteLength), [3, 3]);
    structuredClone(chunks[0]!.buffer, { transfer: [chunks[0]!.buffer as ArrayBuffer] });
    assert.deepEqual([...chunks[1]!], [0x81, 0x01, 0x62], "the second chunk survives");
  });

  await t.step("rejects reserved opcodes with RangeError and emits nothing", () => {
    for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf, -1, 16, 1.5, NaN]) {
      const chunks: Uint8Array[] = [];
      assert.throws(
        () =>
          new FrameEncoder().encode(new Frame(opcode as Opcode), {
            enqueue: (c) => void chunks.push(c),
          }),
        RangeError,
        `opcode ${opcode}`,
      );
      assert.equal(chunks.length, 0);
    }
  });

  await t.step("accepts a final control frame of 125 bytes", () => {
    for (const opcode of [0x8, 0x9, 0xa] as Opcode[]) {
      const payload = randomBytes(seeded(opcode), 125);
      const bytes = encode(new Frame(opcode, payload))[0]!;
      assert.deepEqual(bytes.subarray(0, 2), Uint8Array.of(0x80 | opcode, 125));
    }
  });

  await t.step("rejects a control frame over 125 bytes or not final with RangeError", () => {
    for (const opcode of [0x8, 0x9, 0xa] as Opcode[]) {
      for (const role of ["server", "client"] as const) {
        assert.throws(() => encode(new Frame(opcode, new Uint8Array(126)), { role }), RangeError);
        assert.throws(
          () => encode(new Frame(opcode, new Uint8Array(0), false), { role }),
          RangeError,
        );
      }
    }
  });

  await t.step("round-trips through FrameDecoder for both roles", () => {
    const random = seeded(11);
    for (const role of ["server", "client"] as const) {
      const peer = role === "server" ? "client" : "server";
      for (const n of [0, 1, 125, 126, 127, 4096, 4097, 65_535, 65_536, 65_537]) {
        const frame = new Frame(0x2, randomBytes(random, n), n % 2 === 0, true, false, true);
        const frames = decode(concat(encode(frame, { role })), peer);
        assert.equal(frames.length, 1);
        const got = frames[0]!;
        assert.deepEqual(
          [got.opcode, got.fin, got.rsv1, got.rsv2, got.rsv3, got.payload],
          [frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3, frame.payload],
          `${role} length ${n}`,
        );
      }
    }
  });

  await t.step("rejects an invalid role with RangeError", () => {
    assert.throws(() => new FrameEncoder({ role: "peer" as Role }), RangeError);
  });
});

Deno.test("FrameEncoderStream", async (t) => {
  await t.step(
    "gives chunks of their own: a reader that transfers them loses nothing",
    async () => {
      // Small frames once shared a slab: the first one transferred detached the ones queued.
      const frames = Array.from({ length: 8 }, (_, i) => Frame.text(`m${i}`));
      const coded = ReadableStream.from(frames).pipeThrough(new FrameEncoderStream());
      const chunks: Uint8Array[] = [];
      await coded.pipeTo(
        new WritableStream({
          async write(chunk) {
            await new Promise((resolve) => setTimeout(resolve, 1)); // the next ones queue up
            const { byteOffset, length } = chunk; // read before the transfer detaches it
            chunks.push(
              new Uint8Array((chunk.buffer as ArrayBuffer).transfer(), byteOffset, length),
            );
          },
        }, { highWaterMark: 4 }),
      );
      assert.deepEqual(chunks.map((c) => [...c]), frames.map((_, i) => [0x81, 2, 0x6d, 0x30 + i]));
    },
  );

  await t.step("encodes frames into the chunks FrameEncoder emits", async () => {
    const frames = ReadableStream.from([
      Frame.text("a", false),
      Frame.continuation(Uint8Array.of(0x62)),
    ]);
    const chunks = await Array.fromAsync(frames.pipeThrough(new FrameEncoderStream()));
    assert.deepEqual(chunks, [hex("01 01 61"), hex("80 01 62")]); // "a" not final, then "b"
  });

  await t.step("emits a large unmasked payload as a header and the payload itself", async () => {
    const payload = new Uint8Array(5000);
    const chunks = await Array.fromAsync(
      ReadableStream.from([Frame.binary(payload)]).pipeThrough(new FrameEncoderStream()),
    );
    assert.deepEqual(chunks[0], hex("82 7e 1388")); // FIN, binary, 16-bit length 5000
    assert.equal(chunks[1], payload);
  });

  await t.step("round-trips through FrameDecoderStream for both roles", async () => {
    const random = seeded(12);
    const sent = [0, 1, 125, 126, 5000, 70_000].map((n) => Frame.binary(randomBytes(random, n)));
    sent.push(Frame.ping(HELLO), Frame.close(1000, "bye"));
    for (const role of ["server", "client"] as const) {
      const chunks = await Array.fromAsync(
        ReadableStream.from(sent).pipeThrough(new FrameEncoderStream({ role })),
      );
      const got = decode(concat(chunks), role === "server" ? "client" : "server");
      assert.deepEqual(
        got.map((f) => [f.opcode, f.payload]),
        sent.map((f) => [f.opcode, f.payload]),
      );
    }
  });

  await t.step("errors both sides with the encoder's RangeError", async () => {
    const stream = new FrameEncoderStream();
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    const [written, read] = await Promise.allSettled([
      writer.write(new Frame(0x9, new Uint8Array(126))), // a ping over 125 bytes
      reader.read(),
    ]);
    assert(written.status === "rejected" && read.status === "rejected");
    assert(written.reason instanceof RangeError);
    assert.equal(read.reason, written.reason);
  });
});
