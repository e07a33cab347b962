// Copyright 2026 the wirestream authors. MIT license.
// Property and fuzz tests of the chunked coding and the request-head parser.
// WIRESTREAM_FUZZ_RUNS sets the number of runs of each part (small by default, 10⁶ before a
// release); WIRESTREAM_FUZZ_SEED replays fast-check.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BufferedReader,
  ChunkedDecoder,
  type ChunkedDecoderOptions,
  ChunkedDecoderStream,
  ChunkedEncoderStream,
  findHeadEnd,
  type HeadLimits,
  HttpError,
  parseRequestHead,
  readRequestHead,
  type RequestHead,
} from "@wirestream/wirestream";
import {
  between,
  concat,
  FC_SEED,
  fuzzRuns,
  randomBytes,
  SEED_BASE,
  seeded,
  split,
} from "../_util/random.ts";

/** Bytes of a string of code points 0–255, one byte each. */
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** The bytes as a string of code points 0–255. */
function latin1(data: Uint8Array): string {
  return String.fromCharCode(...data);
}

/** Asserts `error` is an HttpError with one of `statuses`; returns its status. */
function expectedStatus(error: unknown, statuses: readonly number[], context: string): number {
  if (!(error instanceof HttpError)) {
    assert.fail(`${context}: threw ${error instanceof Error ? error.stack : String(error)}`);
  }
  assert(statuses.includes(error.status), `${context}: status ${error.status} (${error.message})`);
  return error.status;
}

const CHUNKED_STATUSES = [400, 413, 431];
const HEAD_STATUSES = [400, 414, 431, 505];

// ---------------------------------------------------------------------------------------------
// The chunked coding.

/** What decoding a chunked body gave. */
interface ChunkedOutcome {
  data: Uint8Array;
  /** Bytes consumed over all chunks; -1 when it failed (then it depends on the chunking). */
  consumed: number;
  done: boolean;
  trailers: [string, string][];
  /** The status of the HttpError that ended it, or null. */
  status: number | null;
}

/**
 * Decodes `chunks` with `push` (or in place with `compact`), then checks the end. Any error
 * other than an HttpError with 400, 413 or 431 fails the test, and so does a sink that
 * receives more data than the input holds.
 */
function decodeChunks(
  chunks: readonly Uint8Array[],
  options: ChunkedDecoderOptions,
  mode: "push" | "compact",
  context: string,
): ChunkedOutcome {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const decoder = new ChunkedDecoder(options);
  const parts: Uint8Array[] = [];
  let received = 0, consumed = 0;
  const sink = {
    enqueue(data: Uint8Array) {
      parts.push(data.slice());
      if ((received += data.length) > total) assert.fail(`${context}: more data than input`);
    },
  };
  try {
    for (const chunk of chunks) {
      if (mode === "push") consumed += decoder.push(chunk, sink);
      else {
        const copy = chunk.slice();
        const result = decoder.compact(copy, 0, copy.length);
        assert(result.data <= result.consumed, `${context}: more data than consumed`);
        sink.enqueue(copy.subarray(0, result.data));
        consumed += result.consumed;
      }
    }
    decoder.end();
  } catch (error) {
    const status = expectedStatus(error, CHUNKED_STATUSES, context);
    return { data: concat(parts), consumed: -1, done: decoder.done, trailers: [], status };
  }
  return {
    data: concat(parts),
    consumed,
    done: decoder.done,
    trailers: [...decoder.trailers],
    status: null,
  };
}

/** Runs `chunks` through a ChunkedEncoderStream. */
async function encodeChunks(
  chunks: readonly Uint8Array[],
  trailers: [string, string][] | undefined,
  asFunction: boolean,
): Promise<Uint8Array> {
  const options = trailers === undefined
    ? {}
    : { trailers: asFunction ? () => Promise.resolve(trailers) : trailers };
  const coded = ReadableStream.from(chunks).pipeThrough(new ChunkedEncoderStream(options));
  return concat(await Array.fromAsync(coded));
}

// Trailer fields: token names and values with no OWS at either end. Values stay ASCII: the
// encoder writes obs-text as UTF-8 (see "writes obs-text in trailer values as single bytes"
// in tests/http/chunked_test.ts).
const tokenArb = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const valueArb = fc.stringMatching(/^([\x21-\x7e]([\x21-\x7e \t]{0,20}[\x21-\x7e])?)?$/);
const chunkSpecArb = fc.record({
  length: fc.oneof(
    fc.constantFrom(0, 1, 15, 16, 255, 256, 4096),
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: 0, max: 20_000 }),
  ),
  byteSeed: fc.nat(),
});
/** What follows a body on a connection, which the decoder must leave alone. */
const TAIL = bytes("GET /next HTTP/1.1\r\n\r\n");

