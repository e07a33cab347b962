// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  ChunkedDecoder,
  type ChunkedDecoderOptions,
  ChunkedDecoderStream,
  type ChunkedEncoderOptions,
  ChunkedEncoderStream,
  decodeChunked,
  HttpError,
} from "@wirestream/wirestream";
import { bytewise, concat, randomBytes, seeded, split, splitAt } from "../_util/random.ts";

/** Bytes of a string of code points 0–255, one byte each. */
function bytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** A string of code points 0–255 from bytes, one each. */
function latin1(data: Uint8Array): string {
  return String.fromCharCode(...data);
}

// Fixtures.

/** The classic example: three chunks, the last chunk, no trailers (RFC 9112 §7.1). */
const WIKI = bytes(
  "4\r\n" + // size 4
    "Wiki\r\n" + // data, CRLF
    "5\r\n" + // size 5
    "pedia\r\n" +
    "E\r\n" + // size 14, upper-case hex
    " in\r\n\r\nchunks.\r\n" + // data that holds CRLFs
    "0\r\n" + // the last chunk
    "\r\n", // no trailer fields, the final CRLF
);
const WIKI_DATA = "Wikipedia in\r\n\r\nchunks.";

/** Chunk extensions and trailer fields. */
const FULL = bytes(
  '5;name=value;q="a;b\\"c"\r\n' + // size 5; two extensions, one a quoted string with ; and \"
    "hello\r\n" +
    "a ; x\r\n" + // size 10, BWS, an extension without a value
    "0123456789\r\n" +
    "0;last\r\n" + // the last chunk, with an extension
    "Checksum: abc\r\n" + // a trailer field
    "X-Two:  a b \r\n" + // a trailer field with OWS around its value
    "\r\n", // the final CRLF
);
const FULL_DATA = "hello0123456789";
const FULL_TRAILERS: [string, string][] = [["checksum", "abc"], ["x-two", "a b"]];

/** Every byte a field value may hold (RFC 9110 §5.5), in order, between "a" and "z". */
const VALUE_BYTES = "a" + latin1(Uint8Array.from({ length: 0x7f - 0x20 }, (_, k) => 0x20 + k)) +
  "\t" + latin1(Uint8Array.from({ length: 0x80 }, (_, k) => 0x80 + k)) + "z";
const LONG_VALUE = "L".repeat(300);

/** A trailer section of several fields that crosses the decoder's first 256-byte buffer. */
const TRAILERS = bytes(
  "3\r\nabc\r\n" + // one chunk
    "0\r\n" + // the last chunk
    `X-All: ${VALUE_BYTES}\r\n` + // 232 bytes of value
    `X-Long: ${LONG_VALUE}\r\n` + // a line longer than the first buffer
    "A:\r\n" + // an empty value: the shortest field line
    "x-all: 2\r\n" + // repeated, in another case: combined
    "\r\n", // the final CRLF
);
const TRAILERS_TRAILERS: [string, string][] = [
  ["a", ""],
  ["x-all", `${VALUE_BYTES}, 2`],
  ["x-long", LONG_VALUE],
];

/** The shortest body: the last chunk alone. */
const EMPTY = bytes(
  "0\r\n" + // the last chunk
    "\r\n", // the final CRLF
);

/** What follows a body on a connection: the next request. */
const NEXT = bytes("GET /next HTTP/1.1\r\n\r\n");

const FIXTURES: [string, Uint8Array, string, [string, string][]][] = [
  ["WIKI", WIKI, WIKI_DATA, []],
  ["FULL", FULL, FULL_DATA, FULL_TRAILERS],
  ["EMPTY", EMPTY, "", []],
  ["TRAILERS", TRAILERS, "abc", TRAILERS_TRAILERS],
];

/** What decoding gave. */
interface Decoded {
  /** The data, as Latin-1 text. */
  data: string;
  /** The bytes consumed, over all chunks. */
  consumed: number;
  done: boolean;
  trailers: [string, string][];
  /** The status of the HttpError that ended it, or null. */
  status: number | null;
}

/** Rethrows anything that is not an HttpError; returns its status. */
function statusOf(error: unknown): number {
  if (!(error instanceof HttpError)) throw error;
  return error.status;
}

/** Decodes `chunks` with `push`, then checks the end. */
function decodePush(chunks: readonly Uint8Array[], options: ChunkedDecoderOptions = {}): Decoded {
  const decoder = new ChunkedDecoder(options);
  const parts: Uint8Array[] = [];
  let consumed = 0, status: number | null = null;
  try {
    for (const chunk of chunks) {
      const used = decoder.push(chunk, { enqueue: (d) => void parts.push(d.slice()) });
      assert(used >= 0 && used <= chunk.length, `consumed ${used} of ${chunk.length}`);
      if (used < chunk.length) assert.equal(decoder.done, true, "stopped short of the end");
      consumed += used;
    }
    decoder.end();
  } catch (error) {
    status = statusOf(error);
  }
  return {
    data: latin1(concat(parts)),
    consumed,
    done: decoder.done,
    trailers: [...decoder.trailers],
    status,
  };
}

/** Decodes copies of `chunks` in place with `compact`. */
function decodeCompact(
  chunks: readonly Uint8Array[],
  options: ChunkedDecoderOptions = {},
): Decoded {
  const decoder = new ChunkedDecoder(options);
  const parts: Uint8Array[] = [];
  let consumed = 0, status: number | null = null;
  try {
    for (const chunk of chunks) {
      const copy = chunk.slice();
      const result = decoder.compact(copy, 0, copy.length);
      parts.push(copy.subarray(0, result.data));
      consumed += result.consumed;
    }
    decoder.end();
  } catch (error) {
    status = statusOf(error);
  }
  return {
    data: latin1(concat(parts)),
    consumed,
    done: decoder.done,
    trailers: [...decoder.trailers],
    status,
  };
}

