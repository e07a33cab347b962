// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type ByteRange,
  byterangesContentType,
  calculateMultipleRangesBodyLength,
  type OpenRange,
  parseMultipart,
  writeMultipleRanges,
  type WriteMultipleRangesOptions,
} from "@wirestream/wirestream";
import { parseByteranges } from "../_util/byteranges.ts";
import { delay, latin1, utf8 } from "../_util/http.ts";
import { asciiOf, concat, FC_SEED, fuzzRuns, seeded, split } from "../_util/random.ts";

// 26 bytes: a range of it shows which bytes it took.
const DATA = utf8("abcdefghijklmnopqrstuvwxyz");

/** An open that slices DATA. */
const fromData: OpenRange = (r) => DATA.subarray(r.first, r.last + 1);

/** All of a stream's bytes. */
async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return concat(await Array.fromAsync(stream));
}

/** A stream of `chunks` that counts its pulls and records its cancel reason. */
function countedStream(chunks: Uint8Array[]) {
  const state = { pulls: 0, cancelled: [] as unknown[] };
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulls++;
      if (i < chunks.length) controller.enqueue(chunks[i++]!);
      else controller.close();
    },
    cancel(reason) {
      state.cancelled.push(reason);
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

Deno.test("writeMultipleRanges", async (t) => {
  await t.step("writes the parts of RFC 9110 §14.6 byte for byte", async () => {
    const body = writeMultipleRanges(fromData, [{ first: 0, last: 2 }, { first: 23, last: 25 }], {
      fullLength: 26,
      boundary: "THIS_STRING_SEPARATES",
      contentType: "text/plain",
    });
    assert.equal(
      latin1(await bytesOf(body)),
      "--THIS_STRING_SEPARATES\r\n" + // the first delimiter: no CRLF before it
        "Content-Type: text/plain\r\n" +
        "Content-Range: bytes 0-2/26\r\n" +
        "\r\n" +
        "abc" + // the range's bytes
        "\r\n" + // the CRLF that belongs to the next delimiter
        "--THIS_STRING_SEPARATES\r\n" +
        "Content-Type: text/plain\r\n" +
        "Content-Range: bytes 23-25/26\r\n" +
        "\r\n" +
        "xyz" +
        "\r\n" +
        "--THIS_STRING_SEPARATES--\r\n", // the close delimiter
    );
  });

  await t.step(
    "writes * for an unknown length, and no Content-Type when none is given",
    async () => {
      const body = writeMultipleRanges(fromData, [{ first: 1, last: 1 }], { boundary: "b" });
      assert.equal(
        latin1(await bytesOf(body)),
        "--b\r\nContent-Range: bytes 1-1/*\r\n\r\nb\r\n--b--\r\n",
      );
    },
  );

  await t.step(
    "hands out chunks of its own: a reader that transfers them leaves later bodies whole",
    async () => {
      // A byte stream's enqueue transfers each chunk's buffer (as postMessage with a transfer
      // list does): a chunk shared between bodies would be gone from every later one.
      // (The sources' chunks are passed on as they are: these are copies, the reader's too.)
      const copies: OpenRange = (r) => DATA.slice(r.first, r.last + 1);
      const ranges = [{ first: 0, last: 2 }, { first: 23, last: 25 }];
      const options = { fullLength: 26, boundary: "b", contentType: "text/plain" };
      const expected = latin1(await bytesOf(writeMultipleRanges(copies, ranges, options)));
      const reader = writeMultipleRanges(copies, ranges, options).getReader();
      const seen: number[] = [];
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        seen.push(...value);
        // The reader's to give away:
        structuredClone(value, { transfer: [value.buffer as ArrayBuffer] });
      }
      assert.equal(latin1(Uint8Array.from(seen)), expected);
      const again = latin1(await bytesOf(writeMultipleRanges(copies, ranges, options)));
      assert.equal(again, expected);
      assert.equal(calculateMultipleRangesBodyLength(ranges, options), expected.length);
    },
  );

  await t.step("writes overlapping and unordered ranges as given", async () => {
    const ranges = [{ first: 5, last: 7 }, { first: 0, last: 6 }];
    const body = await bytesOf(writeMultipleRanges(fromData, ranges, { boundary: "x" }));
    const parts = parseByteranges(body, "x");
    assert.deepEqual(parts.map((p) => latin1(p.body)), ["fgh", "abcdefg"]);
  });

  await t.step("takes streams, chunked any way, and promises of them", async () => {
    const open: OpenRange = async (r) => {
      await null;
      return ReadableStream.from(split(DATA.slice(r.first, r.last + 1), seeded(r.first), 3));
    };
    const ranges = [{ first: 0, last: 12 }, { first: 20, last: 25 }];
    const options = { fullLength: 26, boundary: "b", contentType: "text/plain" };
    const streamed = await bytesOf(writeMultipleRanges(open, ranges, options));
    const direct = await bytesOf(writeMultipleRanges(fromData, ranges, options));
    assert.equal(latin1(streamed), latin1(direct));
  });

  await t.step("opens a range only when the reader reaches it, and reads no faster", async () => {
    const sources = [countedStream([utf8("ab"), utf8("c")]), countedStream([utf8("xyz")])];
    const opened: ByteRange[] = [];
    const body = writeMultipleRanges(
      (r) => (opened.push(r), sources[opened.length - 1]!.stream),
      [{ first: 0, last: 2 }, { first: 23, last: 25 }],
      { boundary: "b" },
    );
    await delay(0); // a stream with a queue would have pulled ahead by now
    assert.equal(opened.length, 0, "nothing opened before a read");
    const reader = body.getReader();
    assert.equal(latin1((await reader.read()).value!), "--b\r\nContent-Range: bytes 0-2/*\r\n\r\n");
    await delay(0);
    assert.equal(opened.length, 0, "the head goes out before the range opens");
    assert.equal(latin1((await reader.read()).value!), "ab");
    assert.equal(opened.length, 1);
    assert.equal(sources[0]!.state.pulls, 1, "one chunk of the source per chunk read");
    assert.equal(latin1((await reader.read()).value!), "c");
    assert.equal(latin1((await reader.read()).value!), "\r\n");
    await delay(0);
    assert.equal(opened.length, 1, "the second range is not open yet");
    const rest: string[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(latin1(r.value));
    assert.deepEqual(rest, [
      "--b\r\nContent-Range: bytes 23-25/*\r\n\r\n",
      "xyz",
      "\r\n",
      "--b--\r\n",
    ]);
    assert.deepEqual(opened, [{ first: 0, last: 2 }, { first: 23, last: 25 }]);
  });

  await t.step("passes the source's chunks on without copying them", async () => {
    const chunk = utf8("abc");
    const reader = writeMultipleRanges(
      () => ReadableStream.from([chunk]),
      [{ first: 0, last: 2 }],
      {
        boundary: "b",
      },
    ).getReader();
    await reader.read(); // the head
    assert.equal((await reader.read()).value, chunk);
    await reader.cancel();
  });

  await t.step("fails when a source gives more bytes than its range, and cancels it", async () => {
    const source = countedStream([utf8("ab"), utf8("cd")]);
    const body = writeMultipleRanges(() => source.stream, [{ first: 0, last: 2 }], {
      boundary: "b",
    });
    await assert.rejects(bytesOf(body), {
      name: "RangeError",
      message: "Cannot read range 0-2: its source gave at least 4 bytes, not 3",
    });
    assert.equal(source.state.cancelled.length, 1);
    assert.ok(source.state.cancelled[0] instanceof RangeError);
  });

  await t.step("fails when a source ends short, or gives bytes of the wrong length", async () => {
    const short = writeMultipleRanges(
      () => ReadableStream.from([utf8("ab")]),
      [{ first: 0, last: 2 }],
      { boundary: "b" },
    );
    await assert.rejects(bytesOf(short), {
      name: "RangeError",
      message: "Cannot read range 0-2: its source ended after 2 bytes, not 3",
    });
    const bytes = writeMultipleRanges(() => utf8("abcd"), [{ first: 0, last: 2 }], {
      boundary: "b",
    });
    await assert.rejects(bytesOf(bytes), {
      name: "RangeError",
      message: "Cannot read range 0-2: its source gave 4 bytes, not 3",
    });
    const empty = writeMultipleRanges(() => new Uint8Array(0), [{ first: 0, last: 0 }], {
      boundary: "b",
    });
    await assert.rejects(bytesOf(empty), RangeError);
  });

  await t.step("fails on a source of the wrong type, and passes on a source's error", async () => {
    const range = [{ first: 0, last: 0 }];
    const notBytes = writeMultipleRanges(
      () => ReadableStream.from(["a"]) as unknown as ReadableStream<Uint8Array>,
      range,
      { boundary: "b" },
    );
    await assert.rejects(bytesOf(notBytes), TypeError);
    const notSource = writeMultipleRanges(() => "a" as unknown as Uint8Array, range, {
      boundary: "b",
    });
    await assert.rejects(bytesOf(notSource), TypeError);
    const failure = new Error("disk on fire");
    const throwing = writeMultipleRanges(
      () => {
        throw failure;
      },
      range,
      { boundary: "b" },
    );
    await assert.rejects(bytesOf(throwing), (e) => e === failure);
    const erroring = writeMultipleRanges(
      () => new ReadableStream({ pull: (c) => c.error(failure) }),
      range,
      { boundary: "b" },
    );
    await assert.rejects(bytesOf(erroring), (e) => e === failure);
  });

  await t.step("cancelling the body cancels the range being read, with the reason", async () => {
    const source = countedStream([utf8("a"), utf8("b"), utf8("c")]);
    const reader = writeMultipleRanges(() => source.stream, [{ first: 0, last: 2 }], {
      boundary: "b",
    }).getReader();
    await reader.read(); // the head
    await reader.read(); // "a"
    await reader.cancel("gone");
    assert.deepEqual(source.state.cancelled, ["gone"]);
  });

  await t.step("cancelling the body while a range opens cancels that range once open", async () => {
    const source = countedStream([utf8("a")]);
    const gate = { release: null as ((s: ReadableStream<Uint8Array>) => void) | null };
    const reader = writeMultipleRanges(
      () => new Promise<ReadableStream<Uint8Array>>((resolve) => (gate.release = resolve)),
      [{ first: 0, last: 0 }],
      { boundary: "b" },
    ).getReader();
    await reader.read(); // the head
    const read = reader.read(); // waits for the open
    while (gate.release === null) await delay(1);
    const cancelled = reader.cancel("gone");
    gate.release(source.stream);
    await cancelled;
    assert.deepEqual(source.state.cancelled, ["gone"]);
    assert.equal(source.state.pulls, 0, "nothing was read of it");
    assert.deepEqual(await read, { done: true, value: undefined });
  });

  await t.step("refuses bad boundaries, media types and ranges", () => {
    const ok: WriteMultipleRangesOptions = { boundary: "b", fullLength: 26 };
    const range = [{ first: 0, last: 0 }];
    const badBoundaries = ["", "x".repeat(71), "ends in space ", 'quote"', "new\r\nline", "é"];
    for (const boundary of badBoundaries) {
      assert.throws(() => writeMultipleRanges(fromData, range, { ...ok, boundary }), TypeError);
      assert.throws(() => calculateMultipleRangesBodyLength(range, { ...ok, boundary }), TypeError);
    }
    for (const boundary of ["x".repeat(70), "a'()+_,-./:=? b", "1"]) {
      assert.doesNotThrow(() => calculateMultipleRangesBodyLength(range, { ...ok, boundary }));
    }
    for (const contentType of ["text/plain\r\nX: y", "a\x7fb", "a\x00b", "a\nb"]) {
      assert.throws(
        () => writeMultipleRanges(fromData, range, { ...ok, contentType }),
        TypeError,
        JSON.stringify(contentType),
      );
    }
    assert.doesNotThrow(() =>
      calculateMultipleRangesBodyLength(range, { ...ok, contentType: "a\tb \x80\xff~" })
    );
    const badRanges: ByteRange[][] = [
      [],
      [{ first: -1, last: 0 }],
      [{ first: 2, last: 1 }],
      [{ first: 0, last: 26 }], // past fullLength
      [{ first: 0, last: 1.5 }],
      [{ first: 0, last: 2 ** 53 }],
      [{ first: 0, last: 0 }, { first: 0, last: NaN }],
    ];
    for (const ranges of badRanges) {
      assert.throws(
        () => writeMultipleRanges(fromData, ranges, ok),
        RangeError,
        JSON.stringify(ranges),
      );
      assert.throws(() => calculateMultipleRangesBodyLength(ranges, ok), RangeError);
    }
    assert.throws(
      () => calculateMultipleRangesBodyLength(range, { ...ok, fullLength: -1 }),
      RangeError,
    );
    assert.throws(
      () =>
        calculateMultipleRangesBodyLength([{ first: 0, last: 2 ** 52 }, {
          first: 0,
          last: 2 ** 52,
        }], { boundary: "b" }),
      { name: "RangeError", message: /is not a safe integer/ },
    );
  });

  await t.step("streams random ranges with the length announced (property)", async () => {
    const boundaryChar = fc.constantFrom(..."0123456789abcXYZ'()+_,-./:=?");
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }).chain((size) =>
          fc.record({
            size: fc.constant(size),
            ranges: fc.array(
              fc.tuple(fc.nat(size - 1), fc.nat(size - 1)).map(([a, b]) => ({
                first: Math.min(a, b),
                last: Math.max(a, b),
              })),
              { minLength: 1, maxLength: 8 },
            ),
            boundary: fc.string({ unit: boundaryChar, minLength: 1, maxLength: 70 }),
            contentType: fc.option(fc.constantFrom("text/plain", "video/mp4", ""), {
              nil: undefined,
            }),
            known: fc.boolean(),
            seed: fc.nat(),
          })
        ),
        async ({ size, ranges, boundary, contentType, known, seed }) => {
          const data = utf8(asciiOf(size));
          const random = seeded(seed);
          const open: OpenRange = (r) =>
            random() < 0.3
              ? data.slice(r.first, r.last + 1)
              : ReadableStream.from(split(data.slice(r.first, r.last + 1), random, 16));
          const options = { boundary, contentType, fullLength: known ? size : undefined };
          const body = await bytesOf(writeMultipleRanges(open, ranges, options));
          assert.equal(body.length, calculateMultipleRangesBodyLength(ranges, options));
          // The model: the same text, built by concatenation.
          const type = contentType === undefined ? "" : `Content-Type: ${contentType}\r\n`;
          const model = ranges.map((r) =>
            `--${boundary}\r\n${type}Content-Range: bytes ${r.first}-${r.last}/${
              known ? size : "*"
            }\r\n\r\n` +
            asciiOf(size).slice(r.first, r.last + 1) + "\r\n"
          ).join("") + `--${boundary}--\r\n`;
          assert.equal(latin1(body), model);
          const parts = parseByteranges(body, boundary);
          assert.deepEqual(
            parts.map((p) => [p.range.first, p.range.last]),
            ranges.map((r) => [r.first, r.last]),
          );
        },
      ),
      { seed: FC_SEED, numRuns: fuzzRuns(200) },
    );
  });
});

