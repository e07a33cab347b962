// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  type Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameDecoderStream,
  MessageTooBigError,
  WebSocketError,
} from "@wirestream/wirestream";
import { bytewise, concat, hex, randomBytes, seeded, split, splitAt } from "../_util/random.ts";

// Fixtures. The RFC 6455 §5.7 examples first, byte for byte.

/** RFC 6455 §5.7: a single-frame unmasked text message "Hello" (a client receives it). */
const HELLO = hex(
  "81" + // FIN, opcode 0x1 (text)
    "05" + // MASK 0, length 5
    "48656c6c6f", // "Hello"
);
/** RFC 6455 §5.7: a single-frame masked text message "Hello" (a server receives it). */
const MASKED_HELLO = hex(
  "81" + // FIN, opcode 0x1 (text)
    "85" + // MASK 1, length 5
    "37fa213d" + // masking key
    "7f9f4d5158", // "Hello" XOR key
);
/** RFC 6455 §5.7: a fragmented unmasked text message, "Hel" then "lo". */
const FRAGMENTED = hex(
  "01" + // FIN 0, opcode 0x1 (text)
    "03" + // MASK 0, length 3
    "48656c" + // "Hel"
    "80" + // FIN, opcode 0x0 (continuation)
    "02" + // MASK 0, length 2
    "6c6f", // "lo"
);
/** RFC 6455 §5.7: an unmasked ping with the body "Hello". */
const PING = hex(
  "89" + // FIN, opcode 0x9 (ping)
    "05" + // MASK 0, length 5
    "48656c6c6f", // "Hello"
);
/** RFC 6455 §5.7: a masked pong with the body "Hello", answering the ping. */
const MASKED_PONG = hex(
  "8a" + // FIN, opcode 0xA (pong)
    "85" + // MASK 1, length 5
    "37fa213d" + // masking key
    "7f9f4d5158", // "Hello" XOR key
);
const BYTES_256 = randomBytes(seeded(256), 256);
/** RFC 6455 §5.7: 256 bytes of binary data in a single unmasked frame. */
const BINARY_256 = concat([
  hex(
    "82" + // FIN, opcode 0x2 (binary)
      "7e" + // MASK 0, 16-bit length follows
      "0100", // length 256
  ),
  BYTES_256,
]);
const BYTES_64K = randomBytes(seeded(65_536), 65_536);
/** RFC 6455 §5.7: 64 KiB of binary data in a single unmasked frame. */
const BINARY_64K = concat([
  hex(
    "82" + // FIN, opcode 0x2 (binary)
      "7f" + // MASK 0, 64-bit length follows
      "0000000000010000", // length 65536
  ),
  BYTES_64K,
]);

const KEY = hex("37fa213d"); // the masking key of RFC 6455 §5.7

/**
 * The header of a frame, built by hand as the test's own reference encoder: `b0` (FIN, RSV,
 * opcode), then the minimal length encoding of `length` (below 2^32) with the MASK bit when a
 * `key` is given, then the key.
 */
