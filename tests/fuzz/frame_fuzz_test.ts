// Copyright 2026 the wirestream authors. MIT license.
// Property and fuzz tests of the frame codec; decoded input is judged by a reference decoder
// written from RFC 6455 §5 (tests/_util/frame_reference.ts). WIRESTREAM_FUZZ_RUNS sets the
// number of runs of each part (small by default, 10⁶ before a release); WIRESTREAM_FUZZ_SEED
// replays fast-check.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AllowedRsv,
  Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameDecoderStream,
  FrameEncoder,
  MessageTooBigError,
  type Opcode,
  type Role,
  WebSocketError,
} from "@wirestream/wirestream";
import {
  between,
  concat,
  FC_SEED,
  fuzzRuns,
  randomBytes,
  sameBytes,
  SEED_BASE,
  seeded,
  split,
} from "../_util/random.ts";
import { referenceDecodeFrames, type ReferenceOutcome } from "../_util/frame_reference.ts";

const DATA_OPCODES: Opcode[] = [0x0, 0x1, 0x2];
const CONTROL_OPCODES: Opcode[] = [0x8, 0x9, 0xa];

/** The role that decodes what `role` sends. */
function peerOf(role: Role): Role {
  return role === "server" ? "client" : "server";
}

/** A frame as plain data: assert.deepEqual then names the field that differs. */
function plain(frame: Frame) {
  return {
    opcode: frame.opcode,
    fin: frame.fin,
    rsv: [frame.rsv1, frame.rsv2, frame.rsv3],
    length: frame.payload.length,
    payload: frame.payload,
  };
}

/** Encodes frames for `role` into one byte array. */
function encodeAll(frames: readonly Frame[], role: Role): Uint8Array {
  const chunks: Uint8Array[] = [];
  const encoder = new FrameEncoder({ role });
  for (const frame of frames) encoder.encode(frame, { enqueue: (c) => void chunks.push(c) });
  return concat(chunks);
}

/** What decoding gave: the frames, then the close code of the error that ended it, if any. */
interface Outcome {
  frames: ReturnType<typeof plain>[];
  closeCode: number | null;
}

/**
 * Decodes `chunks` and returns the outcome. Any error other than a WebSocketError with 1002
 * or 1009 (a MessageTooBigError for 1009) fails the test. A sink that receives more frames
 * than the input has bytes for (2 bytes at least per frame) fails it too, so a decoder stuck
 * emitting cannot spin forever.
 */
function decodeOutcome(
  chunks: readonly Uint8Array[],
  options: FrameDecoderOptions,
  context: string,
): Outcome {
  const frames: ReturnType<typeof plain>[] = [];
  const most = chunks.reduce((n, c) => n + c.length, 0) / 2;
  const sink = {
    enqueue(frame: Frame) {
      frames.push(plain(frame));
      if (frames.length > most) assert.fail(`${context}: ${frames.length} frames from few bytes`);
    },
  };
  const decoder = new FrameDecoder(options);
  try {
    for (const chunk of chunks) decoder.push(chunk, sink);
    decoder.end();
  } catch (error) {
    assertExpectedError(error, context);
    return { frames, closeCode: (error as WebSocketError).closeCode };
  }
  return { frames, closeCode: null };
}

/** Asserts `error` is a WebSocketError with 1002, or a MessageTooBigError with 1009. */
function assertExpectedError(error: unknown, context: string): void {
  if (!(error instanceof WebSocketError)) {
    assert.fail(`${context}: threw ${error instanceof Error ? error.stack : String(error)}`);
  }
  assert(
    error.closeCode === 1002 || error.closeCode === 1009,
    `${context}: close code ${error.closeCode} (${error.message})`,
  );
  assert.equal(error instanceof MessageTooBigError, error.closeCode === 1009, context);
}

