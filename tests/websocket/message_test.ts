// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeMessage,
  Frame,
  type Message,
  MessageDecoder,
  type MessageDecoderOptions,
  MessageStream,
  MessageTooBigError,
  Opcode,
  WebSocketError,
} from "@wirestream/wirestream";
import { concat, hex, randomBytes, seeded } from "../_util/random.ts";
import { retainedBytes } from "../_util/gc.ts";

const utf8 = new TextEncoder();

/** Pushes `frames` through a fresh decoder, then ends it; returns what it emitted. */
function decodeAll(frames: readonly Frame[], options?: MessageDecoderOptions): (Message | Frame)[] {
  const out: (Message | Frame)[] = [];
  const decoder = new MessageDecoder(options);
  for (const frame of frames) decoder.push(frame, { enqueue: (item) => out.push(item) });
  decoder.end();
  return out;
}

/** Splits `bytes` into a text (or binary) message of fragments at `cuts` (ascending offsets). */
function fragments(bytes: Uint8Array, cuts: readonly number[], opcode: Opcode = Opcode.Text) {
  const bounds = [0, ...cuts, bytes.length];
  const frames: Frame[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    frames.push(
      new Frame(
        i === 0 ? opcode : Opcode.Continuation,
        bytes.subarray(bounds[i]!, bounds[i + 1]!),
        i + 2 === bounds.length,
      ),
    );
  }
  return frames;
}

/** Asserts that `fn` throws a `WebSocketError` with `closeCode`. */
function throwsCode(fn: () => unknown, closeCode: number, message?: string): void {
  assert.throws(fn, (error) => {
    assert(error instanceof WebSocketError, message);
    assert.equal(error.closeCode, closeCode, message);
    return true;
  });
}

/** A close frame with a raw payload, which `Frame.close` would refuse to build. */
function rawClose(payload: Uint8Array): Frame {
  return new Frame(Opcode.Close, payload);
}

/** A close payload: the code big-endian, then the reason bytes. */
function closePayload(code: number, reason: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concat([Uint8Array.of(code >>> 8, code & 0xff), reason]);
}

const NONE = { enqueue() {} };