function header(b0: number, length: number, key?: Uint8Array): Uint8Array {
  const n = length;
  const size = n < 126
    ? [n]
    : n < 65_536
    ? [126, n >>> 8, n & 0xff]
    : [127, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  size[0]! |= key ? 0x80 : 0;
  return concat([Uint8Array.of(b0, ...size), key ?? new Uint8Array(0)]);
}

/** Wire bytes of one frame: its header, then the payload, masked with `key` when given. */
function wire(b0: number, payload: Uint8Array, key?: Uint8Array): Uint8Array {
  const body = payload.slice();
  if (key) { for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!; }
  return concat([header(b0, payload.length, key), body]);
}

/** A frame as plain data, so that assert.deepEqual shows what differs. */
interface Plain {
  opcode: number;
  fin: boolean;
  rsv: [boolean, boolean, boolean];
  payload: string;
}

/** Hex for a short payload; the length and an FNV-1a hash for a long one, to stay fast. */
function toHex(bytes: Uint8Array): string {
  if (bytes.length > 256) {
    let hash = 0x811c9dc5;
    for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
    return `${bytes.length} bytes, FNV-1a ${(hash >>> 0).toString(16)}`;
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function plain(frame: Frame): Plain {
  return {
    opcode: frame.opcode,
    fin: frame.fin,
    rsv: [frame.rsv1, frame.rsv2, frame.rsv3],
    payload: toHex(frame.payload),
  };
}

function text(opcode: number, body: string, fin = true): Plain {
  return {
    opcode,
    fin,
    rsv: [false, false, false],
    payload: toHex(new TextEncoder().encode(body)),
  };
}

/** Decodes chunks (which the decoder may modify) with one decoder, then calls end(). */
function decodeFrames(chunks: readonly Uint8Array[], options?: FrameDecoderOptions): Frame[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(options);
  const sink = { enqueue: (frame: Frame) => void frames.push(frame) };
  for (const chunk of chunks) decoder.push(chunk, sink);
  decoder.end();
  return frames;
}

function decode(chunks: readonly Uint8Array[], options?: FrameDecoderOptions): Plain[] {
  return decodeFrames(chunks, options).map(plain);
}

/** Copies of `bytes` cut at `a` and `b` (a ≤ b). */
function splitAt2(bytes: Uint8Array, a: number, b: number): Uint8Array[] {
  return [bytes.slice(0, a), bytes.slice(a, b), bytes.slice(b)];
}

/** Runs `fn`, asserts that it throws an instance of `type` with `closeCode`, returns it. */
function assertThrowsCode<E extends WebSocketError>(
  fn: () => unknown,
  closeCode: number,
  type: new (...args: never[]) => E,
  context = "",
): E {
  let caught: unknown = undefined;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof type, `expected ${type.name}, got ${caught} ${context}`);
  assert.equal(caught.closeCode, closeCode, `${caught.message} ${context}`);
  assert.match(caught.message, /^Cannot decode frame: /);
  return caught;
}

/** Pushes `chunk` into a fresh decoder and asserts the typed error; no frame may come out. */
function assertRejects(
  chunk: Uint8Array,
  options: FrameDecoderOptions,
  closeCode: 1002 | 1009,
  context = "",
): WebSocketError {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(options);
  const type = closeCode === 1009 ? MessageTooBigError : WebSocketError;
  const error = assertThrowsCode(
    () => decoder.push(chunk.slice(), { enqueue: (f) => void frames.push(f) }),
    closeCode,
    type,
    context,
  );
  assert.equal(frames.length, 0, context);
  return error;
}

const SERVER: FrameDecoderOptions = { role: "server" };
const CLIENT: FrameDecoderOptions = { role: "client", maxFrameSize: Infinity };

/** A mix of frames, masked with `key` if given: 7- and 16-bit lengths, control and empty ones. */
function mixedWire(key?: Uint8Array): { bytes: Uint8Array; want: Plain[] } {
  const random = seeded(7);
  const parts: [number, Uint8Array][] = [
    [0x01, randomBytes(random, 3)], // text, not final
    [0x89, new Uint8Array(0)], // ping, empty, between fragments
    [0x80, randomBytes(random, 2)], // continuation, final
    [0x82, randomBytes(random, 125)], // binary, longest 7-bit length
    [0x82, randomBytes(random, 126)], // binary, shortest 16-bit length
    [0x8a, randomBytes(random, 125)], // pong, longest control payload
    [0x82, new Uint8Array(0)], // binary, empty
    [0x88, hex("03e8")], // close 1000
  ];
  return {
    bytes: concat(parts.map(([b0, payload]) => wire(b0, payload, key))),
    want: parts.map(([b0, payload]) => ({
      opcode: b0 & 0x0f,
      fin: (b0 & 0x80) !== 0,
      rsv: [false, false, false],
      payload: toHex(payload),
    })),
  };
}

Deno.test("FrameDecoder", async (t) => {
  await t.step("decodes the RFC 6455 §5.7 examples byte-exact", () => {
    assert.deepEqual(decode([HELLO.slice()], CLIENT), [text(0x1, "Hello")]);
    assert.deepEqual(decode([MASKED_HELLO.slice()], SERVER), [text(0x1, "Hello")]);
    assert.deepEqual(decode([FRAGMENTED.slice()], CLIENT), [
      text(0x1, "Hel", false),
      text(0x0, "lo"),
    ]);
    assert.deepEqual(decode([PING.slice()], CLIENT), [text(0x9, "Hello")]);
    assert.deepEqual(decode([MASKED_PONG.slice()], SERVER), [text(0xa, "Hello")]);
    const binary = (bytes: Uint8Array): Plain => ({
      opcode: 0x2,
      fin: true,
      rsv: [false, false, false],
      payload: toHex(bytes),
    });
    assert.deepEqual(decode([BINARY_256.slice()], CLIENT), [binary(BYTES_256)]);
    assert.deepEqual(decode([BINARY_64K.slice()], CLIENT), [binary(BYTES_64K)]);
  });

  await t.step("stops after a frame whose sink returns false, and reads on from there", () => {
    // The five RFC examples back to back, cut at every offset into two chunks; the sink stops
    // the decoder after every frame, and the caller pushes the rest of the chunk again.
    const all = concat([HELLO, FRAGMENTED, PING, BINARY_256]);
    const want = decode([all.slice()], CLIENT);
    for (let at = 0; at <= all.length; at++) {
      const decoder = new FrameDecoder(CLIENT);
      const got: Plain[] = [];
      const sink = { enqueue: (frame: Frame) => (got.push(plain(frame)), false) };
      for (const chunk of [all.slice(0, at), all.slice(at)]) {
        let rest = chunk;
        for (let pushes = 0; rest.length > 0; pushes++) {
          assert.ok(pushes <= want.length, `at ${at}: no progress`);
          const before = got.length;
          const read = decoder.push(rest, sink);
          assert.ok(read > 0 && read <= rest.length, `at ${at}: read ${read} of ${rest.length}`);
          // It stopped after the frame, also one whose start came in the chunk before.
          assert.ok(got.length - before <= 1, `at ${at}: ${got.length - before} frames in a push`);
          rest = rest.subarray(read);
        }
      }
      decoder.end();
      assert.deepEqual(got, want, `cut at ${at}`);
    }
    // A sink that returns anything else (undefined, a number) lets it read the whole chunk.
    const decoder = new FrameDecoder(CLIENT);
    const frames: Frame[] = [];
    assert.equal(decoder.push(all.slice(), { enqueue: (f) => frames.push(f) }), all.length);
    assert.equal(frames.length, want.length);
  });

  await t.step("decodes the masked forms of the 256-byte and 64 KiB examples", () => {
    for (const bytes of [BYTES_256, BYTES_64K]) {
      const [frame] = decode([wire(0x82, bytes, KEY)], SERVER);
      assert.equal(frame?.payload, toHex(bytes), `${bytes.length} bytes`);
    }
  });

  await t.step("reads 7-bit, 16-bit and 64-bit lengths at each boundary", () => {
    const random = seeded(1);
    for (const n of [0, 1, 124, 125, 126, 127, 65_535, 65_536, 65_537, 70_000]) {
      const payload = randomBytes(random, n);
      const bytes = wire(0x82, payload);
      const sizeField = n < 126 ? 1 : n < 65_536 ? 3 : 9;
      assert.equal(bytes.length, 1 + sizeField + n, `length ${n}`);
      assert.deepEqual(decodeFrames([bytes], CLIENT).map((f) => f.payload), [payload]);
      assert.deepEqual(decodeFrames([wire(0x82, payload, KEY)], SERVER).map((f) => f.payload), [
        payload,
      ]);
    }
  });

  await t.step("accepts a length in a longer form than it needs, as ws does", () => {
    // "Hello" (RFC 6455 §5.7) with its length 5 in the 16-bit and in the 64-bit form.
    const hello = HELLO.slice(2);
    for (const size of [[0x7e, 0, 5], [0x7f, 0, 0, 0, 0, 0, 0, 0, 5]]) {
      const bytes = Uint8Array.of(0x81, ...size, ...hello);
      assert.deepEqual(decode([bytes], CLIENT), [text(0x1, "Hello")], `${size.length} bytes`);
    }
  });

  await t.step("gives the same frames for a split at every offset of each small fixture", () => {
    const fixtures: [string, Uint8Array, FrameDecoderOptions][] = [
      ["HELLO", HELLO, CLIENT],
      ["MASKED_HELLO", MASKED_HELLO, SERVER],
      ["FRAGMENTED", FRAGMENTED, CLIENT],
      ["PING", PING, CLIENT],
      ["MASKED_PONG", MASKED_PONG, SERVER],
      ["BINARY_256", BINARY_256, CLIENT],
      ["masked BINARY_256", wire(0x82, BYTES_256, KEY), SERVER],
    ];
    for (const [name, bytes, options] of fixtures) {
      const want = decode([bytes.slice()], options);
      for (let at = 0; at <= bytes.length; at++) {
        assert.deepEqual(decode(splitAt(bytes, at), options), want, `${name} split at ${at}`);
      }
    }
  });

  await t.step("gives the same frames for cuts at every pair of offsets", () => {
    const inputs: [Uint8Array, FrameDecoderOptions][] = [
      [concat([FRAGMENTED, PING, HELLO]), CLIENT],
      [concat([MASKED_HELLO, MASKED_PONG, wire(0x82, BYTES_256.subarray(0, 130), KEY)]), SERVER],
    ];
    for (const [bytes, options] of inputs) {
      const want = decode([bytes.slice()], options);
      for (let a = 0; a <= bytes.length; a++) {
        for (let b = a; b <= bytes.length; b++) {
          const context = `${options.role} at ${a}, ${b}`;
          assert.deepEqual(decode(splitAt2(bytes, a, b), options), want, context);
        }
      }
    }
  });

  await t.step("gives the same frames for a cut at every offset and another every 31 bytes", () => {
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const { bytes, want } = mixedWire(key);
      const options = { role };
      assert.deepEqual(decode([bytes.slice()], options), want, role);
      for (let a = 0; a <= bytes.length; a += 1) {
        for (let b = a; b <= bytes.length; b += 31) {
          assert.deepEqual(decode(splitAt2(bytes, a, b), options), want, `${role} at ${a}, ${b}`);
        }
      }
    }
  });

  await t.step("gives the same frames for splits near a 64-bit header and payload end", () => {
    const bytes = concat([wire(0x82, BYTES_64K, KEY), MASKED_HELLO]);
    const want = decode([bytes.slice()], SERVER);
    const end = 14 + 65_536;
    const offsets = [...Array(40).keys(), ...Array.from({ length: 40 }, (_, i) => end - 20 + i)];
    for (const a of offsets) {
      assert.deepEqual(decode(splitAt(bytes, a), SERVER), want, `split at ${a}`);
      for (const b of [a, a + 1, a + 3, a + 13, a + 4096]) {
        assert.deepEqual(decode(splitAt2(bytes, a, b), SERVER), want, `split at ${a}, ${b}`);
      }
    }
  });

  await t.step("gives the same frames for 1-byte chunks and with empty chunks between", () => {
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const { bytes, want } = mixedWire(key);
      const ones = bytewise(bytes);
      assert.deepEqual(decode(ones, { role }), want, `${role} 1-byte chunks`);
      const withEmpty = bytewise(bytes).flatMap((c) => [new Uint8Array(0), c, new Uint8Array(0)]);
      assert.deepEqual(decode(withEmpty, { role }), want, `${role} with empty chunks`);
    }
  });

  await t.step("gives the same frames for any chunking (500 seeds)", () => {
    const big = BYTES_64K.subarray(0, 5000); // a 16-bit length, over the SIMD threshold
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const { bytes: mixed, want: mixedWant } = mixedWire(key);
      const bytes = concat([mixed, wire(0x82, big, key), mixed]);
      const want = [...mixedWant, plain(decodeFrames([wire(0x82, big)], CLIENT)[0]!), ...mixedWant];
      for (let seed = 1; seed <= 250; seed++) {
        const max = [2, 5, 17, 200, 3000, 20_000][seed % 6]!;
        const chunks = split(bytes, seeded(seed), max);
        assert.deepEqual(decode(chunks, { role }), want, `${role} seed ${seed}`);
      }
    }
  });

  await t.step("gives the same 64 KiB frame for any chunking (40 seeds)", () => {
    const want = [plain(decodeFrames([BINARY_64K.slice()], CLIENT)[0]!)];
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const bytes = wire(0x82, BYTES_64K, key);
      for (let seed = 1; seed <= 20; seed++) {
        const max = [100, 2047, 4096, 65_536, 70_000][seed % 5]!;
        const chunks = split(bytes, seeded(seed), max);
        assert.deepEqual(decode(chunks, { role }), want, `${role} seed ${seed}`);
      }
    }
  });

  await t.step("decodes many frames from one chunk, in order", () => {
    const random = seeded(3);
    const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(random, i % 300));
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const bytes = concat(payloads.map((p) => wire(0x82, p, key)));
      const frames = decodeFrames([bytes], { role });
      assert.deepEqual(frames.map((f) => f.payload), payloads, role);
    }
  });

  await t.step("emits a payload within one chunk as a view of it, unmasked in place", () => {
    const buffer = new Uint8Array(3 + MASKED_HELLO.length);
    buffer.set(MASKED_HELLO, 3);
    const chunk = buffer.subarray(3);
    const [frame] = decodeFrames([chunk], SERVER);
    assert.equal(frame!.payload.buffer, chunk.buffer);
    assert.equal(frame!.payload.byteOffset, 3 + 6); // after 2 header bytes and the key
    assert.equal(new TextDecoder().decode(chunk.subarray(6)), "Hello"); // the chunk changed
  });

  await t.step("emits a view of the later chunk when only the header was split", () => {
    const [first, second] = splitAt(MASKED_HELLO, 4); // inside the masking key
    const [frame] = decodeFrames([first!, second!], SERVER);
    assert.equal(frame!.payload.buffer, second!.buffer);
    assert.equal(frame!.payload.byteOffset, 2);
  });

  await t.step("copies a payload that spans chunks into its own buffer of exact size", () => {
    for (const [bytes, options] of [[HELLO, CLIENT], [MASKED_HELLO, SERVER]] as const) {
      const at = bytes.length - 2; // inside the payload
      const chunks = splitAt(bytes, at);
      const [frame] = decodeFrames(chunks, options);
      for (const chunk of chunks) assert.notEqual(frame!.payload.buffer, chunk.buffer);
      assert.equal(frame!.payload.byteOffset, 0);
      assert.equal(frame!.payload.buffer.byteLength, 5);
      assert.equal(new TextDecoder().decode(frame!.payload), "Hello");
    }
  });

  await t.step("does not change a chunk of unmasked frames", () => {
    const chunk = FRAGMENTED.slice();
    decodeFrames([chunk], CLIENT);
    assert.deepEqual(chunk, FRAGMENTED);
  });

  await t.step("delivers the frames before a violation in the same chunk, then throws", () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder(CLIENT);
    const bytes = concat([HELLO, PING, hex("83 00")]); // then opcode 0x3, reserved
    assertThrowsCode(
      () => decoder.push(bytes, { enqueue: (f) => void frames.push(f) }),
      1002,
      WebSocketError,
    );
    assert.deepEqual(frames.map(plain), [text(0x1, "Hello"), text(0x9, "Hello")]);
  });

  await t.step("rejects a 64-bit length with the top bit set with 1002", () => {
    for (const options of [CLIENT, { role: "client" as const }]) {
      const head = hex(
        "82" + // FIN, binary
          "7f" + // MASK 0, 64-bit length follows
          "8000000000000000", // length 2^63: the top bit is set
      );
      assertRejects(head, options, 1002, `maxFrameSize ${options.maxFrameSize}`);
      assertRejects(hex("82 7f ffffffffffffffff"), options, 1002); // all ones
    }
    // Masked, in the server role: rejected once the header with its key is in.
    assertRejects(hex("82 ff 8000000000000001 37fa213d"), SERVER, 1002);
  });

  await t.step("rejects a frame over maxFrameSize with 1009 from the header alone", () => {
    const cases: [Uint8Array, number, number][] = [
      [hex("82 06"), 5, 6], // 7-bit length 6 over 5
      [hex("82 7e 0100"), 255, 256], // 16-bit length 256 over 255
      [hex("82 7f 0000000000100001"), 1_048_576, 1_048_577], // 64-bit, over the default
      [hex("82 7f 001fffffffffffff"), 1_048_576, 2 ** 53 - 1], // largest exact length
    ];
    for (const [head, limit, size] of cases) {
      const options = { role: "client" as const, maxFrameSize: limit };
      const error = assertRejects(head, options, 1009, `size ${size}`) as MessageTooBigError;
      assert.equal(error.name, "MessageTooBigError");
      assert.deepEqual([error.limit, error.size], [limit, size]);
    }
    // The server role: the header ends with the masking key.
    assertRejects(hex("82 fe 0100 37fa213d"), { maxFrameSize: 255 }, 1009);
  });

  await t.step("uses maxFrameSize 1 MiB by default: 1048576 ok, 1048577 rejected", () => {
    const frames = decodeFrames([wire(0x82, new Uint8Array(1_048_576), KEY)]);
    assert.equal(frames[0]!.payload.length, 1_048_576);
    assertRejects(header(0x82, 1_048_577, KEY), {}, 1009);
  });

  await t.step("accepts a frame of exactly maxFrameSize and rejects one byte more", () => {
    const random = seeded(9);
    for (const n of [0, 1, 125, 126, 65_535, 65_536, 70_000]) {
      const payload = randomBytes(random, n);
      for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
        const options = { role, maxFrameSize: n };
        assert.deepEqual(
          decodeFrames(split(wire(0x82, payload, key), random, 9000), options)[0]!.payload,
          payload,
          `${role} at ${n}`,
        );
        const error = assertRejects(header(0x82, n + 1, key), options, 1009, `${role} ${n + 1}`);
        assert.deepEqual(
          [(error as MessageTooBigError).limit, (error as MessageTooBigError).size],
          [n, n + 1],
        );
      }
    }
  });

  await t.step("holds control frames to 125 bytes, not to a smaller maxFrameSize", () => {
    // As ws does (its maxPayload counts data frames only) and as the native engine does: a
    // limit under 125 must not turn a peer's close reason or ping into a 1009.
    const options = { role: "client" as const, maxFrameSize: 5 };
    const ping = hex(`89 7d ${"ab".repeat(125)}`);
    assert.equal(decodeFrames([ping], options)[0]!.payload.length, 125);
    const close = hex(`88 20 03e8 ${"61".repeat(30)}`); // 1000 and a 30-byte reason
    assert.equal(decodeFrames([close], options)[0]!.payload.length, 32);
    assertRejects(hex("82 06"), options, 1009); // a data frame of 6 bytes
    assertRejects(hex("89 7e 007e"), options, 1002); // a control frame of 126: RFC 6455 §5.5
  });

  await t.step("rejects a 64-bit length above 2^53 − 1 even when maxFrameSize is Infinity", () => {
    // Such a length is not exact as a number; it must not reach `new Uint8Array` (RangeError).
    const options = { role: "client" as const, maxFrameSize: Infinity };
    assertRejects(hex("82 7f 0020000000000000"), options, 1009); // 2^53
    assertRejects(hex("82 7f 7fffffffffffffff"), options, 1009); // 2^63 − 1
  });

  await t.step("requires masked frames in the server role, the default", () => {
    for (const options of [SERVER, {}]) {
      const error = assertRejects(hex("81 05"), options, 1002); // unmasked, 2 bytes suffice
      assert.match(error.message, /not masked/);
      assertRejects(HELLO, options, 1002);
      assertRejects(PING, options, 1002);
    }
  });

  await t.step("requires unmasked frames in the client role", () => {
    const error = assertRejects(hex("81 85"), CLIENT, 1002); // masked, 2 bytes suffice
    assert.match(error.message, /is masked/);
    assertRejects(MASKED_HELLO, CLIENT, 1002);
    assertRejects(MASKED_PONG, CLIENT, 1002);
  });

  await t.step("rejects RSV1, RSV2 and RSV3 unless allowedRsv allows that bit", () => {
    for (let allowed = 0; allowed < 8; allowed++) {
      const allowedRsv = {
        rsv1: (allowed & 4) !== 0,
        rsv2: (allowed & 2) !== 0,
        rsv3: (allowed & 1) !== 0,
      };
      for (let bits = 1; bits < 8; bits++) {
        const b0 = 0x82 | (bits << 4); // FIN, RSV bits, binary
        const context = `allowed ${allowed.toString(2)}, set ${bits.toString(2)}`;
        const options = { role: "client" as const, allowedRsv };
        if ((bits & ~allowed) !== 0) {
          assertRejects(Uint8Array.of(b0, 0x00), options, 1002, context);
        } else {
          const [frame] = decode([Uint8Array.of(b0, 0x01, 0x2a)], options);
          assert.deepEqual(frame?.rsv, [(bits & 4) !== 0, (bits & 2) !== 0, (bits & 1) !== 0]);
        }
      }
    }
  });

  await t.step("allows RSV bits on control frames only as allowedRsv says", () => {
    assertRejects(hex("c9 00"), CLIENT, 1002); // ping with RSV1
    const [frame] = decode([hex("c9 00")], { role: "client", allowedRsv: { rsv1: true } });
    assert.equal(frame?.rsv[0], true);
  });

  await t.step("rejects reserved opcodes 0x3–0x7 and 0xB–0xF with 1002 from two bytes", () => {
    for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      const context = `opcode 0x${opcode.toString(16)}`;
      const error = assertRejects(Uint8Array.of(0x80 | opcode, 0x80), SERVER, 1002, context);
      assert.match(error.message, /reserved/);
      assertRejects(Uint8Array.of(opcode, 0x00), CLIENT, 1002, context); // not final either
    }
  });

  await t.step("accepts a control frame of 125 bytes", () => {
    for (const opcode of [0x8, 0x9, 0xa]) {
      const payload = randomBytes(seeded(opcode), 125);
      assert.deepEqual(
        decodeFrames([wire(0x80 | opcode, payload, KEY)], SERVER)[0]!.payload,
        payload,
      );
    }
  });

  await t.step("rejects a control frame with a payload over 125 bytes with 1002", () => {
    for (const opcode of [0x8, 0x9, 0xa]) {
      const b0 = 0x80 | opcode;
      assertRejects(Uint8Array.of(b0, 0x7e), CLIENT, 1002, `16-bit ${opcode}`); // 2 bytes
      assertRejects(Uint8Array.of(b0, 0x7f), CLIENT, 1002, `64-bit ${opcode}`);
      assertRejects(Uint8Array.of(b0, 0xfe), SERVER, 1002, `masked ${opcode}`);
      assertRejects(wire(b0, new Uint8Array(126)), CLIENT, 1002, `whole ${opcode}`);
    }
  });

  await t.step("rejects a fragmented control frame with 1002", () => {
    for (const opcode of [0x8, 0x9, 0xa]) {
      const error = assertRejects(Uint8Array.of(opcode, 0x00), CLIENT, 1002, `${opcode}`);
      assert.match(error.message, /fragmented/);
      assertRejects(Uint8Array.of(opcode, 0x80), SERVER, 1002, `${opcode}`);
    }
  });

  await t.step("rejects input that ends inside a frame with 1002 from end()", () => {
    for (const [role, key] of [["client", undefined], ["server", KEY]] as const) {
      const { bytes } = mixedWire(key);
      for (let n = 1; n < bytes.length; n++) {
        const decoder = new FrameDecoder({ role });
        const prefix = bytes.slice(0, n);
        const sink = { enqueue() {} };
        decoder.push(prefix, sink);
        // A prefix that ends between frames is complete; anything else must fail.
        const between = isFrameBoundary(bytes, n, key !== undefined);
        if (between) decoder.end();
        else assertThrowsCode(() => decoder.end(), 1002, WebSocketError, `${role} at ${n}`);
      }
    }
  });

  await t.step("rejects truncation inside a 64-bit header or payload, 1 byte at a time", () => {
    const bytes = wire(0x82, BYTES_64K, KEY); // 2 + 8 header bytes, 4 key bytes, 65536 bytes
    for (const n of [1, 2, 5, 9, 10, 11, 13, 14, 15, 100, 14 + 65_535]) {
      const decoder = new FrameDecoder(SERVER);
      // Byte by byte through the header and into the payload, then the rest in one chunk.
      const chunks = [...bytewise(bytes.subarray(0, Math.min(n, 20))), bytes.slice(20, n)];
      for (const chunk of chunks) {
        decoder.push(chunk, { enqueue: () => assert.fail("no frame expected") });
      }
      assertThrowsCode(() => decoder.end(), 1002, WebSocketError, `at ${n}`);
    }
  });

  await t.step("accepts end() on no input and between frames", () => {
    assert.deepEqual(decode([]), []);
    assert.deepEqual(decode([new Uint8Array(0)], CLIENT), []);
    assert.equal(decode([HELLO.slice(), PING.slice()], CLIENT).length, 2);
  });

  await t.step("stays failed after an error", () => {
    const decoder = new FrameDecoder(CLIENT);
    const sink = { enqueue: () => assert.fail("no frame expected") };
    assertThrowsCode(() => decoder.push(hex("83 00"), sink), 1002, WebSocketError);
    assertThrowsCode(() => decoder.push(HELLO.slice(), sink), 1002, WebSocketError);
    assertThrowsCode(() => decoder.push(new Uint8Array(0), sink), 1002, WebSocketError);
  });

  await t.step("stays failed after input ended inside a frame", () => {
    const decoder = new FrameDecoder(CLIENT);
    decoder.push(HELLO.slice(0, 3), { enqueue: () => assert.fail("no frame expected") });
    assertThrowsCode(() => decoder.end(), 1002, WebSocketError);
    assertThrowsCode(
      () => decoder.push(HELLO.slice(), { enqueue: () => assert.fail("no frame expected") }),
      1002,
      WebSocketError,
    );
  });

  await t.step("stays failed after a 1009", () => {
    const decoder = new FrameDecoder({ role: "client", maxFrameSize: 4 });
    const sink = { enqueue: () => assert.fail("no frame expected") };
    assertThrowsCode(() => decoder.push(HELLO.slice(), sink), 1009, MessageTooBigError);
    assertThrowsCode(() => decoder.push(hex("81 00"), sink), 1002, WebSocketError);
  });

  await t.step("rejects invalid options with RangeError", () => {
    assert.throws(() => new FrameDecoder({ role: "peer" as "server" }), RangeError);
    for (const maxFrameSize of [-1, 1.5, NaN, -Infinity]) {
      assert.throws(() => new FrameDecoder({ maxFrameSize }), RangeError, `${maxFrameSize}`);
    }
    new FrameDecoder({ maxFrameSize: 0 });
    new FrameDecoder({ maxFrameSize: Infinity });
  });

  await t.step("accepts only empty frames with maxFrameSize 0", () => {
    const options = { role: "client" as const, maxFrameSize: 0 };
    assert.deepEqual(decode([hex("81 00 89 00")], options), [text(0x1, ""), text(0x9, "")]);
    assertRejects(hex("81 01"), options, 1009);
  });
});