/** Asserts that `fn` throws an HttpError with `status`. */
function throwsStatus(fn: () => unknown, status: number, message = ""): void {
  assert.throws(
    fn,
    (error) => {
      assert(error instanceof HttpError, `${message}: ${String(error)}`);
      assert.equal(error.status, status, `${message}: ${error.message}`);
      return true;
    },
    `${message}: no ${status}`,
  );
}

/** A predicate for `assert.rejects`: an HttpError with `status`. */
function isStatus(status: number) {
  return (error: unknown) => {
    assert(error instanceof HttpError, String(error));
    assert.equal(error.status, status, error.message);
    return true;
  };
}

/** Pushes `text` to a fresh decoder in one chunk; throws what it throws. */
function push(text: string, options: ChunkedDecoderOptions = {}): Decoded {
  const decoded = decodePush([bytes(text)], options);
  if (decoded.status !== null) {
    throw new HttpError(decoded.status, `Decoding failed with ${decoded.status}`);
  }
  return decoded;
}

/** A whole body of one chunk of `n` bytes "x" with `sizeText` as its size. */
function oneChunk(sizeText: string, n: number): string {
  return `${sizeText}\r\n${"x".repeat(n)}\r\n0\r\n\r\n`;
}

Deno.test("ChunkedDecoder", async (t) => {
  await t.step("decodes chunks into their data", () => {
    assert.deepEqual(decodePush([WIKI]), {
      data: WIKI_DATA,
      consumed: WIKI.length,
      done: true,
      trailers: [],
      status: null,
    });
  });

  await t.step("skips chunk extensions and reads the trailer fields", () => {
    assert.deepEqual(decodePush([FULL]), {
      data: FULL_DATA,
      consumed: FULL.length,
      done: true,
      trailers: FULL_TRAILERS,
      status: null,
    });
  });

  await t.step("decodes the last chunk alone as no data", () => {
    assert.deepEqual(decodePush([EMPTY]), {
      data: "",
      consumed: 5,
      done: true,
      trailers: [],
      status: null,
    });
  });

  await t.step("stops exactly after the final CRLF, leaving the bytes that follow", () => {
    for (const [name, wire] of FIXTURES) {
      const decoder = new ChunkedDecoder();
      const all = concat([wire, NEXT]);
      assert.equal(decoder.push(all, { enqueue() {} }), wire.length, name);
      assert.equal(decoder.done, true);
      assert.equal(decoder.push(NEXT, { enqueue: () => assert.fail("data after the end") }), 0);
    }
  });

  await t.step("gives the same result split at every offset, and byte by byte", () => {
    for (const [name, wire, data, trailers] of FIXTURES) {
      const all = concat([wire, NEXT]);
      const want = { data, consumed: wire.length, done: true, trailers, status: null };
      for (let at = 0; at <= all.length; at++) {
        assert.deepEqual(decodePush(splitAt(all, at)), want, `${name} split at ${at}`);
      }
      assert.deepEqual(decodePush(bytewise(all)), want, `${name} byte by byte`);
    }
  });

  await t.step("gives the same result for random chunkings, empty chunks included", () => {
    for (const [name, wire, data, trailers] of FIXTURES) {
      const want = { data, consumed: wire.length, done: true, trailers, status: null };
      for (let seed = 1; seed <= 100; seed++) {
        const chunks = split(concat([wire, NEXT]), seeded(seed), 8);
        assert.deepEqual(decodePush(chunks), want, `${name} seed ${seed}`);
      }
    }
  });

  await t.step("is done only once the final CRLF is in", () => {
    for (const [name, wire] of FIXTURES) {
      const decoder = new ChunkedDecoder();
      for (let i = 0; i < wire.length; i++) {
        assert.equal(decoder.done, false, `${name} before byte ${i}`);
        decoder.push(wire.subarray(i, i + 1), { enqueue() {} });
      }
      assert.equal(decoder.done, true, name);
    }
  });

  await t.step("hands data out as views of the input, not copies", () => {
    const input = WIKI.slice();
    const views: Uint8Array[] = [];
    new ChunkedDecoder().push(input, { enqueue: (d) => void views.push(d) });
    assert.deepEqual(views.map((v) => v.byteOffset), [3, 12, 22]);
    for (const view of views) assert.equal(view.buffer, input.buffer);
    const offset = new Uint8Array(input.buffer, 1, input.length - 1); // a view at an offset
    const decoder = new ChunkedDecoder();
    decoder.push(bytes("4"), { enqueue() {} });
    const got: Uint8Array[] = [];
    decoder.push(offset, { enqueue: (d) => void got.push(d) });
    assert.equal(latin1(got[0]!), "Wiki");
    assert.equal(got[0]!.byteOffset, 3);
  });

  await t.step("counts the data bytes so far in size", () => {
    const decoder = new ChunkedDecoder();
    assert.equal(decoder.size, 0);
    decoder.push(bytes("4\r\nWi"), { enqueue() {} });
    assert.equal(decoder.size, 4, "a chunk counts once its size line is read");
    decoder.push(bytes("ki\r\n5\r\npedia\r\n0\r\n\r\n"), { enqueue() {} });
    assert.equal(decoder.size, 9);
  });

  await t.step("reads hex sizes in upper and lower case", () => {
    const cases: [string, number][] = [["a", 10], ["A", 10], ["fF", 255], ["1e", 30], ["1E", 30]];
    for (const [size, n] of cases) {
      assert.equal(push(oneChunk(size, n)).data, "x".repeat(n), size);
    }
  });

  await t.step("accepts leading zeros, as many as maxExtensionSize allows", () => {
    // RFC 9112 §7.1: chunk-size = 1*HEXDIG. llhttp and hyper read these as 1 and 5 too.
    assert.equal(push(oneChunk("0005", 5)).data, "xxxxx");
    assert.equal(push(oneChunk("000000000000000a", 10)).data, "x".repeat(10), "16 digits");
    assert.equal(push(oneChunk("00000000000000005", 5)).data, "xxxxx", "17 digits, value 5");
    assert.equal(push(oneChunk(`${"0".repeat(100)}1`, 1)).data, "x", "101 digits, value 1");
    assert.equal(push("0000000000000000\r\n\r\n").done, true, "a last chunk of 16 zeros");
    assert.equal(push("000000000000000000\r\n\r\n").done, true, "a last chunk of 18 zeros");
    // Zeros after the first are not free: they count toward maxExtensionSize.
    assert.equal(push(oneChunk(`${"0".repeat(9)}5`, 5), { maxExtensionSize: 8 }).data, "xxxxx");
    throwsStatus(() => push(oneChunk(`${"0".repeat(10)}5`, 5), { maxExtensionSize: 8 }), 400);
    throwsStatus(() => push("0".repeat(4098)), 400, "4097 extra zeros, no line end yet");
    // Only leading zeros count: those of the value itself are digits like any other.
    assert.equal(push(oneChunk("10", 16), { maxExtensionSize: 0 }).data, "x".repeat(16));
    assert.equal(push(oneChunk("1000", 4096), { maxExtensionSize: 0 }).data.length, 4096);
  });

  await t.step("rejects a size of 15 or more significant hex digits with 400", () => {
    throwsStatus(() => push("fffffffffffffffff\r\n"), 400, "17 digits");
    throwsStatus(() => push("00001000000000000000\r\n"), 400, "17 significant digits");
    // 16^14 = 2^56 already exceeds 2^53 - 1: the 15th digit is refused as it arrives, before
    // the line ends, whatever leading zeros came first.
    throwsStatus(() => push("100000000000000"), 400, "15 digits, no line end yet");
    throwsStatus(() => push("000100000000000000"), 400, "15 significant digits");
    assert.equal(push(oneChunk("00010", 16)).data, "x".repeat(16));
  });

  await t.step("accepts a chunk size of exactly 2^53 - 1 (its data may follow)", () => {
    const decoder = new ChunkedDecoder();
    const read = decoder.push(bytes("1fffffffffffff\r\nxyz"), { enqueue() {} });
    assert.equal(read, 19);
    assert.equal(decoder.size, Number.MAX_SAFE_INTEGER, "counted once its size line is read");
    assert.equal(decoder.done, false);
  });

  await t.step(
    "refuses a chunk size above Number.MAX_SAFE_INTEGER instead of rounding it",
    () => {
      // 0x20000000000001 = 2^53 + 1 has no exact double: the decoder computes 2^53 and would
      // frame the body one byte off. Even with maxSize at Infinity it must fail typed.
      const decoder = new ChunkedDecoder();
      let status: number | null = null;
      try {
        decoder.push(bytes("20000000000001\r\n"), { enqueue() {} });
      } catch (error) {
        status = statusOf(error);
      }
      assert(
        status === 400 || status === 413,
        `0x20000000000001 accepted as a size of ${decoder.size} bytes`,
      );
    },
  );

  await t.step("accepts maxSize data bytes, and 413 at one more, before handing it out", () => {
    const limits = { maxSize: 10 };
    assert.equal(push(oneChunk("a", 10), limits).data, "x".repeat(10));
    assert.equal(push("4\r\nxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n", limits).data.length, 10);
    throwsStatus(() => push(oneChunk("b", 11), limits), 413, "one chunk");
    throwsStatus(() => push("4\r\nxxxx\r\n7\r\nxxxxxxx\r\n0\r\n\r\n", limits), 413, "two");
    // The size line alone is enough: no data of that chunk reaches the sink.
    const decoder = new ChunkedDecoder(limits);
    const got: Uint8Array[] = [];
    decoder.push(bytes("4\r\nxxxx\r\n"), { enqueue: (d) => void got.push(d) });
    throwsStatus(
      () => decoder.push(bytes("7\r\nxxxxxxx"), { enqueue: (d) => void got.push(d) }),
      413,
    );
    assert.deepEqual(got.map(latin1), ["xxxx"]);
  });

  await t.step("takes maxSize 0 as no data, and Infinity by default", () => {
    assert.equal(push("0\r\n\r\n", { maxSize: 0 }).done, true);
    throwsStatus(() => push("1\r\n", { maxSize: 0 }), 413);
    const decoder = new ChunkedDecoder();
    decoder.push(bytes("ffffffffffff\r\n"), { enqueue() {} }); // 2^48 - 1 bytes announced
    assert.equal(decoder.size, 2 ** 48 - 1);
  });

  await t.step("rejects a malformed size line with 400 in push, not only at the end", () => {
    // Only the size line is pushed, and end() is not called: a size line taken as valid would
    // leave the decoder waiting for data, and whatever follows could fail for another reason.
    const sizeLines = [
      "", // no digits
      ";x", // an extension with no size
      "-1",
      "+1",
      "0x5",
      " 5", // whitespace before the size
      "5 x", // whitespace, then neither an extension nor the line end
      "5,6",
      "5 ", // whitespace is BWS before ";" only (RFC 9112 §7.1.1), not before the CRLF
      "5\t",
      // The neighbours of the hex digit ranges 0-9, A-F and a-f.
      "/",
      ":",
      "@",
      "G",
      "`",
      "g",
    ];
    for (const line of sizeLines) {
      throwsStatus(
        () => new ChunkedDecoder().push(bytes(`${line}\r\n`), { enqueue() {} }),
        400,
        JSON.stringify(line),
      );
    }
  });

  await t.step("skips chunk extensions of every form", () => {
    const sizeLines = [
      "5;a", // a name
      "5;a=b", // a name and a token value
      '5;a="q;u\\"o\\\\"', // a quoted value with ; and quoted-pairs
      "5 ; a = b", // BWS around ; and =
      "5\t;\ta", // HTAB as BWS
      "5;a=1;b=2;c", // several
      "5;a=\xe9\xff", // obs-text
    ];
    for (const line of sizeLines) {
      assert.equal(push(`${line}\r\nhello\r\n0\r\n\r\n`).data, "hello", JSON.stringify(line));
    }
    assert.equal(push("0;last=1\r\n\r\n").done, true, "on the last chunk");
  });

  await t.step("limits the extension bytes after ';': maxExtensionSize, 400 at one more", () => {
    for (const n of [1, 10]) {
      const ext = "e".repeat(n);
      const ok = `5;${ext}\r\nhello\r\n3;${ext}\r\nabc\r\n0;${ext}\r\n\r\n`; // a budget per line
      assert.equal(push(ok, { maxExtensionSize: n }).data, "helloabc");
      throwsStatus(() => push(`5;${ext}e\r\nhello\r\n0\r\n\r\n`, { maxExtensionSize: n }), 400);
      throwsStatus(() => push(`0;${ext}e\r\n\r\n`, { maxExtensionSize: n }), 400, "last chunk");
    }
  });

  await t.step("counts whitespace after the size toward maxExtensionSize", () => {
    const options = { maxExtensionSize: 2 };
    assert.equal(push("1  ;\r\nx\r\n0\r\n\r\n", options).data, "x");
    assert.equal(push("1\t ;\r\nx\r\n0\r\n\r\n", options).data, "x");
    throwsStatus(() => push("1   ;\r\nx\r\n0\r\n\r\n", options), 400, "3 blanks, empty extension");
    throwsStatus(() => push("1 \t ;a\r\nx\r\n0\r\n\r\n", options), 400, "3 blanks, then one");
  });

  await t.step("defaults maxExtensionSize to 4096 bytes, checked before the line ends", () => {
    assert.equal(push(`1;${"e".repeat(4096)}\r\nx\r\n0\r\n\r\n`).data, "x");
    throwsStatus(() => push(`1;${"e".repeat(4097)}`), 400);
    throwsStatus(() => push(`1;${"e".repeat(4097)}\r\nx\r\n0\r\n\r\n`), 400, "a whole body");
  });

  await t.step("rejects control characters in an extension with 400", () => {
    for (const c of ["\x00", "\x01", "\x1b", "\x7f", "\n", "\x0b"]) {
      throwsStatus(() => push(`5;a${c}b\r\nhello\r\n0\r\n\r\n`), 400, JSON.stringify(c));
    }
  });

  await t.step("rejects a bare LF or a bare CR as a line end with 400", () => {
    const bodies = [
      "5\nhello\r\n0\r\n\r\n", // size line, bare LF
      "5\rhello\r\n0\r\n\r\n", // size line, bare CR
      "5;x\nhello\r\n0\r\n\r\n", // extension, bare LF
      "5;x\rhello\r\n0\r\n\r\n", // extension, bare CR
      "5\r\nhello\n0\r\n\r\n", // after data, bare LF
      "5\r\nhello\r0\r\n\r\n", // after data, bare CR
      "0\n\r\n", // last chunk, bare LF
      "0\r\r\n", // last chunk, CR CR LF
      "0\r\n\n", // final line, bare LF
      "0\r\nX: 1\n\r\n", // trailer line, bare LF
      "0\r\nX: 1\r\r\n\r\n", // trailer line, CR CR LF
      "0\r\nX: 1\r\n\r\r\n\r\n", // a line holding a bare CR, then the final CRLF
    ];
    for (const body of bodies) throwsStatus(() => push(body), 400, JSON.stringify(body));
  });

  await t.step("rejects data that does not end with CRLF right at its size, with 400", () => {
    const bodies = [
      "5\r\nhelloX\r\n0\r\n\r\n", // longer than its size
      "5\r\nhell\r\n0\r\n\r\n", // shorter
      "5\r\nhello0\r\n\r\n", // no CRLF at all
    ];
    for (const body of bodies) throwsStatus(() => push(body), 400, JSON.stringify(body));
  });

  await t.step("reads trailer fields into Headers", () => {
    const decoder = new ChunkedDecoder();
    decoder.push(bytes('0\r\nX-A: 1\r\nx-a: 2\r\nETag:\t"v" \r\nEmpty:\r\n\r\n'), { enqueue() {} });
    const trailers = decoder.trailers;
    assert(trailers instanceof Headers);
    assert.equal(trailers.get("X-A"), "1, 2", "repeated: combined");
    assert.equal(trailers.get("etag"), '"v"', "OWS trimmed");
    assert.equal(trailers.get("empty"), "");
    assert.deepEqual([...new ChunkedDecoder().trailers], [], "none before the end");
  });

  await t.step("keeps obs-text in trailer values byte for byte", () => {
    const decoder = new ChunkedDecoder();
    decoder.push(bytes("0\r\nX: caf\xe9 \x80\xff\r\n\r\n"), { enqueue() {} });
    assert.equal(decoder.trailers.get("x"), "caf\xe9 \x80\xff");
  });

  await t.step("keeps obs-text at the ends of a trailer value (0xA0 is not OWS)", () => {
    const decoder = new ChunkedDecoder();
    decoder.push(bytes("0\r\nX: \xa0v\xa0\r\n\r\n"), { enqueue() {} });
    assert.equal(decoder.trailers.get("x"), "\xa0v\xa0");
  });

  await t.step("rejects a malformed trailer section with 400", () => {
    const lines = [
      "X : 1", // whitespace before the colon
      " X: 1", // obs-fold, first line
      "X: 1\r\n 2", // obs-fold, a continuation
      "X: 1\r\n\t2",
      "no colon",
      ": v", // no name
      "X(Y: 1", // not a token
      "X: a\x01b", // a control character
      "X: a\x7f",
      "X: a\x00",
      "X: a\rb", // a bare CR
    ];
    for (const line of lines) {
      throwsStatus(() => push(`0\r\n${line}\r\n\r\n`), 400, JSON.stringify(line));
    }
  });

  await t.step("accepts a trailer field line of maxTrailerSize bytes, 431 at one more", () => {
    // The trailer section (RFC 9112 §7.1.2: *( field-line CRLF )) counts its CRLFs; the
    // CRLF that ends the body is not part of it.
    for (const n of [6, 50]) {
      const line = "X: " + "v".repeat(n - 5); // n - 2 bytes, then CRLF: n bytes
      assert.equal(push(`0\r\n${line}\r\n\r\n`, { maxTrailerSize: n }).trailers.length, 1);
      throwsStatus(() => push(`0\r\n${line}v\r\n\r\n`, { maxTrailerSize: n }), 431, `${n}`);
    }
  });

  await t.step("counts every byte of a trailer section of several lines toward its limit", () => {
    // "A: 1\r\nB: 2\r\n" is 12 bytes, both CRLFs counted in full.
    const body = "0\r\nA: 1\r\nB: 2\r\n\r\n";
    assert.equal(push(body, { maxTrailerSize: 12 }).trailers.length, 2);
    throwsStatus(() => push(body, { maxTrailerSize: 11 }), 431, "12 bytes over a limit of 11");
  });

  await t.step("accepts maxTrailers fields, and 431 at one more as soon as it begins", () => {
    for (const n of [0, 1, 5]) {
      const lines = Array.from({ length: n }, (_, k) => `F${k}: ${k}\r\n`).join("");
      assert.equal(push(`0\r\n${lines}\r\n`, { maxTrailers: n }).trailers.length, n);
      throwsStatus(() => push(`0\r\n${lines}G: x\r\n\r\n`, { maxTrailers: n }), 431, `${n}`);
      // The first byte of the field past the limit shows it: no need to wait for its line.
      throwsStatus(() => push(`0\r\n${lines}G`, { maxTrailers: n }), 431, `${n}, one byte`);
    }
  });

  await t.step("counts each line of a repeated trailer field toward maxTrailers", () => {
    assert.equal(push("0\r\nX: 1\r\nX: 2\r\n\r\n", { maxTrailers: 2 }).trailers.length, 1);
    throwsStatus(() => push("0\r\nX: 1\r\nX: 2\r\nX: 3\r\n\r\n", { maxTrailers: 2 }), 431);
  });

  await t.step("defaults maxTrailers to 32 fields", () => {
    const lines = (n: number) => Array.from({ length: n }, (_, k) => `F${k}: ${k}\r\n`).join("");
    assert.equal(push(`0\r\n${lines(32)}\r\n`).trailers.length, 32);
    throwsStatus(() => push(`0\r\n${lines(33)}\r\n`), 431);
  });

  await t.step("gives a bad trailer section the same error split at every offset", () => {
    const bodies: [string, ChunkedDecoderOptions, number][] = [
      ["0\r\nX: 1\r\n\nY: 2\r\n\r\n", {}, 400], // a bare LF as a line
      ["0\r\nX: 1\n\r\n", {}, 400], // a line that ends with a bare LF
      ["0\r\nX: 1\r\n\rY: 2\r\n\r\n", {}, 400], // a bare CR where a line begins
      ["0\r\nX: 1\r\r\n\r\n", {}, 400], // CR CR LF
      ["0\r\nX: a\rb\r\n\r\n", {}, 400], // a bare CR inside a line
      ["0\r\nX : 1\r\n\r\n", {}, 400], // whitespace before the colon
      ["0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", { maxTrailers: 2 }, 431],
      [`0\r\nX: ${"v".repeat(60)}\r\n\r\n`, { maxTrailerSize: 64 }, 431],
    ];
    for (const [body, options, status] of bodies) {
      const wire = bytes(body);
      const name = JSON.stringify(body);
      assert.equal(decodePush([wire], options).status, status, name);
      for (let at = 0; at <= wire.length; at++) {
        assert.equal(decodePush(splitAt(wire, at), options).status, status, `${name} at ${at}`);
        assert.equal(decodeCompact(splitAt(wire, at), options).status, status, `${name} at ${at}`);
      }
      assert.equal(decodePush(bytewise(wire), options).status, status, `${name} byte by byte`);
    }
  });

  await t.step("accepts a body without trailers when maxTrailerSize is 0", () => {
    assert.equal(push("0\r\n\r\n", { maxTrailerSize: 0 }).done, true);
  });

  await t.step("defaults maxTrailerSize to 16384 bytes, checked before the section ends", () => {
    const line = "X: " + "v".repeat(16_384 - 5);
    assert.equal(push(`0\r\n${line}\r\n\r\n`).trailers.length, 1);
    throwsStatus(() => push(`0\r\nX: ${"v".repeat(20_000)}`), 431);
  });

  await t.step("end throws 400 until the body is complete, at every truncation", () => {
    for (const [name, wire] of FIXTURES) {
      for (let at = 0; at < wire.length; at++) {
        const decoder = new ChunkedDecoder();
        decoder.push(wire.subarray(0, at), { enqueue() {} });
        throwsStatus(() => decoder.end(), 400, `${name} cut at ${at}`);
      }
      const decoder = new ChunkedDecoder();
      decoder.push(wire, { enqueue() {} });
      decoder.end();
    }
  });

  await t.step("refuses limits that are not sizes (a NaN would turn a check off)", () => {
    for (const name of ["maxExtensionSize", "maxTrailerSize", "maxTrailers", "maxSize"]) {
      for (const value of [NaN, -1, 1.5]) {
        assert.throws(() => new ChunkedDecoder({ [name]: value }), RangeError, `${name}: ${value}`);
      }
    }
    assert.doesNotThrow(() => new ChunkedDecoder({ maxSize: Infinity, maxTrailerSize: 0 }));
  });
});