Deno.test("MessageDecoder", async (t) => {
  await t.step("emits a single-frame text message as a string", () => {
    assert.deepEqual(decodeAll([Frame.text("héllo, wörld €𝄞")]), ["héllo, wörld €𝄞"]);
    assert.deepEqual(decodeAll([Frame.text("")]), [""]);
  });

  await t.step("emits a single-frame binary message as the frame's own payload", () => {
    const payload = Uint8Array.of(0, 1, 2, 0xff);
    const out = decodeAll([Frame.binary(payload)]);
    assert.equal(out.length, 1);
    assert.equal(out[0], payload); // no copy (ownership notes)
    assert.deepEqual(decodeAll([Frame.binary(new Uint8Array(0))]), [new Uint8Array(0)]);
  });

  await t.step("reassembles a fragmented text message", () => {
    const frames = [
      Frame.text("hel", false),
      Frame.continuation(utf8.encode("lo "), false),
      Frame.continuation(utf8.encode("world")),
    ];
    assert.deepEqual(decodeAll(frames), ["hello world"]);
  });

  await t.step("holds a text message of 1-byte fragments in memory near its size", () => {
    // A string per fragment, concatenated, held a rope node per fragment: 33.6 MB retained
    // here (about 32 bytes per fragment; 128 MiB at the default 4 MiB limit). Now about 1.3 MB:
    // the text, concatenated in pieces of 256 characters.
    const size = 1_048_576;
    const decoder = new MessageDecoder({ maxMessageSize: size });
    const out: (Message | Frame)[] = [];
    const sink = { enqueue: (item: Message | Frame) => out.push(item) };
    const used = retainedBytes; // after a full collection: what is held, not garbage
    const before = used();
    decoder.push(Frame.text("a", false), sink);
    const fragment = Frame.continuation(utf8.encode("b"), false);
    for (let i = 2; i < size; i++) decoder.push(fragment, sink);
    const grown = used() - before;
    assert.ok(grown < 8 * size, `${grown} bytes held for a message of ${size} bytes so far`);
    decoder.push(Frame.continuation(utf8.encode("c")), sink);
    assert.equal(out.length, 1);
    assert.equal(out[0], `a${"b".repeat(size - 2)}c`);
  });

  await t.step("reassembles a fragmented binary message into one buffer", () => {
    const frames = [
      Frame.binary(Uint8Array.of(1, 2), false),
      Frame.continuation(Uint8Array.of(3), false),
      Frame.continuation(Uint8Array.of(4, 5)),
    ];
    assert.deepEqual(decodeAll(frames), [Uint8Array.of(1, 2, 3, 4, 5)]);
  });

  await t.step("gives a fragmented binary message a buffer of its own size, no spare room", () => {
    // The buffer grows to at least 1 KiB; the message must not pin the rest of it.
    const [message] = decodeAll([
      Frame.binary(Uint8Array.of(1, 2), false),
      Frame.continuation(Uint8Array.of(3)),
    ]);
    assert(message instanceof Uint8Array);
    assert.deepEqual(message, Uint8Array.of(1, 2, 3));
    assert.equal(message.buffer.byteLength, 3);
  });

  await t.step("accepts zero-length fragments anywhere in a message", () => {
    const empty = new Uint8Array(0);
    assert.deepEqual(
      decodeAll([
        Frame.text(empty, false),
        Frame.continuation(empty, false),
        Frame.continuation(utf8.encode("ab"), false),
        Frame.continuation(empty),
      ]),
      ["ab"],
    );
    assert.deepEqual(decodeAll([Frame.text(empty, false), Frame.continuation(empty)]), [""]);
    assert.deepEqual(
      decodeAll([
        Frame.binary(empty, false),
        Frame.continuation(empty, false),
        Frame.continuation(empty),
      ]),
      [new Uint8Array(0)],
    );
    assert.deepEqual(
      decodeAll([
        Frame.binary(empty, false),
        Frame.continuation(Uint8Array.of(7, 8), false),
        Frame.continuation(empty),
      ]),
      [Uint8Array.of(7, 8)],
    );
  });

  await t.step(
    "passes control frames between fragments through, in order, as the same Frame",
    () => {
      const ping = Frame.ping(Uint8Array.of(1));
      const pong = Frame.pong(Uint8Array.of(2));
      const close = Frame.close(1000, "bye");
      const out = decodeAll([
        ping,
        Frame.text("a", false),
        pong,
        Frame.continuation(utf8.encode("b"), false),
        ping,
        Frame.continuation(utf8.encode("c")),
        Frame.binary(Uint8Array.of(9)),
        close,
      ]);
      assert.equal(out.length, 6);
      assert.equal(out[0], ping);
      assert.equal(out[1], pong);
      assert.equal(out[2], ping);
      assert.equal(out[3], "abc");
      assert.deepEqual(out[4], Uint8Array.of(9));
      assert.equal(out[5], close);
      assert.ok(out[5] instanceof Frame);
    },
  );

  await t.step("rejects a continuation with no message open with 1002", () => {
    throwsCode(() => decodeAll([Frame.continuation(Uint8Array.of(1))]), 1002);
    throwsCode(() => decodeAll([Frame.continuation(Uint8Array.of(1), false)]), 1002);
    // ...also right after a complete message.
    throwsCode(() => decodeAll([Frame.text("x"), Frame.continuation(Uint8Array.of(1))]), 1002);
  });

  await t.step("rejects a new text or binary frame inside an open message with 1002", () => {
    for (const first of [Frame.text("a", false), Frame.binary(Uint8Array.of(1), false)]) {
      for (
        const next of [Frame.text("b"), Frame.text("b", false), Frame.binary(Uint8Array.of(2))]
      ) {
        throwsCode(() => decodeAll([first, next]), 1002, `${first.opcode} then ${next.opcode}`);
      }
    }
  });

  await t.step("rejects invalid UTF-8 in a single-frame text message with 1007", () => {
    for (const bad of ["ed a0 80", "f4 90 80 80", "c0 80", "f5", "ff", "80", "e2 82", "61 c3"]) {
      throwsCode(() => decodeAll([Frame.text(hex(bad))]), 1007, bad);
    }
  });

  await t.step("fails fast: 1007 at the fragment with an invalid sequence, before fin", () => {
    const cases = [
      "ed a0 80", // ED A0: the start of a UTF-16 surrogate (U+D800)
      "f4 90 80 80", // F4 90: above U+10FFFF
      "c0 80", // C0: an overlong lead byte
      "f5 80 80 80", // F5: never a lead byte
      "80", // a continuation byte with no lead
      "e2 28 a1", // a lead byte followed by ASCII
    ];
    for (const bad of cases) {
      // In a middle fragment.
      const decoder = new MessageDecoder();
      decoder.push(Frame.text("ok", false), NONE);
      throwsCode(() => decoder.push(Frame.continuation(hex(bad), false), NONE), 1007, bad);
      // In the first fragment.
      throwsCode(() => new MessageDecoder().push(Frame.text(hex(bad), false), NONE), 1007, bad);
    }
  });

  await t.step("fails fast when an invalid sequence is split across fragments", () => {
    // ED | A0: ED is a valid lead byte alone; A0 makes it a surrogate, in the 2nd fragment.
    const decoder = new MessageDecoder();
    decoder.push(Frame.text(hex("61 ed"), false), NONE);
    throwsCode(() => decoder.push(Frame.continuation(hex("a0"), false), NONE), 1007);
    // F4 | 90: above U+10FFFF, detected at the second byte.
    const other = new MessageDecoder();
    other.push(Frame.text(hex("f4"), false), NONE);
    throwsCode(() => other.push(Frame.continuation(hex("90 80 80"), false), NONE), 1007);
  });

  await t.step("accepts a valid multi-byte character split across fragments", () => {
    const euro = utf8.encode("€"); // e2 82 ac
    assert.deepEqual(decodeAll(fragments(euro, [1])), ["€"]);
    assert.deepEqual(decodeAll(fragments(euro, [2])), ["€"]);
    assert.deepEqual(decodeAll(fragments(euro, [1, 1, 2, 2])), ["€"]); // with empty fragments
    const emoji = utf8.encode("😀"); // f0 9f 98 80
    assert.deepEqual(decodeAll(fragments(emoji, [1, 2, 3])), ["😀"]);
    // Every split of a mixed text into two and three fragments.
    const text = "a€😀é𝄞z";
    const bytes = utf8.encode(text);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(decodeAll(fragments(bytes, [i])), [text], `cut ${i}`);
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(decodeAll(fragments(bytes, [i, j])), [text], `cuts ${i} ${j}`);
      }
    }
  });

  await t.step("rejects a sequence left incomplete by the final fragment with 1007", () => {
    const euro = utf8.encode("€");
    throwsCode(() => decodeAll(fragments(euro.subarray(0, 2), [1])), 1007);
    // The last fragment is empty and the sequence is still open.
    const decoder = new MessageDecoder();
    decoder.push(Frame.text(euro.subarray(0, 2), false), NONE);
    throwsCode(() => decoder.push(Frame.continuation(new Uint8Array(0)), NONE), 1007);
  });

  await t.step("keeps a leading U+FEFF: no byte order mark is stripped", () => {
    assert.deepEqual(decodeAll([Frame.text(hex("ef bb bf 61"))]), ["\uFEFFa"]);
    assert.deepEqual(decodeAll(fragments(hex("ef bb bf 61"), [1])), ["\uFEFFa"]);
  });

  await t.step("accepts a one-frame message of maxMessageSize bytes and rejects one more", () => {
    const options = { maxMessageSize: 8 };
    assert.deepEqual(decodeAll([Frame.text("12345678")], options), ["12345678"]);
    assert.deepEqual(decodeAll([Frame.binary(new Uint8Array(8))], options), [new Uint8Array(8)]);
    for (const frame of [Frame.text("123456789"), Frame.binary(new Uint8Array(9))]) {
      assert.throws(() => decodeAll([frame], options), (error) => {
        assert(error instanceof MessageTooBigError);
        assert(error instanceof WebSocketError);
        assert.deepEqual([error.closeCode, error.limit, error.size], [1009, 8, 9]);
        return true;
      });
    }
  });

  await t.step("rejects fragments at the one that crosses maxMessageSize, before fin", () => {
    const options = { maxMessageSize: 8 };
    for (const opcode of [Opcode.Text, Opcode.Binary]) {
      const bytes = utf8.encode("abcdefgh"); // 8 bytes: exactly the limit
      assert.equal(decodeAll(fragments(bytes, [3, 6, 8], opcode), options).length, 1);
      const decoder = new MessageDecoder(options);
      decoder.push(new Frame(opcode, bytes.subarray(0, 4), false), NONE);
      decoder.push(Frame.continuation(bytes.subarray(4, 8), false), NONE);
      assert.throws(
        () => decoder.push(Frame.continuation(Uint8Array.of(0x7a), false), NONE),
        (e) => {
          assert(e instanceof MessageTooBigError);
          assert.deepEqual([e.closeCode, e.limit, e.size], [1009, 8, 9]);
          return true;
        },
      );
    }
  });

  await t.step("does not count control frames toward maxMessageSize", () => {
    const ping = Frame.ping(new Uint8Array(125));
    const out = decodeAll([Frame.text("ab", false), ping, Frame.continuation(utf8.encode("c"))], {
      maxMessageSize: 3,
    });
    assert.deepEqual(out, [ping, "abc"]);
  });

  await t.step("takes 0 and Infinity for maxMessageSize and defaults to 4 MiB", () => {
    assert.deepEqual(decodeAll([Frame.text("")], { maxMessageSize: 0 }), [""]);
    throwsCode(() => decodeAll([Frame.text("a")], { maxMessageSize: 0 }), 1009);
    const big = new Uint8Array(DEFAULT_MAX_MESSAGE_SIZE + 1);
    assert.equal(decodeAll([Frame.binary(big)], { maxMessageSize: Infinity })[0], big);
    assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 4_194_304);
    assert.equal(decodeAll([Frame.binary(big.subarray(1))]).length, 1);
    throwsCode(() => decodeAll([Frame.binary(big)]), 1009);
  });

  await t.step("throws RangeError for a negative or fractional maxMessageSize", () => {
    for (const maxMessageSize of [-1, 1.5, NaN, -Infinity]) {
      assert.throws(() => new MessageDecoder({ maxMessageSize }), RangeError, `${maxMessageSize}`);
    }
  });

  await t.step("passes a close frame with an empty payload or a valid code and reason", () => {
    const frames = [
      rawClose(new Uint8Array(0)),
      ...[1000, 1001, 1002, 1003, ...Array.from({ length: 8 }, (_, i) => 1007 + i), 3000, 4999]
        .map((code) => rawClose(closePayload(code))),
      rawClose(closePayload(1000, utf8.encode("bye €"))),
    ];
    assert.deepEqual(decodeAll(frames), frames);
  });

  await t.step("rejects a close frame with a 1-byte payload with 1002", () => {
    throwsCode(() => decodeAll([rawClose(Uint8Array.of(0x03))]), 1002);
  });

  await t.step("rejects a close frame with a code that may not be sent with 1002", () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      throwsCode(() => decodeAll([rawClose(closePayload(code))]), 1002, `code ${code}`);
    }
  });

  await t.step("rejects a close reason that is not UTF-8 with 1007", () => {
    throwsCode(() => decodeAll([rawClose(closePayload(1000, hex("ed a0 80")))]), 1007);
    throwsCode(() => decodeAll([rawClose(closePayload(1000, hex("e2 82")))]), 1007);
  });

  await t.step("checks a close frame inside a fragmented message too", () => {
    const decoder = new MessageDecoder();
    decoder.push(Frame.text("a", false), NONE);
    throwsCode(() => decoder.push(rawClose(Uint8Array.of(1)), NONE), 1002);
  });

  await t.step("end() rejects an open message with 1002 and accepts a closed one", () => {
    const decoder = new MessageDecoder();
    decoder.end();
    decoder.push(Frame.text("done"), NONE);
    decoder.end();
    for (const first of [Frame.text("a", false), Frame.binary(Uint8Array.of(1), false)]) {
      const open = new MessageDecoder();
      open.push(first, NONE);
      open.push(Frame.ping(), NONE);
      throwsCode(() => open.end(), 1002);
    }
  });

  await t.step("starts afresh after an error: no byte of the failed message leaks on", () => {
    const euro = utf8.encode("€"); // e2 82 ac: each failed message stops inside it
    const failures: [string, () => MessageDecoder][] = [
      ["after end() inside a message", () => {
        const decoder = new MessageDecoder();
        decoder.push(Frame.text(euro.subarray(0, 2), false), NONE);
        throwsCode(() => decoder.end(), 1002);
        return decoder;
      }],
      ["after a 1007", () => {
        const decoder = new MessageDecoder();
        decoder.push(Frame.text(euro.subarray(0, 2), false), NONE);
        throwsCode(() => decoder.push(Frame.continuation(Uint8Array.of(0xff)), NONE), 1007);
        return decoder;
      }],
      ["after a 1009", () => {
        const decoder = new MessageDecoder({ maxMessageSize: 4 });
        decoder.push(Frame.text(euro.subarray(0, 2), false), NONE);
        throwsCode(() => decoder.push(Frame.continuation(new Uint8Array(3)), NONE), 1009);
        return decoder;
      }],
    ];
    for (const [name, failed] of failures) {
      const out: (Message | Frame)[] = [];
      const decoder = failed();
      decoder.push(Frame.text("a", false), { enqueue: (item) => void out.push(item) });
      decoder.push(Frame.continuation(utf8.encode("b")), {
        enqueue: (item) => void out.push(item),
      });
      assert.deepEqual(out, ["ab"], name);
      // The last byte of "€" alone is invalid: it must not complete the failed message's bytes.
      throwsCode(() => failed().push(Frame.text(euro.subarray(2), false), NONE), 1007, name);
    }
  });

  await t.step("a sequence split after any byte, then a literal U+FFFD, is valid", () => {
    // The replacing decoder's U+FFFD is told from a literal one: the split sequence's bytes
    // must be carried over for each kind of lead byte (2, 3 and 4 bytes, their edges).
    const chars = ["\u0080", "\u07ff", "\u0800", "\uffff", "\u{10000}", "\u{1f600}", "\u{10ffff}"];
    for (const char of chars) {
      const bytes = utf8.encode(char);
      for (let at = 1; at < bytes.length; at++) {
        const out: (Message | Frame)[] = [];
        const sink = { enqueue: (item: Message | Frame) => void out.push(item) };
        const decoder = new MessageDecoder();
        decoder.push(Frame.text(bytes.slice(0, at), false), sink);
        decoder.push(Frame.continuation(concat([bytes.slice(at), utf8.encode("\ufffd")])), sink);
        assert.deepEqual(out, [char + "\ufffd"], `${JSON.stringify(char)} split at ${at}`);
      }
    }
  });

  await t.step("inMessage tells whether a fragmented message is open", () => {
    const decoder = new MessageDecoder();
    assert.equal(decoder.inMessage, false);
    decoder.push(Frame.text("a"), NONE);
    assert.equal(decoder.inMessage, false);
    decoder.push(Frame.binary(Uint8Array.of(1), false), NONE);
    assert.equal(decoder.inMessage, true);
    decoder.push(Frame.ping(), NONE);
    assert.equal(decoder.inMessage, true);
    decoder.push(Frame.continuation(Uint8Array.of(2)), NONE);
    assert.equal(decoder.inMessage, false);
  });

  await t.step("emits each message at the push of its final fragment", () => {
    const out: (Message | Frame)[] = [];
    const sink = { enqueue: (item: Message | Frame) => out.push(item) };
    const decoder = new MessageDecoder();
    decoder.push(Frame.text("a", false), sink);
    decoder.push(Frame.continuation(utf8.encode("b"), false), sink);
    assert.deepEqual(out, []);
    decoder.push(Frame.continuation(utf8.encode("c")), sink);
    assert.deepEqual(out, ["abc"]);
  });
});