Deno.test("ChunkedEncoderStream and ChunkedDecoder", async (t) => {
  await t.step("decode(encode(chunks)) is the identity, for any chunking, push or compact", () => {
    const property = fc.asyncProperty(
      fc.array(chunkSpecArb, { maxLength: 6 }),
      fc.option(fc.array(fc.tuple(tokenArb, valueArb), { maxLength: 4 }), { nil: undefined }),
      fc.boolean(),
      fc.nat(),
      fc.constantFrom(1, 7, 64, 1500, 100_000),
      async (specs, trailers, asFunction, chunkSeed, maxChunk) => {
        const chunks = specs.map((s) => randomBytes(seeded(s.byteSeed), s.length));
        const wire = await encodeChunks(chunks, trailers, asFunction);
        const all = concat([wire, TAIL]);
        // One-byte chunks for small inputs only, to keep the default run quick.
        const max = all.length > 5000 ? Math.max(maxChunk, 64) : maxChunk;
        const context = `chunk seed ${chunkSeed}, max chunk ${max}`;
        const want: ChunkedOutcome = {
          data: concat(chunks),
          consumed: wire.length,
          done: true,
          // Headers joins repeats with ", ", so ["x", "a"], ["x", ""] is "a, ": on the wire the
          // last space is OWS, which the decoder drops.
          trailers: [...new Headers(trailers ?? [])].map(([n, v]) => [n, v.replace(/[ \t]+$/, "")]),
          status: null,
        };
        for (const mode of ["push", "compact"] as const) {
          const got = decodeChunks(split(all, seeded(chunkSeed), max), {}, mode, context);
          assert.deepEqual(got, want, `${context}, ${mode}`);
        }
      },
    );
    return fc.assert(property, { numRuns: fuzzRuns(200), seed: FC_SEED });
  });
});

const EXTENSIONS = ["", "", ";a", ";a=b", ' ; q="x;\\"y"', ";n=\xe9", "\t;t"];

/**
 * A valid chunked body: random sizes in either case, leading zeros, extensions, trailers.
 * `small` keeps chunks to a few bytes, so that mutations fall mostly on the framing.
 */
function validChunked(random: () => number, small = false): Uint8Array {
  const parts: Uint8Array[] = [];
  const sizeLine = (size: number) => {
    let hex = size.toString(16);
    hex = random() < 0.5 ? hex : hex.toUpperCase();
    if (random() < 0.2) hex = "0".repeat(between(random, 1, 16 - hex.length)) + hex;
    return bytes(`${hex}${EXTENSIONS[between(random, 0, EXTENSIONS.length - 1)]}\r\n`);
  };
  for (let n = between(random, 0, 4); n > 0; n--) {
    const size = small
      ? between(random, 1, 6)
      : random() < 0.1
      ? between(random, 1, 5000)
      : between(random, 1, 300);
    parts.push(sizeLine(size), randomBytes(random, size), bytes("\r\n"));
  }
  parts.push(sizeLine(0));
  for (let n = between(random, 0, 3); n > 0; n--) {
    parts.push(bytes(`X-T${n}: ${"v".repeat(between(random, 0, 12))}\r\n`));
  }
  parts.push(bytes("\r\n"));
  return concat(parts);
}

/** Interesting bytes for a text protocol: line ends, separators, controls, obs-text. */
const SPECIAL = bytes('\r\n\r\n ;:="\\\t\0\x7f\x80\xa0\xffaF09gG');

/** Flips bits, overwrites, inserts and deletes a few bytes, or repeats a stretch. */
function mutate(random: () => number, input: Uint8Array): Uint8Array {
  let out: Uint8Array = input.slice();
  const pick = () =>
    random() < 0.6 ? SPECIAL[between(random, 0, SPECIAL.length - 1)]! : between(random, 0, 255);
  for (let n = between(random, 1, 4); n > 0; n--) {
    const at = between(random, 0, Math.max(out.length - 1, 0));
    const kind = between(random, 0, 4);
    if (kind === 0 && out.length > 0) {
      out[at]! ^= 1 << between(random, 0, 7); // flip one bit
    } else if (kind === 1 && out.length > 0) {
      out[at] = pick(); // overwrite one byte
    } else if (kind === 2) {
      const extra = Uint8Array.from({ length: between(random, 1, 3) }, pick); // insert
      out = concat([out.subarray(0, at), extra, out.subarray(at)]);
    } else if (kind === 3) {
      const cut = between(random, 1, 3); // delete
      out = concat([out.subarray(0, at), out.subarray(at + cut)]);
    } else {
      const stretch = out.subarray(at, at + between(random, 1, 40)); // repeat a stretch
      out = concat([out.subarray(0, at), stretch, stretch, out.subarray(at)]);
    }
  }
  return out;
}

