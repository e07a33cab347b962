// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  HttpError,
  type MultipartEvent,
  type MultipartPart,
  parseMultipart,
} from "@wirestream/wirestream";
import { delay, within } from "../_util/async.ts";
import { latin1, textOf } from "../_util/http.ts";
import { bytes } from "../_util/multipart.ts";
import { concat, randomBytes, sameBytes, seeded } from "../_util/random.ts";

/** A pull source over `chunks` that records how many were pulled, and its cancellation. */
function source(chunks: readonly Uint8Array[]) {
  const state = {
    pulled: 0,
    cancelled: false,
    reason: undefined as unknown,
    stream: null as unknown as ReadableStream<Uint8Array>,
  };
  state.stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === chunks.length) controller.close();
      else controller.enqueue(chunks[state.pulled++]!);
    },
    cancel(reason) {
      state.cancelled = true;
      state.reason = reason;
    },
  }, { highWaterMark: 0 });
  return state;
}

/** A part of a form, as wire text, boundary "b". */
function part(name: string, body: string, filename?: string): string {
  const file = filename === undefined ? "" : `; filename="${filename}"`;
  return `--b\r\nContent-Disposition: form-data; name="${name}"${file}\r\n\r\n${body}\r\n`;
}

/** The next event, which must be a part. */
async function nextPart(
  reader: ReadableStreamDefaultReader<MultipartEvent>,
): Promise<MultipartPart> {
  const { done, value } = await reader.read();
  assert(!done && value.type === "part", `expected a part, got ${done ? "the end" : value.type}`);
  return value;
}

function isStatus(status: number) {
  return (error: unknown) => {
    assert(error instanceof HttpError, String(error));
    assert.equal(error.status, status, error.message);
    return true;
  };
}