/** Runs `frames` through a MessageStream and collects its output. */
function stream(frames: readonly Frame[], options?: MessageDecoderOptions) {
  return Array.fromAsync(ReadableStream.from(frames).pipeThrough(new MessageStream(options)));
}

/** A predicate for `assert.rejects`: an error of `type` with `closeCode`. */
// deno-lint-ignore no-explicit-any
function isError(type: abstract new (...args: any[]) => WebSocketError, closeCode: number) {
  return (error: unknown) => {
    assert(error instanceof type);
    assert.equal(error.closeCode, closeCode);
    return true;
  };
}

Deno.test("MessageStream", async (t) => {
  await t.step("reassembles messages and passes control frames through in order", async () => {
    const ping = Frame.ping(Uint8Array.of(1));
    const close = Frame.close(1000);
    const out = await stream([
      Frame.binary(Uint8Array.of(1), false),
      ping,
      Frame.continuation(Uint8Array.of(2)),
      Frame.text("€"),
      close,
    ]);
    assert.deepEqual(out, [ping, Uint8Array.of(1, 2), "€", close]);
    assert.equal(out[0], ping);
  });

  await t.step(
    "errors with WebSocketError 1002 for a continuation with no message",
    () =>
      assert.rejects(stream([Frame.continuation(Uint8Array.of(1))]), isError(WebSocketError, 1002)),
  );

  await t.step(
    "errors with WebSocketError 1002 for a new data frame inside a message",
    () =>
      assert.rejects(
        stream([Frame.text("a", false), Frame.text("b")]),
        isError(WebSocketError, 1002),
      ),
  );

  await t.step(
    "errors with WebSocketError 1007 for invalid UTF-8",
    () => assert.rejects(stream([Frame.text(hex("c0 80"))]), isError(WebSocketError, 1007)),
  );

  await t.step("errors with MessageTooBigError 1009 over maxMessageSize", async () => {
    await stream([Frame.binary(new Uint8Array(4))], { maxMessageSize: 4 });
    await assert.rejects(
      stream([Frame.binary(new Uint8Array(5))], { maxMessageSize: 4 }),
      isError(MessageTooBigError, 1009),
    );
  });

  await t.step(
    "errors with WebSocketError 1002 for a close frame with code 1005",
    () => assert.rejects(stream([rawClose(closePayload(1005))]), isError(WebSocketError, 1002)),
  );

  await t.step(
    "errors with WebSocketError 1002 when the frames end inside a message",
    () => assert.rejects(stream([Frame.text("a", false)]), isError(WebSocketError, 1002)),
  );

  await t.step("errors its writable side with the same error", async () => {
    const messages = new MessageStream();
    const writer = messages.writable.getWriter();
    const reading = Array.fromAsync(messages.readable);
    await assert.rejects(
      writer.write(Frame.continuation(Uint8Array.of(1))),
      isError(WebSocketError, 1002),
    );
    await assert.rejects(reading, isError(WebSocketError, 1002));
    await assert.rejects(writer.closed, isError(WebSocketError, 1002));
  });
});