// fast-check: one frame as a spec; the payload comes from a seed, which is much faster than
// generating tens of kilobytes through fc.uint8Array and keeps counterexamples short.
const lengthArb = fc.oneof(
  fc.constantFrom(0, 1, 125, 126, 127, 4096, 4097, 65_535, 65_536, 65_537),
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 70_000 }),
);
const frameSpecArb = fc.record({
  control: fc.boolean(),
  op: fc.nat(2),
  fin: fc.boolean(),
  rsv: fc.tuple(fc.boolean(), fc.boolean(), fc.boolean()),
  length: lengthArb,
  byteSeed: fc.nat(),
});
type FrameSpec = typeof frameSpecArb extends fc.Arbitrary<infer T> ? T : never;

/** The frame a spec describes, with only the RSV bits that `allowed` permits. */
function frameOf(spec: FrameSpec, allowed: Required<AllowedRsv>): Frame {
  const opcode = (spec.control ? CONTROL_OPCODES : DATA_OPCODES)[spec.op]!;
  const length = spec.control ? spec.length % 126 : spec.length;
  return new Frame(
    opcode,
    randomBytes(seeded(spec.byteSeed), length),
    spec.control || spec.fin,
    spec.rsv[0] && allowed.rsv1,
    spec.rsv[1] && allowed.rsv2,
    spec.rsv[2] && allowed.rsv3,
  );
}

Deno.test("FrameEncoder and FrameDecoder", async (t) => {
  await t.step("decode(encode(frames)) is the identity for any frames and chunking", () => {
    const property = fc.property(
      fc.constantFrom<Role>("server", "client"),
      fc.record({ rsv1: fc.boolean(), rsv2: fc.boolean(), rsv3: fc.boolean() }),
      fc.array(frameSpecArb, { minLength: 1, maxLength: 4 }),
      fc.nat(),
      fc.constantFrom(1, 7, 64, 1500, 4096, 100_000),
      (role, allowedRsv, specs, chunkSeed, maxChunk) => {
        const frames = specs.map((spec) => frameOf(spec, allowedRsv));
        const wire = encodeAll(frames, role);
        // One-byte chunks for small inputs only, to keep the default run quick.
        const max = wire.length > 20_000 ? Math.max(maxChunk, 64) : maxChunk;
        const chunks = split(wire, seeded(chunkSeed), max);
        const context = `${role} sent, chunk seed ${chunkSeed}, max chunk ${max}`;
        const got = decodeOutcome(chunks, { role: peerOf(role), allowedRsv }, context);
        assert.deepEqual(got, { frames: frames.map(plain), closeCode: null }, context);
      },
    );
    fc.assert(property, { numRuns: fuzzRuns(300), seed: FC_SEED });
  });
});

/** Valid wire bytes of 1–5 random frames sent by `role`. */
function validWire(random: () => number, role: Role): Uint8Array {
  const frames: Frame[] = [];
  for (let n = between(random, 1, 5); n > 0; n--) {
    const control = random() < 0.3;
    const opcode = (control ? CONTROL_OPCODES : DATA_OPCODES)[between(random, 0, 2)]!;
    const length = control
      ? between(random, 0, 125)
      : random() < 0.1
      ? between(random, 0, 70_000)
      : between(random, 0, 300);
    const fin = control || random() < 0.7;
    const rsv1 = random() < 0.2;
    frames.push(new Frame(opcode, randomBytes(random, length), fin, rsv1));
  }
  return encodeAll(frames, role);
}

/** Flips bits, overwrites, inserts and deletes a few random bytes; headers are favoured. */
function mutate(random: () => number, bytes: Uint8Array): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (let n = between(random, 1, 4); n > 0; n--) {
    const span = random() < 0.5 ? Math.min(out.length, 16) : out.length;
    const at = between(random, 0, Math.max(span - 1, 0));
    const kind = between(random, 0, 3);
    if (kind === 0 && out.length > 0) {
      out[at]! ^= 1 << between(random, 0, 7); // flip one bit
    } else if (kind === 1 && out.length > 0) {
      out[at] = between(random, 0, 255); // overwrite one byte
    } else if (kind === 2) {
      const extra = randomBytes(random, between(random, 1, 3)); // insert bytes
      out = concat([out.subarray(0, at), extra, out.subarray(at)]);
    } else {
      const cut = between(random, 1, 3); // delete bytes
      out = concat([out.subarray(0, at), out.subarray(at + cut)]);
    }
  }
  return out;
}