Deno.test("byterangesContentType", async (t) => {
  await t.step(
    "quotes a boundary that is no token; parseMultipart reads the body back",
    async () => {
      const data = utf8("0123456789abcdefghij");
      const ranges = [{ first: 0, last: 3 }, { first: 10, last: 12 }];
      const cases: [string, string][] = [
        ["SEPARATOR", "multipart/byteranges; boundary=SEPARATOR"],
        ["a'b+c_d-e.f", "multipart/byteranges; boundary=a'b+c_d-e.f"],
        ["a b?c", 'multipart/byteranges; boundary="a b?c"'],
        ["(x),y/z:w=v", 'multipart/byteranges; boundary="(x),y/z:w=v"'],
      ];
      for (const [boundary, expected] of cases) {
        const contentType = byterangesContentType(boundary);
        assert.equal(contentType, expected);
        const body = writeMultipleRanges(
          (range) => data.subarray(range.first, range.last + 1),
          ranges,
          { boundary, fullLength: data.length, contentType: "text/plain" },
        );
        const parts: [string | null, string][] = [];
        for await (const event of parseMultipart(body, contentType)) {
          if (event.type !== "part") continue;
          parts.push([event.headers.get("content-range"), await new Response(event.body).text()]);
        }
        assert.deepEqual(parts, [["bytes 0-3/20", "0123"], ["bytes 10-12/20", "abc"]], boundary);
      }
    },
  );

  await t.step("refuses what is no boundary with a TypeError", () => {
    for (const bad of ["", "a ", "x".repeat(71), 'a"b', "a\\b", "é", 7 as unknown as string]) {
      assert.throws(() => byterangesContentType(bad), TypeError, JSON.stringify(bad));
    }
    assert.equal(byterangesContentType("x".repeat(70)).length, 31 + 70);
  });
});