Deno.test("ChunkedDecoder.compact", async (t) => {
  await t.step("moves the data down in place and says how much there is", () => {
    const buffer = concat([WIKI, NEXT]);
    const decoder = new ChunkedDecoder();
    assert.deepEqual(decoder.compact(buffer, 0, buffer.length), {
      consumed: WIKI.length,
      data: WIKI_DATA.length,
    });
    assert.equal(latin1(buffer.subarray(0, WIKI_DATA.length)), WIKI_DATA);
    assert.deepEqual(buffer.subarray(WIKI.length), NEXT, "the bytes after it are untouched");
    assert.equal(decoder.done, true);
  });

  await t.step("works on bytes[start, end) only", () => {
    const before = bytes("keep"), after = bytes("also");
    const buffer = concat([before, FULL, after]);
    const decoder = new ChunkedDecoder();
    const result = decoder.compact(buffer, 4, 4 + FULL.length);
    assert.deepEqual(result, { consumed: FULL.length, data: FULL_DATA.length });
    assert.equal(latin1(buffer.subarray(4, 4 + result.data)), FULL_DATA);
    assert.equal(latin1(buffer.subarray(0, 4)), "keep");
    assert.equal(latin1(buffer.subarray(4 + FULL.length)), "also");
    assert.deepEqual([...decoder.trailers], FULL_TRAILERS);
  });

  await t.step("reads a trailer line only up to end, not into the stale bytes past it", () => {
    // The pipeline's read buffer holds old bytes past `end`: here a CRLF that would end the
    // line early if the decoder searched past `end` for it.
    const wire = bytes("0\r\nX: abc\r\n\r\n");
    const buffer = wire.slice();
    buffer.set(bytes("\r\n"), 7); // "0\r\nX: a" then stale "\r\n"
    const decoder = new ChunkedDecoder();
    assert.deepEqual(decoder.compact(buffer, 0, 7), { consumed: 7, data: 0 });
    assert.equal(decoder.done, false);
    const rest = wire.slice(7);
    assert.deepEqual(decoder.compact(rest, 0, rest.length), { consumed: rest.length, data: 0 });
    assert.deepEqual([...decoder.trailers], [["x", "abc"]]);
  });

  await t.step("carries its state across calls: every split and byte by byte", () => {
    for (const [name, wire, data, trailers] of FIXTURES) {
      const all = concat([wire, NEXT]);
      const want = { data, consumed: wire.length, done: true, trailers, status: null };
      for (let at = 0; at <= all.length; at++) {
        assert.deepEqual(decodeCompact(splitAt(all, at)), want, `${name} split at ${at}`);
      }
      assert.deepEqual(decodeCompact(bytewise(all)), want, `${name} byte by byte`);
      for (let seed = 1; seed <= 50; seed++) {
        const chunks = split(all, seeded(seed), 8);
        assert.deepEqual(decodeCompact(chunks), want, `${name} seed ${seed}`);
      }
    }
  });

  await t.step("returns the data before an error, then throws it", () => {
    const decoder = new ChunkedDecoder();
    const buffer = bytes("5\r\nhello\r\nzz\r\n");
    const result = decoder.compact(buffer, 0, buffer.length);
    assert.deepEqual(result, { consumed: 5, data: 5 }, "the data, and bytes left over");
    assert.equal(latin1(buffer.subarray(0, 5)), "hello");
    let error: unknown = null;
    try {
      decoder.compact(buffer, 5, buffer.length);
    } catch (e) {
      error = e;
    }
    assert(isStatus(400)(error), String(error));
    assert.throws(() => decoder.compact(buffer, 5, buffer.length), (e) => e === error);
    assert.throws(() => decoder.push(bytes("0\r\n\r\n"), { enqueue() {} }), (e) => e === error);
    assert.throws(() => decoder.end(), (e) => e === error, "end throws it too");
  });

  await t.step("returns a 413 over maxSize after the data within it", () => {
    const decoder = new ChunkedDecoder({ maxSize: 6 });
    const buffer = bytes("3\r\nabc\r\n4\r\ndefg\r\n");
    assert.deepEqual(decoder.compact(buffer, 0, buffer.length), { consumed: 3, data: 3 });
    throwsStatus(() => decoder.compact(buffer, 3, buffer.length), 413);
  });

  await t.step("throws the errors of push", () => {
    const decoder = new ChunkedDecoder({ maxSize: 3 });
    throwsStatus(() => decoder.compact(bytes("4\r\nabcd\r\n"), 0, 9), 413);
    throwsStatus(() => new ChunkedDecoder().compact(bytes("5\nhello"), 0, 7), 400);
  });
});

