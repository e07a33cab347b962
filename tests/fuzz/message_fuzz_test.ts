// Copyright 2026 the wirestream authors. MIT license.
// Properties of MessageDecoder with fast-check. WIRESTREAM_FUZZ_RUNS sets the number of runs
// per property and WIRESTREAM_FUZZ_SEED the seed (fixed by default, so runs repeat); a failure
// reports the seed and the shrunk counterexample.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeMessage,
  Frame,
  type Message,
  MessageDecoder,
  Opcode,
  WebSocketError,
} from "@wirestream/wirestream";
import { fuzzRuns, randomBytes, seeded } from "../_util/random.ts";

const SEED = Number(Deno.env.get("WIRESTREAM_FUZZ_SEED") ?? 6455);

// Code points spread over the four UTF-8 widths, astral ones included, no lone surrogates.
const codePoint = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }),
  fc.integer({ min: 0x80, max: 0x7ff }),
  fc.integer({ min: 0x800, max: 0xd7ff }),
  fc.integer({ min: 0xe000, max: 0xffff }),
  fc.integer({ min: 0x10000, max: 0x10ffff }),
).map((cp) => String.fromCodePoint(cp));

// Texts of up to ~20000 UTF-8 bytes (5000 UTF-16 units of up to 4 bytes per 2 units), mostly
// short, sometimes long.
const text = fc.oneof(
  { arbitrary: fc.string({ unit: codePoint, maxLength: 64 }), weight: 3 },
  { arbitrary: fc.string({ unit: codePoint, maxLength: 5000, size: "max" }), weight: 1 },
);

// Binary messages of 0..20000 bytes; long ones from a seed, which is much faster to generate.
const binary = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 3 },
  {
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer())
      .map(([length, seed]) => randomBytes(seeded(seed), length)),
    weight: 1,
  },
);

const maxFrameSize = fc.oneof(
  fc.integer({ min: 1, max: 16 }),
  fc.integer({ min: 1, max: 25_000 }),
  fc.constant(Infinity),
);

// A ping or pong, and where it goes among the frames of its message (modulo their count + 1).
const control = fc.record({
  ping: fc.boolean(),
  payload: fc.uint8Array({ maxLength: 125 }),
  at: fc.nat(),
});

const conversation = fc.array(
  fc.record({
    message: fc.oneof(text, binary) as fc.Arbitrary<Message>,
    maxFrameSize,
    controls: fc.array(control, { maxLength: 6 }),
  }),
  { minLength: 1, maxLength: 4 },
);

// Bytes for the UTF-8 verdict: random, dense in the bytes that matter to UTF-8, and valid
// text with a few bytes changed, dropped or added.
const edgeByte = fc.constantFrom(
  0x00,
  0x41,
  0x7f,
  0x80,
  0x8f,
  0x90,
  0x9f,
  0xa0,
  0xbf,
  0xc0,
  0xc1,
  0xc2,
  0xdf,
  0xe0,
  0xe1,
  0xed,
  0xee,
  0xef,
  0xf0,
  0xf1,
  0xf4,
  0xf5,
  0xf8,
  0xfe,
  0xff,
  0xbb,
);
const mutation = fc.record({
  kind: fc.constantFrom("set", "drop", "add"),
  at: fc.nat(),
  byte: fc.oneof(edgeByte, fc.integer({ min: 0, max: 255 })),
});
const utf8 = new TextEncoder();
const textBytes = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.array(edgeByte, { maxLength: 14 }).map((bytes) => Uint8Array.from(bytes)),
  fc.string({ unit: codePoint, maxLength: 8 }).map((s) => utf8.encode(s)),
  fc.tuple(fc.string({ unit: codePoint, maxLength: 8 }), fc.array(mutation, { maxLength: 3 }))
    .map(([s, mutations]) => {
      const bytes = [...utf8.encode(s)];
      for (const { kind, at, byte } of mutations) {
        const i = at % (bytes.length + 1);
        if (kind === "add") bytes.splice(i, 0, byte);
        else if (i < bytes.length) kind === "set" ? bytes[i] = byte : bytes.splice(i, 1);
      }
      return Uint8Array.from(bytes);
    }),
);

/** The frames of a fragmented text message cut at `cuts` (ascending offsets, repeats allowed). */
function textFragments(bytes: Uint8Array, cuts: readonly number[]): Frame[] {
  const bounds = [0, ...cuts, bytes.length];
  return bounds.slice(1).map((end, i) =>
    new Frame(
      i === 0 ? Opcode.Text : Opcode.Continuation,
      bytes.subarray(bounds[i]!, end),
      i === bounds.length - 2,
    )
  );
}

/** Every way to cut `n` bytes into non-empty fragments: each subset of the n - 1 inner cuts. */
function* everyCut(n: number): Generator<number[]> {
  if (n === 0) {
    yield [];
    return;
  }
  for (let mask = 0; mask < 1 << (n - 1); mask++) {
    const cuts: number[] = [];
    for (let i = 1; i < n; i++) if (mask & (1 << (i - 1))) cuts.push(i);
    yield cuts;
  }
}