/** Random decoder options: a role, a limit that some frames exceed, some RSV bits. */
function randomOptions(random: () => number, role: Role): Required<FrameDecoderOptions> {
  return {
    role,
    maxFrameSize: [1_048_576, 70_000, 200, 0][between(random, 0, 3)]!,
    allowedRsv: { rsv1: random() < 0.5, rsv2: random() < 0.2, rsv3: random() < 0.2 },
  };
}

/** Asserts that the decoder's outcome on `bytes` is the RFC 6455 reference decoder's. */
function assertAsReference(
  got: Outcome,
  bytes: Uint8Array,
  options: Required<FrameDecoderOptions>,
  context: string,
): void {
  const { rsv1 = false, rsv2 = false, rsv3 = false } = options.allowedRsv;
  const want = referenceDecodeFrames(bytes, { ...options, allowedRsv: { rsv1, rsv2, rsv3 } });
  assertSameOutcome(got, want, `${context}, against the RFC 6455 reference`);
}

/**
 * Asserts two outcomes equal, frame by frame. Payloads are compared with a loop: the diff
 * that assert.deepEqual writes for unequal arrays of 64 KiB takes minutes.
 */
function assertSameOutcome(got: ReferenceOutcome, want: ReferenceOutcome, context: string): void {
  const count = Math.max(got.frames.length, want.frames.length);
  for (let i = 0; i < count; i++) {
    const [a, b] = [got.frames[i], want.frames[i]];
    const at = `${context}: frame ${i}`;
    assert.deepEqual({ ...a, payload: null }, { ...b, payload: null }, at);
    assert(sameBytes(a!.payload, b!.payload), `${at}: the payloads differ`);
  }
  assert.equal(got.closeCode, want.closeCode, `${context}: close code`);
}

// fast-check: a frame header with any field values, legal or not: any FIN, RSV and opcode bits,
// either MASK bit, and a length in any of the three forms, longer ones than needed included.
const rawFrameArb = fc.record({
  byte0: fc.nat(255),
  mask: fc.boolean(),
  form: fc.constantFrom(7, 16, 64),
  length: fc.oneof(
    fc.constantFrom(0, 1, 125, 126, 127, 200, 201, 65_535, 65_536),
    fc.integer({ min: 0, max: 300 }),
  ),
  // The high 32 bits of a 64-bit length: the top bit, 2^53 and the values around them.
  high: fc.constantFrom(0, 0, 0, 1, 0x1f_ffff, 0x20_0000, 0x7fff_ffff, 0x8000_0000),
  byteSeed: fc.nat(),
});
type RawFrame = typeof rawFrameArb extends fc.Arbitrary<infer T> ? T : never;