/** Runs encodeMessage and collects the frames. */
function encode(message: Message, maxFrameSize?: number): Frame[] {
  const frames: Frame[] = [];
  encodeMessage(
    message,
    { enqueue: (frame) => frames.push(frame) },
    maxFrameSize === undefined ? {} : { maxFrameSize },
  );
  return frames;
}

/** Each frame as [opcode, fin, payload length]. */
function shape(frames: readonly Frame[]): [number, boolean, number][] {
  return frames.map((f) => [f.opcode, f.fin, f.payload.length]);
}

Deno.test("encodeMessage", async (t) => {
  await t.step("sends a message that fits as one final text or binary frame", () => {
    assert.deepEqual(shape(encode("héllo", 6)), [[Opcode.Text, true, 6]]);
    assert.deepEqual(shape(encode(new Uint8Array(6), 6)), [[Opcode.Binary, true, 6]]);
    assert.deepEqual(encode("héllo", 6)[0]!.payload, utf8.encode("héllo"));
  });

  await t.step("sends an empty message as one empty final frame", () => {
    assert.deepEqual(shape(encode("", 1)), [[Opcode.Text, true, 0]]);
    assert.deepEqual(shape(encode(new Uint8Array(0), 1)), [[Opcode.Binary, true, 0]]);
  });

  await t.step("splits at an exact multiple of maxFrameSize with no empty last frame", () => {
    assert.deepEqual(shape(encode(new Uint8Array(6), 3)), [
      [Opcode.Binary, false, 3],
      [Opcode.Continuation, true, 3],
    ]);
    assert.deepEqual(shape(encode("abcdefghi", 3)), [
      [Opcode.Text, false, 3],
      [Opcode.Continuation, false, 3],
      [Opcode.Continuation, true, 3],
    ]);
  });

  await t.step("splits one byte over and one byte under maxFrameSize", () => {
    assert.deepEqual(shape(encode(new Uint8Array(7), 6)), [
      [Opcode.Binary, false, 6],
      [Opcode.Continuation, true, 1],
    ]);
    assert.deepEqual(shape(encode(new Uint8Array(5), 6)), [[Opcode.Binary, true, 5]]);
    assert.deepEqual(shape(encode(new Uint8Array(7), 3)), [
      [Opcode.Binary, false, 3],
      [Opcode.Continuation, false, 3],
      [Opcode.Continuation, true, 1],
    ]);
  });

  await t.step("splits inside a UTF-8 sequence, one byte per frame at maxFrameSize 1", () => {
    const frames = encode("€", 1);
    assert.deepEqual(shape(frames), [
      [Opcode.Text, false, 1],
      [Opcode.Continuation, false, 1],
      [Opcode.Continuation, true, 1],
    ]);
    assert.deepEqual(concat(frames.map((f) => f.payload)), hex("e2 82 ac"));
  });

  await t.step("sends any size in one frame at maxFrameSize Infinity", () => {
    assert.deepEqual(shape(encode(new Uint8Array(100_000), Infinity)), [[
      Opcode.Binary,
      true,
      100_000,
    ]]);
  });

  await t.step("uses DEFAULT_MAX_FRAME_SIZE when maxFrameSize is undefined", () => {
    assert.deepEqual(shape(encode(new Uint8Array(DEFAULT_MAX_FRAME_SIZE + 1))), [
      [Opcode.Binary, false, DEFAULT_MAX_FRAME_SIZE],
      [Opcode.Continuation, true, 1],
    ]);
  });

  await t.step("gives frames whose payloads concatenate to the message", () => {
    const random = seeded(7);
    const bytes = randomBytes(random, 1000);
    for (const size of [1, 2, 3, 7, 64, 999, 1000, 1001]) {
      const frames = encode(bytes, size);
      assert.deepEqual(concat(frames.map((f) => f.payload)), bytes, `maxFrameSize ${size}`);
      assert(frames.every((f) => f.payload.length <= size && f.payload.length > 0));
      assert(frames.every((f, i) => f.fin === (i === frames.length - 1)));
    }
  });

  await t.step("round-trips through MessageDecoder", () => {
    for (
      const message of [
        "",
        "a",
        "héllo €😀 wörld".repeat(20),
        new Uint8Array(0),
        Uint8Array.of(1, 2, 3),
      ]
    ) {
      for (const size of [1, 2, 5, 64, Infinity]) {
        assert.deepEqual(decodeAll(encode(message, size)), [message], `maxFrameSize ${size}`);
      }
    }
  });

  await t.step("throws RangeError for a maxFrameSize that is not a positive integer", () => {
    for (const size of [0, -1, 1.5, NaN, -Infinity]) {
      const frames: Frame[] = [];
      assert.throws(
        () => encodeMessage("abc", { enqueue: (f) => frames.push(f) }, { maxFrameSize: size }),
        RangeError,
        `${size}`,
      );
      assert.deepEqual(frames, []);
    }
  });

  await t.step("throws TypeError for a message that is not a string or Uint8Array", () => {
    for (
      const message of [
        42,
        null,
        undefined,
        {},
        [1, 2],
        new ArrayBuffer(2),
        new DataView(new ArrayBuffer(2)),
        new Uint16Array(2),
      ]
    ) {
      assert.throws(() => encode(message as unknown as Message, 16), TypeError, String(message));
    }
  });
});