/** Decodes `chunks` through a ChunkedDecoderStream. */
async function decodeStream(chunks: readonly Uint8Array[], options: ChunkedDecoderOptions = {}) {
  const stream = new ChunkedDecoderStream(options);
  const body = ReadableStream.from(chunks.map((c) => c.slice())).pipeThrough(stream);
  const data = latin1(new Uint8Array(await new Response(body).arrayBuffer()));
  return { data, trailers: [...await stream.trailers] };
}

Deno.test("ChunkedDecoderStream", async (t) => {
  await t.step(
    "errors both sides with a TypeError for a chunk that is not a Uint8Array",
    async () => {
      // An ArrayBuffer has no length (it would be read as nothing, then a 400 for a body that
      // ended early); a string's characters are not bytes.
      const coded = bytes("5\r\nhello\r\n0\r\n\r\n");
      for (const chunk of [coded.buffer, new DataView(coded.buffer), "5\r\nhello\r\n", 5]) {
        const stream = new ChunkedDecoderStream();
        const writer = stream.writable.getWriter();
        const reading = Array.fromAsync(stream.readable);
        await assert.rejects(writer.write(chunk as unknown as Uint8Array), (e) => {
          assert.ok(e instanceof TypeError, String(e));
          assert.match(
            e.message,
            /^Cannot decode a chunked body: a chunk of .* is not a Uint8Array$/,
          );
          return true;
        });
        await assert.rejects(reading, TypeError);
        await assert.rejects(stream.trailers, TypeError);
      }
    },
  );

  await t.step("decodes the data and resolves the trailers at the end", async () => {
    for (const [name, wire, data, trailers] of FIXTURES) {
      assert.deepEqual(await decodeStream([wire]), { data, trailers }, name);
      assert.deepEqual(await decodeStream(bytewise(wire)), { data, trailers }, `${name} bytewise`);
    }
  });

  await t.step("gives the same result for random chunkings, empty chunks included", async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const got = await decodeStream(split(FULL, seeded(seed), 8));
      assert.deepEqual(got, { data: FULL_DATA, trailers: FULL_TRAILERS }, `seed ${seed}`);
    }
  });

  await t.step("accepts empty chunks after the end", async () => {
    const empty = new Uint8Array(0);
    assert.deepEqual(await decodeStream([WIKI, empty, empty]), { data: WIKI_DATA, trailers: [] });
  });

  await t.step("rejects data after the last chunk with 400, in any chunking", async () => {
    const wire = concat([FULL, bytes("x")]);
    for (const chunks of [[wire], [FULL, bytes("x")], bytewise(wire)]) {
      const stream = new ChunkedDecoderStream();
      const reader = ReadableStream.from(chunks).pipeThrough(stream).getReader();
      let data = "";
      const error = await (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return null;
            data += latin1(value);
          }
        } catch (error) {
          return error;
        }
      })();
      assert(isStatus(400)(error), `${chunks.length} chunks`);
      assert.equal(data, FULL_DATA, "every byte of data before the error is read");
      await assert.rejects(stream.trailers, isStatus(400), "the trailers settle at the end");
    }
  });

  await t.step("delivers the data of one chunk that precede an error in it", async () => {
    // Three data chunks and then a size line that is not hex, in one input chunk: a
    // TransformStream discards the data still queued when the error comes.
    const stream = new ChunkedDecoderStream();
    const reader = ReadableStream.from([bytes("2\r\nab\r\n2\r\ncd\r\n2\r\nef\r\nzz\r\n")])
      .pipeThrough(stream).getReader();
    for (const want of ["ab", "cd", "ef"]) {
      assert.equal(latin1((await reader.read()).value!), want);
    }
    await assert.rejects(reader.read(), isStatus(400));
    await assert.rejects(stream.trailers, isStatus(400));
  });

  await t.step("writes wait for reads, and cancelling the data errors the input", async () => {
    const stream = new ChunkedDecoderStream();
    const writer = stream.writable.getWriter();
    let written = false;
    const write = writer.write(bytes("2\r\nab\r\n")).then(() => written = true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(written, false, "no read yet, so the write waits");
    const reader = stream.readable.getReader();
    assert.equal(latin1((await reader.read()).value!), "ab");
    await write;
    const reason = new Error("enough");
    await reader.cancel(reason);
    await assert.rejects(writer.write(bytes("2\r\ncd\r\n")), (e) => e === reason);
    await assert.rejects(stream.trailers, (e) => e === reason);
  });

  await t.step("errors the data and the trailers when the input is aborted", async () => {
    const stream = new ChunkedDecoderStream();
    const reason = new Error("connection reset");
    let pulls = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(bytes("2\r\nab\r\n"));
        else controller.error(reason);
      },
    }, { highWaterMark: 0 });
    const reader = source.pipeThrough(stream).getReader();
    assert.equal(latin1((await reader.read()).value!), "ab");
    await assert.rejects(reader.read(), (e) => e === reason);
    await assert.rejects(stream.trailers, (e) => e === reason);
  });

  await t.step("rejects a truncated body with 400, and so do the trailers", async () => {
    for (const at of [0, 1, 3, 10, FULL.length - 1]) {
      const stream = new ChunkedDecoderStream();
      const body = ReadableStream.from([FULL.subarray(0, at)]).pipeThrough(stream);
      await assert.rejects(new Response(body).arrayBuffer(), isStatus(400), `cut at ${at}`);
      await assert.rejects(stream.trailers, isStatus(400), `cut at ${at}`);
    }
  });

  await t.step("passes the decoder's errors and options on", async () => {
    await assert.rejects(decodeStream([bytes("5\nhello\r\n0\r\n\r\n")]), isStatus(400));
    await assert.rejects(decodeStream([WIKI], { maxSize: 8 }), isStatus(413));
    await assert.rejects(decodeStream([FULL], { maxTrailerSize: 10 }), isStatus(431));
    await assert.rejects(decodeStream([FULL], { maxExtensionSize: 3 }), isStatus(400));
  });
});

