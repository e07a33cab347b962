// Copyright 2026 the wirestream authors. MIT license.
import assert from "node:assert/strict";
import { HttpError, parseMultipart, readFormData } from "@wirestream/wirestream";
import { bytes } from "../_util/multipart.ts";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";
import { retainedBytes } from "../_util/gc.ts";
import { within } from "../_util/async.ts";

/** A request with a multipart body of `text` (boundary "b"), or with a FormData body. */
function post(body: string | FormData): Request {
  return typeof body === "string"
    ? new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=b" },
      body: bytes(body),
    })
    : new Request("http://localhost/", { method: "POST", body });
}

/** The entries of a FormData as comparable values. */
async function entries(form: FormData): Promise<[string, string | [string, string, number[]]][]> {
  const out: [string, string | [string, string, number[]]][] = [];
  for (const [name, value] of form) {
    out.push([
      name,
      typeof value === "string"
        ? value
        : [value.name, value.type, [...new Uint8Array(await value.arrayBuffer())]],
    ]);
  }
  return out;
}

function isStatus(status: number, re?: RegExp) {
  return (error: unknown) => {
    assert(error instanceof HttpError, String(error));
    assert.equal(error.status, status, error.message);
    if (re !== undefined) assert.match(error.message, re);
    return true;
  };
}