/** The wire bytes of a raw frame: its header, a masking key if MASK is set, then a payload. */
function rawWire(frame: RawFrame): Uint8Array {
  const random = seeded(frame.byteSeed);
  const header = [frame.byte0];
  const mask = frame.mask ? 0x80 : 0;
  let length = frame.length;
  if (frame.form === 7) {
    length %= 126;
    header.push(mask | length);
  } else if (frame.form === 16) {
    length &= 0xffff;
    header.push(mask | 126, length >>> 8, length & 0xff);
  } else {
    const high = frame.high;
    header.push(mask | 127, high >>> 24, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff);
    header.push(length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
    if (high !== 0) length = 300; // announces far more than follows
  }
  const key = frame.mask ? randomBytes(random, 4) : new Uint8Array(0);
  // 61 random bytes repeated: a mask key misapplied anywhere shows, for little generation.
  const payload = new Uint8Array(length);
  const unit = randomBytes(random, 61);
  for (let at = 0; at < length; at += unit.length) payload.set(unit.subarray(0, length - at), at);
  return concat([Uint8Array.from(header), key, payload]);
}

Deno.test("FrameDecoder against the RFC 6455 reference", async (t) => {
  await t.step("decodes frames of any header fields as the reference does", () => {
    const property = fc.property(
      fc.constantFrom<Role>("server", "client"),
      fc.constantFrom(1_048_576, 70_000, 200, 125, 0),
      fc.record({ rsv1: fc.boolean(), rsv2: fc.boolean(), rsv3: fc.boolean() }),
      fc.array(rawFrameArb, { minLength: 1, maxLength: 3 }),
      fc.nat(4),
      fc.nat(),
      (role, maxFrameSize, allowedRsv, frames, cut, chunkSeed) => {
        const wire = concat(frames.map(rawWire));
        const bytes = wire.subarray(0, Math.max(0, wire.length - cut));
        const options = { role, maxFrameSize, allowedRsv };
        const context = `chunk seed ${chunkSeed}`;
        const whole = decodeOutcome([bytes.slice()], options, context);
        assertAsReference(whole, bytes, options, context);
        const chunks = split(bytes, seeded(chunkSeed), bytes.length > 2000 ? 1500 : 7);
        assertSameOutcome(decodeOutcome(chunks, options, context), whole, `${context}, chunked`);
      },
    );
    fc.assert(property, { numRuns: fuzzRuns(1000), seed: FC_SEED });
  });
});

Deno.test("FrameDecoder on bad input", async (t) => {
  await t.step("ends mutated valid input as the RFC 6455 reference does, for any chunking", () => {
    const runs = fuzzRuns(1500);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const sender: Role = random() < 0.5 ? "server" : "client";
      const bytes = mutate(random, validWire(random, sender));
      const options = randomOptions(random, peerOf(sender));
      const context = `seed ${seed}`;
      const whole = decodeOutcome([bytes.slice()], options, `${context}, one chunk`);
      assertAsReference(whole, bytes, options, context);
      const max = [1, 5, 64, 5000][between(random, 0, 3)]!;
      const chunks = split(bytes, random, bytes.length > 2000 ? Math.max(max, 64) : max);
      const pieces = decodeOutcome(chunks, options, `${context}, chunked`);
      // The outcome may not depend on the chunking: the same frames, then the same error.
      assertSameOutcome(pieces, whole, `${context}: chunking changed the outcome`);
    }
  });

  await t.step("ends random bytes as the RFC 6455 reference does", () => {
    const runs = fuzzRuns(1500);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const bytes = randomBytes(random, between(random, 0, 64));
      const options = randomOptions(random, random() < 0.5 ? "server" : "client");
      const context = `seed ${seed}`;
      const whole = decodeOutcome([bytes.slice()], options, context);
      assertAsReference(whole, bytes, options, context);
      const pieces = decodeOutcome(split(bytes, random, 3), options, `${context}, chunked`);
      assertSameOutcome(pieces, whole, `${context}: chunking changed the outcome`);
    }
  });
});

Deno.test("FrameDecoderStream on bad input", async (t) => {
  await t.step("ends mutated valid input in frames or the decoder's typed error", async () => {
    const runs = Math.max(1, Math.ceil(fuzzRuns(1500) / 10));
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const sender: Role = random() < 0.5 ? "server" : "client";
      const bytes = mutate(random, validWire(random, sender));
      const options = randomOptions(random, peerOf(sender));
      const context = `seed ${seed}`;
      const want = decodeOutcome([bytes.slice()], options, context);
      const frames: ReturnType<typeof plain>[] = [];
      let closeCode: number | null = null;
      try {
        const stream = ReadableStream.from(split(bytes, random, 64))
          .pipeThrough(new FrameDecoderStream(options));
        for await (const frame of stream) frames.push(plain(frame));
      } catch (error) {
        assertExpectedError(error, context);
        closeCode = (error as WebSocketError).closeCode;
      }
      // The same error, after the same frames: none decoded before the error is lost.
      assert.equal(closeCode, want.closeCode, `${context}: the stream's error differs`);
      assert.deepEqual(frames, want.frames, context);
    }
  });
});