/** Random limits, some of which a body exceeds. */
function chunkedOptions(random: () => number): ChunkedDecoderOptions {
  return {
    maxSize: [Infinity, 100_000, 300, 0][between(random, 0, 3)]!,
    maxExtensionSize: [4096, 4, 0][between(random, 0, 2)]!,
    maxTrailerSize: [16_384, 12, 0][between(random, 0, 2)]!,
    maxTrailers: [32, 2, 0][between(random, 0, 2)]!,
  };
}

/** What the reference gives for a well-formed body. */
interface ReferenceOutcome {
  data: string;
  trailers: [string, string][];
  consumed: number;
}

// A size line: leading zeros, then at most 16 hex digits, then the CRLF, or BWS, ";" and an
// extension of field value bytes (the decoder's reading of RFC 9112 §7.1.1: BWS only before
// ";"). A size past 2^53 - 1 is refused below, after parsing; the decoder refuses it as its
// digits arrive.
const SIZE_LINE = /0*([0-9A-Fa-f]{1,16})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r\n/y;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;

/**
 * The reference: RFC 9112 §7.1 read with regular expressions over the whole text, written
 * apart from the decoder's state machine. The data, the trailers (as Headers gives them) and
 * the bytes up to the final CRLF; null for a malformed or truncated body. No limits.
 */
function referenceChunked(input: Uint8Array): ReferenceOutcome | null {
  const text = String.fromCharCode(...input);
  let at = 0, data = "";
  while (true) {
    SIZE_LINE.lastIndex = at;
    const m = SIZE_LINE.exec(text);
    if (m === null) return null;
    const size = parseInt(m[1]!, 16);
    if (size > Number.MAX_SAFE_INTEGER) return null;
    at = SIZE_LINE.lastIndex;
    if (size === 0) break;
    if (text.slice(at + size, at + size + 2) !== "\r\n") return null;
    data += text.slice(at, at + size);
    at += size + 2;
  }
  const trailers = new Headers();
  while (!text.startsWith("\r\n", at)) {
    const end = text.indexOf("\r\n", at);
    if (end === -1) return null;
    const field = FIELD_LINE.exec(text.slice(at, end));
    if (field === null) return null;
    trailers.append(field[1]!, field[2]!);
    at = end + 2;
  }
  return { data, trailers: [...trailers], consumed: at + 2 };
}

const NO_LIMITS: ChunkedDecoderOptions = {
  maxExtensionSize: Infinity,
  maxTrailerSize: Infinity,
  maxTrailers: Infinity,
};

Deno.test("ChunkedDecoder on bad input", async (t) => {
  await t.step("judges mutated valid bodies as a reference reading of the grammar does", () => {
    // The other steps check that the decoder ends well; this one, that it ends right: no
    // malformed body taken, no valid one refused, and the same data, trailers and end.
    const runs = fuzzRuns(1500);
    let accepted = 0;
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const input = concat([mutate(random, validChunked(random, true)), TAIL]);
      const context = `seed ${seed}`;
      const got = decodeChunks([input], NO_LIMITS, "push", context);
      const want = referenceChunked(input);
      if (want === null) {
        assert.equal(got.status, 400, `${context}: a malformed body was taken`);
        continue;
      }
      accepted++;
      assert.deepEqual(
        { data: latin1(got.data), trailers: got.trailers, consumed: got.consumed },
        want,
        `${context}: ${got.status === null ? "not as the reference" : `refused: ${got.status}`}`,
      );
    }
    // Mutations break most bodies; enough must stay valid for the comparison to mean much.
    assert.ok(accepted >= runs / 10, `only ${accepted} of ${runs} mutated bodies were valid`);
  });

  await t.step("ends mutated valid bodies in data or a 400/413/431, for any chunking", () => {
    const runs = fuzzRuns(1500);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const input = concat([mutate(random, validChunked(random)), TAIL]);
      const options = chunkedOptions(random);
      const context = `seed ${seed}`;
      const whole = decodeChunks([input], options, "push", `${context}, one chunk`);
      const max = [1, 5, 64, 5000][between(random, 0, 3)]!;
      const chunks = split(input, random, input.length > 3000 ? Math.max(max, 64) : max);
      const pieces = decodeChunks(chunks, options, "push", `${context}, chunked`);
      // The outcome may not depend on the chunking: the same data, then the same end.
      assert.deepEqual(pieces, whole, `${context}: chunking changed the outcome`);
      const compacted = decodeChunks(chunks, options, "compact", `${context}, compact`);
      // compact returns the data before an error first and throws on the next call or at
      // the end: the same data, then the same error.
      assert.deepEqual(compacted, whole, `${context}: compact`);
      if (whole.status === null) {
        assert(whole.data.length <= (options.maxSize ?? Infinity), `${context}: over maxSize`);
      }
    }
  });

  await t.step("ends random bytes in data or a 400/413/431", () => {
    const runs = fuzzRuns(1500);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const input = randomBytes(random, between(random, 0, 64));
      const options = chunkedOptions(random);
      const context = `seed ${seed}`;
      const whole = decodeChunks([input], options, "push", context);
      const pieces = decodeChunks(split(input, random, 3), options, "push", `${context}, chunked`);
      assert.deepEqual(pieces, whole, `${context}: chunking changed the outcome`);
    }
  });
});