/** Whether `n` bytes of the mixed wire end exactly between two frames. */
function isFrameBoundary(bytes: Uint8Array, n: number, masked: boolean): boolean {
  let at = 0;
  while (at < n) {
    const len7 = bytes[at + 1]! & 0x7f;
    const size = len7 < 126 ? len7 : (bytes[at + 2]! << 8) | bytes[at + 3]!;
    at += 2 + (len7 === 126 ? 2 : 0) + (masked ? 4 : 0) + size;
  }
  return at === n;
}

/** Runs `chunks` through a FrameDecoderStream. */
function decodeStream(
  chunks: readonly Uint8Array[],
  options?: FrameDecoderOptions,
): Promise<Frame[]> {
  return Array.fromAsync(ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream(options)));
}

Deno.test("FrameDecoderStream", async (t) => {
  await t.step(
    "errors both sides with a TypeError for a chunk that is not a Uint8Array",
    async () => {
      // The bytes of a text frame "hi" in other forms: an ArrayBuffer would be read as nothing,
      // an array or a string as garbage.
      const frame = Uint8Array.of(0x81, 0x02, 0x68, 0x69);
      for (const chunk of [frame.buffer, new DataView(frame.buffer), [...frame], "\x81\x02hi"]) {
        const stream = new FrameDecoderStream({ role: "client" });
        const writer = stream.writable.getWriter();
        const reading = Array.fromAsync(stream.readable);
        await assert.rejects(writer.write(chunk as unknown as Uint8Array), (e) => {
          assert.ok(e instanceof TypeError, String(e));
          assert.match(e.message, /^Cannot decode frames: a chunk of .* is not a Uint8Array$/);
          return true;
        });
        await assert.rejects(reading, TypeError);
      }
    },
  );

  await t.step("decodes a byte stream into frames, as FrameDecoder does", async () => {
    const { bytes, want } = mixedWire(KEY);
    assert.deepEqual((await decodeStream([bytes.slice()])).map(plain), want);
  });

  await t.step("gives the same frames for any chunking (100 seeds)", async () => {
    const { bytes, want } = mixedWire();
    for (let seed = 1; seed <= 100; seed++) {
      const frames = await decodeStream(split(bytes, seeded(seed), 1 + (seed % 20)), CLIENT);
      assert.deepEqual(frames.map(plain), want, `seed ${seed}`);
    }
  });

  await t.step("passes its options to the decoder", async () => {
    const frames = await decodeStream([hex("c2 01 2a")], {
      role: "client",
      allowedRsv: { rsv1: true },
    });
    assert.deepEqual(frames.map(plain), [{
      opcode: 2,
      fin: true,
      rsv: [true, false, false],
      payload: "2a",
    }]);
  });

  await t.step("errors both sides with the decoder's WebSocketError", async () => {
    const stream = new FrameDecoderStream();
    const writer = stream.writable.getWriter();
    const reader = stream.readable.getReader();
    const [written, read] = await Promise.allSettled([
      writer.write(HELLO.slice()), // unmasked, sent to a server
      reader.read(),
    ]);
    assert(written.status === "rejected" && read.status === "rejected");
    assert(written.reason instanceof WebSocketError);
    assert.equal(written.reason.closeCode, 1002);
    assert.equal(read.reason, written.reason);
    await assert.rejects(writer.closed, (e) => e === written.reason);
  });

  await t.step("errors with MessageTooBigError from a header alone", async () => {
    await assert.rejects(
      decodeStream([hex("82 7e 0100")], { role: "client", maxFrameSize: 255 }),
      (e) => {
        assert(e instanceof MessageTooBigError);
        assert.deepEqual([e.closeCode, e.limit, e.size], [1009, 255, 256]);
        return true;
      },
    );
  });

  await t.step("errors with 1002 when the input ends inside a frame", async () => {
    for (let n = 1; n < MASKED_HELLO.length; n++) {
      await assert.rejects(decodeStream([MASKED_HELLO.slice(0, n)]), (e) => {
        assert(e instanceof WebSocketError, `at ${n}`);
        assert.equal(e.closeCode, 1002);
        return true;
      });
    }
  });

  await t.step("delivers every frame that precedes an error in the same chunk", async () => {
    // Text "Hello" twice, a close 1000, then a frame with opcode 0xF, all in one chunk: a
    // TransformStream discards the frames still queued when the error comes.
    const wire = concat([HELLO, HELLO, hex("88 02 03e8"), hex("8f 00")]);
    const reader = ReadableStream.from([wire]).pipeThrough(new FrameDecoderStream(CLIENT))
      .getReader();
    assert.deepEqual(plain((await reader.read()).value!), text(0x1, "Hello"));
    assert.deepEqual(plain((await reader.read()).value!), text(0x1, "Hello"));
    assert.deepEqual(plain((await reader.read()).value!).payload, "03e8");
    await assert.rejects(reader.read(), { closeCode: 1002 });
  });

  await t.step("delivers the frames before an input that ends inside a frame", async () => {
    const wire = concat([HELLO, HELLO, HELLO, HELLO.subarray(0, 3)]);
    const reader = ReadableStream.from([wire]).pipeThrough(new FrameDecoderStream(CLIENT))
      .getReader();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(plain((await reader.read()).value!), text(0x1, "Hello"), `frame ${i}`);
    }
    await assert.rejects(reader.read(), { closeCode: 1002 });
  });

  await t.step("writes wait for reads, and cancelling the frames errors the input", async () => {
    const stream = new FrameDecoderStream(CLIENT);
    const writer = stream.writable.getWriter();
    let written = false;
    const write = writer.write(HELLO.slice()).then(() => written = true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(written, false, "no read yet, so the write waits");
    const reader = stream.readable.getReader();
    assert.deepEqual(plain((await reader.read()).value!), text(0x1, "Hello"));
    await write;
    const reason = new Error("enough");
    await reader.cancel(reason);
    await assert.rejects(writer.write(HELLO.slice()), (e) => e === reason);
  });

  await t.step("delivers the frames read before an error", async () => {
    const stream = ReadableStream.from([HELLO.slice(), hex("8f 00")]) // then opcode 0xF
      .pipeThrough(new FrameDecoderStream(CLIENT));
    const reader = stream.getReader();
    const first = await reader.read();
    assert.deepEqual(plain(first.value!), text(0x1, "Hello"));
    await assert.rejects(reader.read(), { closeCode: 1002 });
  });
});