/** Pushes the fragments; gives the text, or the index of the fragment that threw and its error. */
function decodeFragments(
  frames: readonly Frame[],
): { text: string } | { failedAt: number; error: unknown } {
  const decoder = new MessageDecoder({ maxMessageSize: Infinity });
  let text: string | undefined;
  for (let i = 0; i < frames.length; i++) {
    try {
      decoder.push(frames[i]!, { enqueue: (item) => text = item as string });
    } catch (error) {
      return { failedAt: i, error };
    }
  }
  assert.equal(typeof text, "string", "no message after the final fragment");
  return { text: text! };
}

// The reference of the task, and the same with the BOM kept: a WebSocket text message is the
// whole payload (RFC 6455 §5.6), and MessageDecoder keeps a leading U+FEFF (ignoreBOM: true).
const reference = new TextDecoder("utf-8", { fatal: true });
const referenceKeepingBom = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The length of the shortest prefix that no valid UTF-8 text starts with, or -1. */
function invalidPrefix(bytes: Uint8Array): number {
  for (let k = 1; k <= bytes.length; k++) {
    try {
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, k), {
        stream: true,
      });
    } catch {
      return k;
    }
  }
  return -1;
}

Deno.test("MessageDecoder (fuzz)", async (t) => {
  const runs = fuzzRuns(150);

  await t.step(
    `gives back the messages encodeMessage split, with pings and pongs in order (seed ${SEED})`,
    () => {
      fc.assert(
        fc.property(conversation, (parts) => {
          const wire: Frame[] = [];
          const want: (Message | Frame)[] = [];
          for (const { message, maxFrameSize, controls } of parts) {
            const frames: Frame[] = [];
            encodeMessage(message, { enqueue: (frame) => frames.push(frame) }, { maxFrameSize });
            const slots: Frame[][] = Array.from({ length: frames.length + 1 }, () => []);
            for (const { ping, payload, at } of controls) {
              slots[at % slots.length]!.push(ping ? Frame.ping(payload) : Frame.pong(payload));
            }
            for (let i = 0; i <= frames.length; i++) {
              for (const frame of slots[i]!) {
                wire.push(frame);
                want.push(frame);
              }
              const frame = frames[i];
              if (frame === undefined) continue;
              wire.push(frame);
              if (frame.fin) want.push(message);
            }
          }
          const out: (Message | Frame)[] = [];
          const decoder = new MessageDecoder();
          for (const frame of wire) decoder.push(frame, { enqueue: (item) => out.push(item) });
          decoder.end();
          assert.equal(out.length, want.length);
          for (let i = 0; i < want.length; i++) {
            const expected = want[i];
            if (expected instanceof Frame) assert.equal(out[i], expected, `item ${i}`);
            else assert.deepEqual(out[i], expected, `item ${i}`);
          }
        }),
        { seed: SEED, numRuns: runs },
      );
    },
  );

  await t.step(
    `judges fragmented text like a fatal TextDecoder, failing at the first bad fragment (seed ${SEED})`,
    () => {
      fc.assert(
        fc.property(textBytes, fc.array(fc.nat(), { maxLength: 6 }), (bytes, extraCuts) => {
          let valid = true;
          try {
            reference.decode(bytes);
          } catch {
            valid = false;
          }
          let want: string | null = null;
          try {
            want = referenceKeepingBom.decode(bytes);
          } catch {
            // invalid
          }
          assert.equal(want !== null, valid, "the BOM changed the verdict");
          // The fragment that must throw: the first one to hold the byte that ends the shortest
          // invalid prefix, else (a sequence cut short at the end) the final one.
          const bad = invalidPrefix(bytes);
          const splits = [
            ...(bytes.length <= 8 ? everyCut(bytes.length) : []),
            ...Array.from({ length: bytes.length + 1 }, (_, i) => [i]), // every single cut
            Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1), // bytewise
            extraCuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), // empty ones too
          ];
          for (const cuts of splits) {
            const result = decodeFragments(textFragments(bytes, cuts));
            const where = `cuts [${cuts}]`;
            if (want !== null) {
              assert.deepEqual(result, { text: want }, where);
              continue;
            }
            assert("failedAt" in result, `${where}: accepted invalid UTF-8`);
            assert(result.error instanceof WebSocketError, where);
            assert.equal(result.error.closeCode, 1007, where);
            const bounds = [...cuts, bytes.length];
            const expected = bad === -1 ? cuts.length : bounds.findIndex((end) => end >= bad);
            assert.equal(result.failedAt, expected, `${where}: failed at the wrong fragment`);
          }
        }),
        { seed: SEED, numRuns: runs * 2 },
      );
    },
  );
});