Deno.test("ChunkedDecoderStream on bad input", async (t) => {
  await t.step("ends mutated valid bodies in data or the decoder's typed error", async () => {
    const runs = Math.max(1, Math.ceil(fuzzRuns(1500) / 10));
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const input = mutate(random, validChunked(random));
      const options = chunkedOptions(random);
      const context = `seed ${seed}`;
      const want = decodeChunks([input], options, "push", context);
      // The stream also refuses bytes after the end with a 400.
      const wantStatus = want.status ?? (want.consumed < input.length ? 400 : null);
      const stream = new ChunkedDecoderStream(options);
      const parts: Uint8Array[] = [];
      let status: number | null = null;
      try {
        const body = ReadableStream.from(split(input, random, 64)).pipeThrough(stream);
        for await (const data of body) parts.push(data.slice());
      } catch (error) {
        status = expectedStatus(error, CHUNKED_STATUSES, context);
      }
      assert.equal(status, wantStatus, `${context}: the stream's error differs`);
      // Every byte decoded before an error is read before it.
      assert.deepEqual(concat(parts), want.data, context);
      if (status === null) {
        assert.deepEqual([...await stream.trailers], want.trailers, context);
      } else {
        await assert.rejects(stream.trailers, HttpError, context);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Request heads.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A valid request head (text) and what parsing it gives (null for a 505). */
function validHead(random: () => number): { text: string; head: RequestHead | null } {
  const choose = <T>(items: readonly T[]): T => items[between(random, 0, items.length - 1)]!;
  const [method, target] = choose([
    () => [choose(["GET", "POST", "PUT", "M-SEARCH", "x!~"]), choose(["/", "/a?b", "//p/q"])],
    () => ["GET", `http://h${choose(["", ":8080"])}/p`], // absolute form
    () => ["CONNECT", "h:443"], // authority form
    () => ["OPTIONS", "*"], // asterisk form
  ])();
  const version = choose(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]);
  let text = "\r\n".repeat(random() < 0.2 ? between(random, 1, 2) : 0); // skipped empty lines
  text += `${method} ${target} ${version}\r\n`;
  const fields: [string, string][] = [];
  for (let n = between(random, 0, 6); n > 0; n--) {
    const name = choose(["Host", "Content-Length", "X-Custom_1", "accept", "A"]);
    const value = choose(["h", "", "a, b", "caf\xe9", "\x80\xff", '"q"', "1 \t 2"]);
    const [before, after] = [choose(["", " ", "\t "]), choose(["", " ", "\t"])]; // OWS
    text += `${name}:${before}${value}${after}\r\n`;
    fields.push([name.toLowerCase(), value]);
  }
  text += "\r\n";
  const head = version === "HTTP/2.0"
    ? null
    : { method: method!, target: target!, version: version as RequestHead["version"], fields };
  return { text, head };
}

/** Random limits, some of which a head exceeds. */
function headLimits(random: () => number): HeadLimits {
  return {
    maxRequestLineSize: random() < 0.7 ? 8192 : [24, 14][between(random, 0, 1)]!,
    maxHeadSize: random() < 0.7 ? 16_384 : [120, 40][between(random, 0, 1)]!,
    maxHeaders: random() < 0.7 ? 100 : [3, 0][between(random, 0, 1)]!,
  };
}

/** What reading a request head gave. */
type HeadOutcome =
  | { kind: "head"; head: RequestHead }
  | { kind: "error"; status: number }
  | { kind: "incomplete" } // the input ended inside a head
  | { kind: "none" }; // the input held no byte of a head

/** Finds and parses a head in the whole input at once, skipping empty lines first. */
function parseWhole(input: Uint8Array, limits: HeadLimits, context: string): HeadOutcome {
  let start = 0;
  while (input[start] === 13 && input[start + 1] === 10) start += 2;
  try {
    const end = findHeadEnd(input, start, start, input.length, limits);
    if (end === -1) return start === input.length ? { kind: "none" } : { kind: "incomplete" };
    const head = parseRequestHead(input, start, end, limits);
    checkHead(head, input, start, end, limits, context);
    return { kind: "head", head };
  } catch (error) {
    return { kind: "error", status: expectedStatus(error, HEAD_STATUSES, context) };
  }
}

/** Asserts what any accepted head must satisfy. */
function checkHead(
  head: RequestHead,
  input: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
  context: string,
): void {
  assert.match(head.method, TOKEN, context);
  assert.match(head.target, /^[\x21\x22\x24-\x5b\x5d-\x7e]+$/, context); // no "#" nor backslash
  assert(head.version === "HTTP/1.0" || head.version === "HTTP/1.1", context);
  assert(head.fields.length <= (limits.maxHeaders ?? 100), `${context}: too many fields`);
  assert(end - start <= (limits.maxHeadSize ?? 16_384), `${context}: head too large`);
  const lineEnd = input.indexOf(13, start);
  assert(lineEnd - start <= (limits.maxRequestLineSize ?? 8192), `${context}: line too long`);
  for (const [name, value] of head.fields) {
    assert.match(name, TOKEN, context);
    assert.equal(name, name.toLowerCase(), context);
    // deno-lint-ignore no-control-regex -- the point
    assert.doesNotMatch(value, /[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$/, context);
  }
}

/** Reads a head from `chunks` with readRequestHead over a plain or a byte stream. */
async function readChunks(
  chunks: Uint8Array[],
  limits: HeadLimits,
  byteStream: boolean,
  context: string,
): Promise<HeadOutcome> {
  const readable = byteStream
    ? new ReadableStream({
      type: "bytes",
      pull(controller) {
        let next = chunks.shift();
        while (next?.length === 0) next = chunks.shift(); // a byte stream takes no empty chunk
        if (next === undefined) {
          controller.close();
          controller.byobRequest?.respond(0);
        } else controller.enqueue(next);
      },
    })
    : ReadableStream.from(chunks);
  const reader = new BufferedReader(readable);
  try {
    const head = await readRequestHead(reader, limits);
    return head === null ? { kind: "none" } : { kind: "head", head };
  } catch (error) {
    return { kind: "error", status: expectedStatus(error, HEAD_STATUSES, context) };
  } finally {
    await reader.cancel();
  }
}

Deno.test("findHeadEnd, parseRequestHead and readRequestHead on bad input", async (t) => {
  await t.step("end mutated valid heads in a head or a 400/414/431/505", async () => {
    const runs = fuzzRuns(1500);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const input = mutate(random, bytes(validHead(random).text));
      const limits = headLimits(random);
      const context = `seed ${seed}`;
      const whole = parseWhole(input, limits, context);
      // readRequestHead reads it in pieces, scanning only new bytes: the same head, or an
      // error (its status may differ when the input breaks two rules), or the same end.
      const got = await readChunks(split(input, random, 9), limits, random() < 0.5, context);
      if (whole.kind === "incomplete") {
        assert.deepEqual(got, { kind: "error", status: 400 }, `${context}: ended inside`);
      } else if (whole.kind === "error") {
        assert.equal(got.kind, "error", `${context}: accepted by readRequestHead only`);
      } else assert.deepEqual(got, whole, `${context}: readRequestHead differs`);
    }
  });

  await t.step("read every valid head as it was sent, in any chunking", async () => {
    const runs = Math.max(1, Math.ceil(fuzzRuns(1500) / 5));
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const { text, head } = validHead(random);
      const context = `seed ${seed}: ${JSON.stringify(text)}`;
      const want: HeadOutcome = head === null
        ? { kind: "error", status: 505 }
        : { kind: "head", head };
      assert.deepEqual(parseWhole(bytes(text), {}, context), want, context);
      const got = await readChunks(split(bytes(text), random, 5), {}, random() < 0.5, context);
      assert.deepEqual(got, want, context);
    }
  });
});