Deno.test("decodeChunked", async (t) => {
  await t.step("gives the data as a stream and the trailers as a promise", async () => {
    const { body, trailers } = decodeChunked(ReadableStream.from(bytewise(FULL)));
    assert.equal(latin1(new Uint8Array(await new Response(body).arrayBuffer())), FULL_DATA);
    assert.deepEqual([...await trailers], FULL_TRAILERS);
  });

  await t.step("errors the body and the trailers alike", async () => {
    const { body, trailers } = decodeChunked(ReadableStream.from([WIKI]), { maxSize: 4 });
    await assert.rejects(new Response(body).arrayBuffer(), isStatus(413));
    await assert.rejects(trailers, isStatus(413));
  });
});

/** Runs `chunks` through a ChunkedEncoderStream; returns its output chunks. */
async function encode(
  chunks: readonly Uint8Array[],
  options?: ChunkedEncoderOptions,
): Promise<Uint8Array[]> {
  const stream = ReadableStream.from(chunks).pipeThrough(new ChunkedEncoderStream(options));
  return await Array.fromAsync(stream);
}

Deno.test("ChunkedEncoderStream", async (t) => {
  await t.step(
    "gives chunks of their own: a reader that transfers them loses nothing",
    async () => {
      // A sink that enqueues into a byte stream transfers each chunk's buffer while the next
      // ones wait in its queue: size lines that shared one buffer were detached.
      const parts = Array.from({ length: 6 }, (_, i) => new TextEncoder().encode(`part${i}`));
      const coded = ReadableStream.from(parts).pipeThrough(new ChunkedEncoderStream());
      let bytes!: ReadableByteStreamController;
      const out = new ReadableStream({ type: "bytes", start: (c) => void (bytes = c) });
      const sink = new WritableStream<Uint8Array>({
        async write(chunk) {
          await new Promise((resolve) => setTimeout(resolve, 1)); // the next ones queue up
          bytes.enqueue(chunk);
        },
        close: () => bytes.close(),
      }, { highWaterMark: 4 });
      const [text] = await Promise.all([new Response(out).text(), coded.pipeTo(sink)]);
      assert.equal(text, parts.map((_, i) => `5\r\npart${i}\r\n`).join("") + "0\r\n\r\n");
    },
  );

  await t.step("errors with a TypeError for a chunk that is not a Uint8Array", async () => {
    // A Uint16Array's length is not its size in bytes: its size line would lie.
    for (const chunk of [Uint16Array.of(1, 2), "hello", [1, 2], new ArrayBuffer(2), 7]) {
      const coded = ReadableStream.from([chunk as unknown as Uint8Array])
        .pipeThrough(new ChunkedEncoderStream());
      await assert.rejects(Array.fromAsync(coded), (e) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(
          e.message,
          /^Cannot encode a chunked body: a chunk of .* is not a Uint8Array$/,
        );
        return true;
      });
    }
  });

  await t.step("writes each chunk with its size in lower-case hex, byte for byte", async () => {
    const big = randomBytes(seeded(1), 4096);
    const out = concat(await encode([bytes("hello"), bytes("0123456789"), big]));
    const want = concat([
      bytes("5\r\n" + "hello"), // size 5, data
      bytes("\r\n" + "a\r\n" + "0123456789"), // CRLF closing the chunk, size 10, data
      bytes("\r\n" + "1000\r\n"), // size 4096
      big,
      bytes("\r\n" + "0\r\n" + "\r\n"), // CRLF, last chunk, no trailers, final CRLF
    ]);
    assert.deepEqual(out, want);
  });

  await t.step("emits a size line and the data itself, not copied, for each chunk", async () => {
    const a = bytes("abc"), b = bytes("de");
    const out = await encode([a, b]);
    assert.equal(out.length, 5);
    assert.equal(latin1(out[0]!), "3\r\n");
    assert.equal(out[1], a);
    assert.equal(latin1(out[2]!), "\r\n2\r\n");
    assert.equal(out[3], b);
    assert.equal(latin1(out[4]!), "\r\n0\r\n\r\n");
  });

  await t.step("writes an empty body as the last chunk alone", async () => {
    assert.equal(latin1(concat(await encode([]))), "0\r\n\r\n");
  });

  await t.step("skips empty chunks, which would end the body", async () => {
    const empty = new Uint8Array(0);
    const out = concat(await encode([empty, bytes("ab"), empty, empty, bytes("c"), empty]));
    assert.equal(latin1(out), "2\r\nab\r\n1\r\nc\r\n0\r\n\r\n");
    assert.equal(latin1(concat(await encode([empty, empty]))), "0\r\n\r\n");
  });

  await t.step("writes trailers given as any HeadersInit", async () => {
    const inits: HeadersInit[] = [
      { "X-Two": "a b", Checksum: "abc" },
      [["x-two", "a b"], ["checksum", "abc"]],
      new Headers({ checksum: "abc", "x-two": "a b" }),
    ];
    for (const trailers of inits) {
      const out = latin1(concat(await encode([bytes("hi")], { trailers })));
      assert.equal(out, "2\r\nhi\r\n0\r\nchecksum: abc\r\nx-two: a b\r\n\r\n");
    }
    const none = latin1(concat(await encode([], { trailers: {} })));
    assert.equal(none, "0\r\n\r\n");
  });

  await t.step("takes trailers from a function, sync or async, called at the end", async () => {
    let calls = 0;
    const source = ReadableStream.from([bytes("a"), bytes("b")]);
    const stream = source.pipeThrough(
      new ChunkedEncoderStream({
        trailers: () => {
          calls++;
          return { n: String(calls) };
        },
      }),
    );
    const out = latin1(concat(await Array.fromAsync(stream)));
    assert.equal(out, "1\r\na\r\n1\r\nb\r\n0\r\nn: 1\r\n\r\n");
    assert.equal(calls, 1);
    const later = await encode([bytes("a")], {
      trailers: async () => {
        await Promise.resolve();
        return [["x-sum", "1"]];
      },
    });
    assert.equal(latin1(concat(later)), "1\r\na\r\n0\r\nx-sum: 1\r\n\r\n");
  });

  await t.step("errors the stream when the trailers function fails", async () => {
    const error = new Error("no sum");
    await assert.rejects(
      encode([bytes("a")], {
        trailers: () => {
          throw error;
        },
      }),
      error,
    );
    await assert.rejects(encode([bytes("a")], { trailers: () => Promise.reject(error) }), error);
  });

  await t.step(
    "refuses trailer names and values that Headers refuses, and framing fields, with TypeError",
    async () => {
      const refused: [string, string][] = [
        ["bad name", "v"],
        ["x", "a\r\nInjected: 1"],
        // RFC 9110 §6.5.1: fields that frame or route the message cannot be trailers.
        ["Content-Length", "5"],
        ["transfer-encoding", "chunked"],
        ["Trailer", "x"],
        ["Host", "a"],
        ["connection", "close"],
      ];
      for (const field of refused) {
        // Given as fields: refused by the constructor, before a byte is sent (they were
        // checked at the end, once the body had gone out).
        assert.throws(() => new ChunkedEncoderStream({ trailers: [field] }), TypeError, field[0]);
        // Given by a function: known only at the end.
        await assert.rejects(
          encode([bytes("hello")], { trailers: () => [field] }),
          TypeError,
          field[0],
        );
      }
    },
  );

  await t.step(
    "writes obs-text in trailer values as single bytes, as the decoder reads them",
    async () => {
      // Header values are byte strings: "\xe9" is the byte 0xE9. The encoder runs trailers
      // through TextEncoder, which writes UTF-8 (0xC3 0xA9).
      const out = concat(await encode([], { trailers: { x: "caf\xe9" } }));
      assert.equal(latin1(out), "0\r\nx: caf\xe9\r\n\r\n");
    },
  );

  await t.step("round-trips through the decoder for any chunking", async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const random = seeded(seed);
      const data = randomBytes(random, Math.floor(random() * 3000));
      const trailers = seed % 2 === 0 ? { "x-seed": String(seed) } : undefined;
      const wire = concat(
        await encode(split(data, random, 700), trailers ? { trailers } : {}),
      );
      const decoded = decodePush(split(wire, random, 64));
      assert.deepEqual(decoded, {
        data: latin1(data),
        consumed: wire.length,
        done: true,
        trailers: trailers ? Object.entries(trailers) : [],
        status: null,
      }, `seed ${seed}`);
    }
  });
});