Deno.test("parseMultipart", async (t) => {
  await t.step("from a Request with a FormData body: fields and files", async () => {
    const form = new FormData();
    form.append("title", "Hëllo");
    form.append("file", new File([Uint8Array.of(0, 13, 10, 255)], "data.bin", { type: "x/y" }));
    const request = new Request("http://localhost/", { method: "POST", body: form });
    const got: [string | null, string | null, string | null, number[]][] = [];
    for await (const event of parseMultipart(request)) {
      assert.equal(event.type, "part");
      if (event.type !== "part") continue;
      got.push([event.name, event.filename, event.contentType, [
        ...await new Response(event.body).bytes(),
      ]]);
    }
    assert.deepEqual(got, [
      ["title", null, null, [...new TextEncoder().encode("Hëllo")]],
      ["file", "data.bin", "x/y", [0, 13, 10, 255]],
    ]);
  });

  await t.step("from a Request: 415 and 400 at once for a bad type or no body", () => {
    const post = (headers: HeadersInit, body: BodyInit | null = "x") =>
      new Request("http://localhost/", { method: "POST", headers, body });
    assert.throws(() => parseMultipart(post({ "content-type": "text/plain" })), isStatus(415));
    assert.throws(() => parseMultipart(post({})), isStatus(415)); // text/plain;charset=UTF-8
    assert.throws(
      () => parseMultipart(post({ "content-type": "multipart/form-data" })),
      isStatus(400),
    );
    assert.throws(
      () => parseMultipart(post({ "content-type": "multipart/form-data; boundary=b" }, null)),
      isStatus(400),
    );
  });

  await t.step(
    "from a Request: Content-Length is verified, and contentLength overrides it",
    async () => {
      const wire = bytes(part("a", "1") + "--b--");
      const request = (length: string) =>
        new Request("http://localhost/", {
          method: "POST",
          headers: { "content-type": "multipart/form-data; boundary=b", "content-length": length },
          body: wire,
        });
      await drain(parseMultipart(request(String(wire.length))));
      await assert.rejects(drain(parseMultipart(request(String(wire.length + 1)))), isStatus(400));
      await assert.rejects(drain(parseMultipart(request(String(wire.length - 1)))), isStatus(400));
      assert.throws(() => parseMultipart(request("1x")), isStatus(400));
      await drain(parseMultipart(request("999"), { contentLength: wire.length }));
      assert.throws(() => parseMultipart(request("999"), { maxTotalSize: 998 }), isStatus(413));
      // A valid length however many digits (RFC 9110 §8.6), over any limit: 413, not 400.
      assert.throws(() => parseMultipart(request("1000000000000000")), isStatus(413));
      assert.throws(
        () => parseMultipart(request("99999999999999999999"), { maxTotalSize: Infinity }),
        isStatus(413),
      );
      await drain(parseMultipart(request(`0000000000000000${wire.length}`)));
      for (const contentLength of [Infinity, 2 ** 60, 1.5, NaN]) {
        assert.throws(
          () => parseMultipart(request("999"), { contentLength, maxTotalSize: Infinity }),
          (e) => e instanceof RangeError && e.message.startsWith("Invalid contentLength: "),
          String(contentLength),
        );
      }
    },
  );

  await t.step("from a body and its content type, with contentLength", async () => {
    const wire = bytes("pre\r\n" + part("a", "1") + "--b--\r\nepi");
    const events = await Array.fromAsync(
      parseMultipart(ReadableStream.from([wire]), 'multipart/form-data; boundary="b"', {
        contentLength: wire.length,
      }),
    );
    assert.deepEqual(events.map((e) => e.type), ["preamble", "part", "epilogue"]);
    assert.equal(latin1((events[0] as { body: Uint8Array }).body), "pre");
    assert.equal(latin1((events[2] as { body: Uint8Array }).body), "epi");
    await assert.rejects(
      drain(
        parseMultipart(ReadableStream.from([wire]), "multipart/mixed; boundary=b", {
          contentLength: 3,
        }),
      ),
      isStatus(400),
    );
    assert.throws(() => parseMultipart(ReadableStream.from([wire]), "text/html"), isStatus(415));
    assert.throws(
      () =>
        parseMultipart(ReadableStream.from([wire]), "multipart/form-data; boundary=b", {
          contentLength: -3,
        }),
      (e) => e instanceof RangeError && e.message.startsWith("Invalid contentLength: -3"),
    );
    // Infinity is no length (it once made every body a 400 at its end): null is.
    assert.throws(
      () =>
        parseMultipart(ReadableStream.from([wire]), "multipart/form-data; boundary=b", {
          contentLength: Infinity,
        }),
      (e) => e instanceof RangeError && e.message.startsWith("Invalid contentLength: Infinity"),
    );
  });

  await t.step("from a body and a boundary; a bad boundary is a RangeError", async () => {
    const wire = bytes(part("a", "1") + "--b--");
    await drain(
      parseMultipart(ReadableStream.from([wire]), { boundary: "b", totalLength: wire.length }),
    );
    await assert.rejects(
      drain(
        parseMultipart(ReadableStream.from([wire]), {
          boundary: "b",
          totalLength: wire.length + 1,
        }),
      ),
      isStatus(400),
    );
    assert.throws(() => parseMultipart(ReadableStream.from([wire]), { boundary: "" }), RangeError);
    assert.throws(
      () => parseMultipart(ReadableStream.from([wire]), {} as { boundary: string }),
      TypeError,
    );
  });

  await t.step("reads the source no further than the current part's head", async () => {
    const chunks = [part("a", "first"), part("b", "second"), "--b--"].map(bytes);
    const src = source(chunks);
    const reader = parseMultipart(src.stream, { boundary: "b" }).getReader();
    const first = await nextPart(reader);
    assert.equal(first.name, "a");
    await delay(5);
    assert.equal(src.pulled, 1);
    assert.equal(textOf(await new Response(first.body).bytes()), "first");
    assert.equal(src.pulled, 2); // the first part ends in the second chunk
    const second = await nextPart(reader);
    assert.equal(textOf(await new Response(second.body).bytes()), "second");
    assert.equal((await reader.read()).done, true);
  });

  await t.step("the next event waits while the body is being read, then comes", async () => {
    const chunks = [part("a", "x".repeat(100)), part("b", "y") + "--b--"].map(bytes);
    const reader = parseMultipart(source(chunks).stream, { boundary: "b" }).getReader();
    const first = await nextPart(reader);
    const body = first.body.getReader(); // locked: being read
    let next: MultipartPart | null = null;
    const pending = nextPart(reader).then((p) => (next = p));
    await delay(5);
    assert.equal(next, null);
    while (!(await body.read()).done);
    await within(pending, 1000, "the next part");
    assert.equal(next!.name, "b");
    await new Response(next!.body).arrayBuffer();
  });

  await t.step(
    "a body never locked is skipped when the next event is read, and fails if read later",
    async () => {
      const chunks = [part("a", "skipped"), part("b", "kept") + "--b--"].map(bytes);
      const reader = parseMultipart(source(chunks).stream, { boundary: "b" }).getReader();
      const first = await nextPart(reader);
      const second = await nextPart(reader);
      assert.equal(textOf(await new Response(second.body).bytes()), "kept");
      await assert.rejects(new Response(first.body).bytes(), TypeError);
      assert.equal((await reader.read()).done, true);
    },
  );

  await t.step("a cancelled body is read and dropped; the next part follows", async () => {
    const big = "z".repeat(10_000);
    const chunks = [part("a", big), part("b", "after") + "--b--"].map(bytes);
    const reader = parseMultipart(source(chunks).stream, { boundary: "b" }).getReader();
    const first = await nextPart(reader);
    const body = first.body.getReader();
    await body.read();
    await body.cancel("not wanted");
    const second = await nextPart(reader);
    assert.equal(textOf(await new Response(second.body).bytes()), "after");
  });

  await t.step("backpressure: a body pulls one source chunk per read, no read-ahead", async () => {
    const random = seeded(1);
    const content = randomBytes(random, 1 << 20);
    const wire = concat([bytes("--b\r\n\r\n"), content, bytes("\r\n--b--")]);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < wire.length; at += 16_384) chunks.push(wire.slice(at, at + 16_384));
    const src = source(chunks);
    const reader = parseMultipart(src.stream, { boundary: "b" }).getReader();
    const body = (await nextPart(reader)).body.getReader();
    const got: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      const { value } = await body.read();
      got.push(value!);
      await delay(0);
      assert(src.pulled <= i + 2, `pulled ${src.pulled} chunks after ${i + 1} reads`);
    }
    while (true) {
      const { done, value } = await body.read();
      if (done) break;
      got.push(value);
    }
    assert(sameBytes(concat(got), content));
    assert.equal((await reader.read()).done, true);
  });

  await t.step("hands part data out as views of the source's chunks", async () => {
    const chunk = bytes(part("a", "x".repeat(1000)) + "--b--");
    const reader = parseMultipart(ReadableStream.from([chunk]), { boundary: "b" }).getReader();
    const { value } = await (await nextPart(reader)).body.getReader().read();
    assert.equal(value!.buffer, chunk.buffer);
  });

  await t.step(
    "cancelling the events while a body is read lets the body end, then cancels the source",
    async () => {
      const chunks = [part("a", "one"), "two", "\r\n", part("b", "never") + "--b--"].map(bytes);
      const src = source(chunks);
      const events = parseMultipart(src.stream, { boundary: "b" });
      const reader = events.getReader();
      const first = await nextPart(reader);
      const body = first.body.getReader();
      assert.equal(textOf((await body.read()).value!), "one");
      await reader.cancel("enough");
      assert.equal(src.cancelled, false);
      const rest: string[] = [];
      while (true) {
        const { done, value } = await body.read();
        if (done) break;
        rest.push(textOf(value));
      }
      assert.equal(rest.join(""), "\r\ntwo"); // the CRLF was held back: it might begin a delimiter
      await delay(0);
      assert.equal(src.cancelled, true);
      assert.equal(src.reason, "enough");
    },
  );

  await t.step("cancelling the events between parts cancels the source at once", async () => {
    const src = source([part("a", "1"), part("b", "2") + "--b--"].map(bytes));
    const events = parseMultipart(src.stream, { boundary: "b" });
    for await (const event of events) {
      assert.equal(event.type, "part");
      if (event.type === "part") await new Response(event.body).arrayBuffer();
      break; // for await cancels the events
    }
    assert.equal(src.cancelled, true);
  });

  await t.step("cancelling a body after the events were cancelled cancels the source", async () => {
    const src = source([part("a", "1"), "more", part("b", "2") + "--b--"].map(bytes));
    const reader = parseMultipart(src.stream, { boundary: "b" }).getReader();
    const body = (await nextPart(reader)).body.getReader();
    await reader.cancel();
    assert.equal(src.cancelled, false);
    await body.cancel();
    await delay(0);
    assert.equal(src.cancelled, true);
  });

  await t.step(
    "a malformed or truncated body errors the part's body and the events with a 400",
    async () => {
      for (const wire of ["--b\r\n\r\nabc", "--b\r\n\r\nabc\r\n--b\r\nBad line\r\n\r\n"]) {
        const reader = parseMultipart(ReadableStream.from([bytes(wire)]), { boundary: "b" })
          .getReader();
        const first = await nextPart(reader);
        const body = new Response(first.body).bytes();
        if (wire.endsWith("abc")) await assert.rejects(body, isStatus(400));
        else assert.equal(textOf(await body), "abc"); // its delimiter came: it was whole
        await assert.rejects(reader.read(), isStatus(400), wire);
      }
    },
  );

  await t.step("a limit errors the body with a 413 after the bytes within it", async () => {
    const wire = bytes(part("a", "x".repeat(100)) + "--b--");
    const reader = parseMultipart(ReadableStream.from([wire.subarray(0, 60), wire.subarray(60)]), {
      boundary: "b",
      maxFieldSize: 50,
    }).getReader();
    const body = (await nextPart(reader)).body.getReader();
    let received = 0;
    await assert.rejects(
      (async () => {
        while (true) {
          const { done, value } = await body.read();
          if (done) break;
          received += value.length;
        }
      })(),
      isStatus(413),
    );
    assert(received <= 50, `received ${received}`);
  });

  await t.step("a slow reader of a body gets every byte delivered before an error", async (t) => {
    // An error errored the body at once, and a stream errored so drops what is queued in it:
    // a reader that took a moment between reads (writing to a file) lost bytes that a reader
    // reading back to back got, and the body errored though its part had ended whole.
    const read = async (events: ReadableStream<MultipartEvent>) => {
      const reader = events.getReader();
      const body = (await nextPart(reader)).body.getReader();
      let text = "", error: unknown = null;
      try {
        for (let r = await body.read(); !r.done; r = await body.read()) {
          text += latin1(r.value);
          await delay(1);
        }
      } catch (e) {
        error = e;
      }
      const events_ = await reader.read().then(() => null, (e: unknown) => e);
      return { text, error, events: events_ };
    };
    await t.step("a part that ended whole, before a bad delimiter in the same chunk", async () => {
      const chunks = ["--b\r\n\r\nabc\r", "def\r\n--bX"].map(bytes); // "X": a 400
      const got = await read(parseMultipart(ReadableStream.from(chunks), { boundary: "b" }));
      assert.equal(got.text, "abc\rdef");
      assert.equal(got.error, null, "the part ended whole: its body closes");
      assert.ok(got.events instanceof HttpError && got.events.status === 400);
    });
  });

  await t.step("a source error reaches the body and the events as it is", async () => {
    const failure = new Error("connection reset");
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) controller.error(failure);
        else controller.enqueue(bytes("--b\r\n\r\npartial"));
        sent = true;
      },
    });
    const reader = parseMultipart(stream, { boundary: "b" }).getReader();
    const first = await nextPart(reader);
    await assert.rejects(new Response(first.body).bytes(), (e) => e === failure);
    await assert.rejects(reader.read(), (e) => e === failure);
  });

  await t.step("a chunk that is not a Uint8Array is a TypeError", async () => {
    const stream = ReadableStream.from(["--b\r\n"]) as unknown as ReadableStream<Uint8Array>;
    await assert.rejects(drain(parseMultipart(stream, { boundary: "b" })), TypeError);
  });
});

/** Reads every event and every body; rejects with the first error. */
async function drain(events: ReadableStream<MultipartEvent>): Promise<void> {
  for await (const event of events) {
    if (event.type === "part") await new Response(event.body).arrayBuffer();
  }
}