function field(name: string, value: string): string {
  return `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

function file(name: string, filename: string, content: string, type?: string): string {
  return `--b\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\n` +
    (type === undefined ? "" : `Content-Type: ${type}\r\n`) + `\r\n${content}\r\n`;
}

Deno.test("readFormData", async (t) => {
  await t.step("gives what Request.formData() gives for a FormData body", async () => {
    const form = new FormData();
    form.append("title", "Grüße, 世界");
    form.append("title", ""); // repeated, and empty
    form.append(
      "doc",
      new File([randomBytes(seeded(3), 70_000) as Uint8Array<ArrayBuffer>], "doc.pdf", {
        type: "application/pdf",
      }),
    );
    form.append("empty", new File([], "", { type: "application/octet-stream" }));
    const want = await entries(await post(form).formData());
    assert.deepEqual(await entries(await readFormData(post(form))), want);
  });

  await t.step(
    "keeps backslashes and quotes in names and filenames as Request.formData()",
    async () => {
      // FormData's encoder escapes no backslash, and writes " as %22 (WHATWG HTML).
      const form = new FormData();
      form.append("a\\b", "field"); // a field named a\b
      form.append("upload", new File(["x"], "a\\b.txt"));
      form.append("path", new File(["y"], "C:\\dir\\f.txt"));
      form.append('q"n', new File(["z"], 'say "hi".txt'));
      const want = await entries(await post(form).formData());
      const got = await entries(await readFormData(post(form)));
      assert.deepEqual(got, want);
      assert.deepEqual(
        got.map(([name, value]) => [name, typeof value === "string" ? value : value[0]]),
        [
          ["a\\b", "field"],
          ["upload", "a\\b.txt"],
          ["path", "C:\\dir\\f.txt"],
          ["q%22n", "say %22hi%22.txt"], // kept as sent, as Deno's Request.formData() keeps it
        ],
      );
    },
  );

  await t.step("ignores a filename* it cannot decode, as Request.formData() does", async () => {
    const disposition = (ext: string) =>
      `--b\r\nContent-Disposition: form-data; name="f"; filename="plain.txt"; ${ext}\r\n\r\nv\r\n--b--`;
    for (const ext of ["filename*=koi8-r''x", "filename*=UTF-8''%FF", "filename*=UTF-8''%G1"]) {
      const want = await entries(await post(disposition(ext)).formData());
      assert.deepEqual(await entries(await readFormData(post(disposition(ext)))), want, ext);
      assert.equal(
        ((await readFormData(post(disposition(ext)))).get("f") as File).name,
        "plain.txt",
      );
    }
  });

  await t.step(
    "decodes fields as UTF-8 with U+FFFD for bad bytes, as Request.formData() does",
    async () => {
      const wire = field("a", "ok \xff\xfe end") + "--b--";
      const want = await entries(await post(wire).formData());
      assert.deepEqual(await entries(await readFormData(post(wire))), want);
      assert.equal((await readFormData(post(wire))).get("a"), "ok \ufffd\ufffd end");
    },
  );

  await t.step("a file without a Content-Type is application/octet-stream", async () => {
    const form = await readFormData(post(file("f", "x.bin", "abc") + "--b--"));
    assert.equal((form.get("f") as File).type, "application/octet-stream");
    // An empty Content-Type is none too (a review: File.type was "").
    const empty = await readFormData(post(file("f", "x.bin", "abc", "") + "--b--"));
    assert.equal((empty.get("f") as File).type, "application/octet-stream");
  });

  await t.step("reads from an event stream too", async () => {
    const events = parseMultipart(ReadableStream.from([bytes(field("a", "1") + "--b--")]), {
      boundary: "b",
    });
    assert.equal((await readFormData(events)).get("a"), "1");
  });

  await t.step("holds a field and a file that come in 1-byte chunks near their size", async () => {
    // Each value's chunks were held until its end: a view per chunk, about 200 bytes for a
    // chunk of 1 byte, which maxBufferedSize (counted in bytes) did not see: 15 MB retained
    // for this field of 128 KiB, and about 3.5 GB within the default maxBufferedSize of 16
    // MiB. Now about 0.3 MB.
    const size = 131_072;
    const used = retainedBytes; // after a full collection: what is held, not garbage
    // Each piece is followed by `size` chunks of "x", but the last.
    const pieces = [
      '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
      '\r\n--b\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n',
      "\r\n--b--\r\n",
    ].map(bytes);
    const one = bytes("x");
    const held: number[] = [];
    let step = 0, sent = 0, before = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) {
          if (step > 0) held.push(used() - before);
          if (step === pieces.length) return controller.close();
          before = used();
          controller.enqueue(pieces[step++]!);
          sent = step < pieces.length ? size : 0;
        } else {
          sent--;
          controller.enqueue(one);
        }
      },
    }, { highWaterMark: 0 });
    const form = await readFormData(parseMultipart(body, { boundary: "b" }));
    assert.equal(form.get("a"), "x".repeat(size));
    assert.equal((form.get("f") as File).size, size);
    for (const [i, grown] of held.slice(0, 2).entries()) {
      assert.ok(grown < 8_388_608, `${grown} bytes held for a value of ${size} bytes (${i})`);
    }
  });

  await t.step("maxFileSize: a file of N bytes is kept, N + 1 is a 413", async () => {
    const wire = (n: number) => file("f", "a.txt", "x".repeat(n), "text/plain") + "--b--";
    assert.equal(
      ((await readFormData(post(wire(10)), { maxFileSize: 10 })).get("f") as File).size,
      10,
    );
    await assert.rejects(
      readFormData(post(wire(11)), { maxFileSize: 10 }),
      isStatus(413, /file "a.txt" exceeds maxFileSize of 10 bytes/),
    );
  });

  await t.step(
    "maxBufferedSize: fields and files of N bytes in all pass, N + 1 is a 413",
    async () => {
      // Values, names, file names and types count: "a" + "12345" and "f" + "a" are 8 bytes.
      const wire = (n: number) => field("a", "12345") + file("f", "a", "x".repeat(n)) + "--b--";
      assert.equal((await readFormData(post(wire(5)), { maxBufferedSize: 13 })).get("a"), "12345");
      await assert.rejects(
        readFormData(post(wire(6)), { maxBufferedSize: 13 }),
        isStatus(413, /maxBufferedSize of 13/),
      );
      await assert.rejects(
        readFormData(post(field("a", "12345") + field("b", "123456") + "--b--"), {
          maxBufferedSize: 12,
        }),
        isStatus(413, /maxBufferedSize of 12/),
      );
      // Files count too, before a field or another file.
      for (const after of [field("b", "123456"), file("g", "b", "x".repeat(6))]) {
        await assert.rejects(
          readFormData(post(file("f", "a", "x".repeat(5)) + after + "--b--"), {
            maxBufferedSize: 13,
          }),
          isStatus(413, /maxBufferedSize of 13/),
        );
      }
      // A file over both limits, when they are equal, is named for its own.
      await assert.rejects(
        readFormData(post(file("f", "a.txt", "x".repeat(11)) + "--b--"), {
          maxFileSize: 10,
          maxBufferedSize: 16, // "f" and "a.txt" leave 10
        }),
        isStatus(413, /file "a.txt" exceeds maxFileSize of 10 bytes/),
      );
    },
  );

  await t.step("maxBufferedSize counts names, file names, types and onFile's strings", async () => {
    // The form keeps them: 990 fields with long names and empty values held 5.6 MB where
    // 990 bytes were counted (a review's measure).
    const name = "n".repeat(1000);
    const fields = (count: number) => {
      let wire = "";
      for (let i = 0; i < count; i++) wire += field(`${name}${i}`, "");
      return wire + "--b--";
    };
    assert.equal(
      (await readFormData(post(fields(9)), { maxBufferedSize: 9_009 })).get(`${name}0`),
      "",
    );
    await assert.rejects(
      readFormData(post(fields(10)), { maxBufferedSize: 9_999 }),
      isStatus(413, /maxBufferedSize of 9999/),
    );
    const typed = file("f", "a.bin", "", "application/x-" + "t".repeat(100)) + "--b--";
    await assert.rejects(readFormData(post(typed), { maxBufferedSize: 100 }), isStatus(413));
    const saved = (count: number) =>
      readFormData(
        post(Array.from({ length: count }, () => file("f", "a", "x")).join("") + "--b--"),
        {
          maxBufferedSize: 100,
          onFile: () => "s".repeat(30), // kept in the form: counted
        },
      );
    assert.equal((await saved(3)).getAll("f").length, 3); // 3 × (1 + 1 + 30)
    await assert.rejects(saved(4), isStatus(413));
  });

  await t.step("the parser's limits apply: maxFieldSize, maxFields", async () => {
    await assert.rejects(
      readFormData(post(field("a", "123456") + "--b--"), { maxFieldSize: 5 }),
      isStatus(413, /maxFieldSize of 5/),
    );
    await assert.rejects(
      readFormData(post(field("a", "1") + field("b", "2") + "--b--"), { maxFields: 1 }),
      isStatus(413, /maxFields of 1/),
    );
  });

  await t.step("a part that is not form-data is a 400 (RFC 7578 §4.2)", async () => {
    for (const type of ["attachment", "inline", "Form-Data-X"]) {
      await assert.rejects(
        readFormData(post(`--b\r\nContent-Disposition: ${type}; name="a"\r\n\r\nx\r\n--b--`)),
        isStatus(400, /not form-data/),
        type,
      );
    }
    const form = await readFormData(
      post('--b\r\nContent-Disposition: FORM-DATA ; name="a"\r\n\r\nx\r\n--b--'),
    );
    assert.deepEqual([...form], [["a", "x"]]);
  });

  await t.step("a part without a name is a 400 (RFC 7578 §4.2)", async () => {
    await assert.rejects(readFormData(post("--b\r\n\r\nx\r\n--b--")), isStatus(400, /no name/));
  });

  await t.step(
    "a malformed or truncated body is a 400, and the rest of it is cancelled",
    async () => {
      await assert.rejects(
        readFormData(post(field("a", "1") + "--b\r\nBad\r\n\r\n")),
        isStatus(400),
      );
      await assert.rejects(readFormData(post(field("a", "1"))), isStatus(400));
      let cancelled = false;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes("--b\r\n\r\nx\r\n--b\r\n"));
        },
        cancel() {
          cancelled = true;
        },
      });
      const events = parseMultipart(body, { boundary: "b" });
      await assert.rejects(readFormData(events), isStatus(400, /no name/));
      assert.equal(cancelled, true);
    },
  );

  await t.step(
    "onFile throwing cancels the source and errors the events, reader on the body or not",
    async () => {
      // A file part whose body comes in chunks the source gives only when pulled, and never
      // ends: only a cancel lets the source go.
      const source = () => {
        let chunk = 0;
        const cancelled = Promise.withResolvers<unknown>();
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(
              chunk++ === 0
                ? bytes('--b\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\n')
                : randomBytes(seeded(chunk), 1000),
            );
          },
          cancel: (reason) => cancelled.resolve(reason),
        }, { highWaterMark: 0 });
        return { stream, cancelled: cancelled.promise };
      };
      type Sniff = (
        body: ReadableStream<Uint8Array>,
      ) => Promise<ReadableStreamDefaultReader | null>;
      const sniffs: [string, Sniff][] = [
        ["with the body unlocked", () => Promise.resolve(null)],
        ["after getReader()", (body) => Promise.resolve(body.getReader())],
        ["after reading one chunk", async (body) => {
          const reader = body.getReader();
          assert.equal((await reader.read()).value?.length, 1000); // the magic bytes, say
          return reader;
        }],
      ];
      const outcomes: unknown[][] = [];
      for (const [when, sniff] of sniffs) {
        const { stream, cancelled } = source();
        const refusal = new HttpError(415, "Cannot read form data: not a PNG");
        let held: ReadableStreamDefaultReader | null = null;
        const events = parseMultipart(stream, { boundary: "b" });
        const form = readFormData(events, {
          async onFile(part) {
            held = await sniff(part.body);
            throw refusal;
          },
        });
        await assert.rejects(form, (error) => error === refusal, when);
        // Within a second: what became of the source, and of a reader still held on the body
        // (it must see the error rather than read on or wait forever).
        const within = async <T>(promise: Promise<T>): Promise<T | "timeout"> => {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const timeout = new Promise<"timeout">((resolve) => {
            timer = setTimeout(resolve, 1000, "timeout");
          });
          try {
            return await Promise.race([promise, timeout]);
          } finally {
            clearTimeout(timer);
          }
        };
        const reason = await within(cancelled);
        const reader = held as ReadableStreamDefaultReader | null;
        const body = reader === null
          ? "no reader"
          : await within(reader.read().then(() => "read on", (e) => e === refusal ? "errored" : e));
        // The events stream, handed back, is errored with the same reason (abortMultipart).
        const rest = await within(
          events.getReader().read().then(() => "read on", (e) => e === refusal ? "errored" : e),
        );
        outcomes.push([
          when,
          reason === "timeout" ? "never cancelled" : reason === refusal ? "cancelled" : reason,
          stream.locked ? "locked" : "released",
          body,
          rest,
        ]);
      }
      assert.deepEqual(
        outcomes,
        [
          ["with the body unlocked", "cancelled", "released", "no reader", "errored"],
          ["after getReader()", "cancelled", "released", "errored", "errored"],
          ["after reading one chunk", "cancelled", "released", "errored", "errored"],
        ],
      );
    },
  );

  await t.step(
    "onFile: its value is the entry (a string or a Blob); null leaves the file out",
    async () => {
      const wire = file("a", "a.txt", "AAA") + file("b", "b.txt", "BBB") +
        file("c", "c.txt", "CCC") +
        field("d", "field") + "--b--";
      const seen: string[] = [];
      const form = await readFormData(post(wire), {
        async onFile(part) {
          seen.push(part.filename!);
          if (part.name === "a") return `saved ${await new Response(part.body).text()}`;
          if (part.name === "b") return new Blob([await new Response(part.body).bytes()]);
          return null; // c: not read, skipped
        },
      });
      assert.deepEqual(seen, ["a.txt", "b.txt", "c.txt"]);
      assert.deepEqual(await entries(form), [
        ["a", "saved AAA"],
        ["b", ["b.txt", "", [66, 66, 66]]],
        ["d", "field"],
      ]);
    },
  );

  await t.step("onFile: files handed to it do not count against maxFileSize", async () => {
    const content = randomBytes(seeded(1), 100_000);
    const form = new FormData();
    form.append("f", new File([content as Uint8Array<ArrayBuffer>], "big.bin"));
    const got = await readFormData(post(form), {
      maxFileSize: 10,
      onFile: async (part) => new File([await new Response(part.body).bytes()], "renamed"),
    });
    const value = got.get("f") as File;
    assert.equal(value.name, "renamed");
    assert(sameBytes(new Uint8Array(await value.arrayBuffer()), content));
  });

  await t.step(
    "onFile: a file it leaves out after checking its first bytes, by a cancel",
    async () => {
      // A review: an onFile that read the first chunk, returned null and kept its reader left
      // readFormData waiting (documented: the form waits for a held body). Its cancel is what
      // the docs ask for; the rest of the form then comes.
      const head = file("f", "x.exe", "MZ").slice(0, -2); // the part's head and first bytes
      const body = ReadableStream.from(
        [head, " and the rest", "\r\n" + field("after", "yes") + "--b--"].map(bytes),
      );
      const form = await within(
        readFormData(parseMultipart(body, { boundary: "b" }), {
          onFile: async (part) => {
            const reader = part.body.getReader();
            await reader.read(); // the magic bytes: not a file we take
            await reader.cancel();
            return null;
          },
        }),
        3000,
        "readFormData",
      );
      assert.equal(form.get("after"), "yes");
      assert.equal(form.has("f"), false);
    },
  );

  await t.step("refuses invalid limits with a RangeError", async () => {
    await assert.rejects(readFormData(post("--b--"), { maxFileSize: -1 }), RangeError);
    await assert.rejects(readFormData(post("--b--"), { maxBufferedSize: 0.5 }), RangeError);
  });
});
