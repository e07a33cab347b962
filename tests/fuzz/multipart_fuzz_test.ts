// Copyright 2026 the wirestream authors. MIT license.
// Property and fuzz tests of the multipart parser: generated forms parsed by parseMultipart
// against the model they were built from, against npm:busboy, and against Request.formData();
// mutated bodies read as a reference written from RFC 2046 §5.1.1 and the parser's documented
// policies reads them (tests/_util/multipart_reference.ts), or refused with the same status.
// WIRESTREAM_FUZZ_RUNS sets the number of runs of each part (small by default, 10⁶ before a
// release); WIRESTREAM_FUZZ_SEED replays fast-check.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import busboyModule from "busboy";
import fc from "fast-check";
import {
  HttpError,
  type MultipartLimits,
  MultipartParser,
  parseMultipart,
  readFormData,
} from "@wirestream/wirestream";
import { within } from "../_util/async.ts";
import { type Outcome, parseSync } from "../_util/multipart.ts";
import {
  type ReferenceMultipartOutcome,
  referenceParseMultipart,
} from "../_util/multipart_reference.ts";
import { latin1, utf8 } from "../_util/http.ts";
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

/** A part of a generated form. */
interface FormPart {
  name: string;
  /** Null for a field. */
  filename: string | null;
  contentType: string | null;
  /** A field's content is valid UTF-8. */
  content: Uint8Array;
  /** Header names in lower case rather than as browsers write them. */
  lowerCase: boolean;
}

/** A generated multipart/form-data body and what it holds. */
interface Form {
  boundary: string;
  /** Whether the Content-Type quotes the boundary. */
  quoted: boolean;
  preamble: Uint8Array;
  parts: FormPart[];
  /** Transport padding after each boundary (the last is the close delimiter's). */
  padding: string[];
  epilogue: Uint8Array;
}

function contentTypeOf(form: Form): string {
  const plain = /^[0-9A-Za-z'+_\-.]+$/.test(form.boundary) && !form.quoted;
  return `multipart/form-data; boundary=${plain ? form.boundary : `"${form.boundary}"`}`;
}

/** Serializes a form (RFC 7578), with the padding and header case it asks for. */
function serialize(form: Form): Uint8Array {
  const pieces: Uint8Array[] = [];
  if (form.preamble.length > 0) pieces.push(form.preamble, utf8("\r\n"));
  for (const [i, part] of form.parts.entries()) {
    const cd = part.lowerCase ? "content-disposition" : "Content-Disposition";
    const ct = part.lowerCase ? "content-type" : "Content-Type";
    const file = part.filename === null ? "" : `; filename="${part.filename}"`;
    const type = part.contentType === null ? "" : `${ct}: ${part.contentType}\r\n`;
    pieces.push(
      utf8(`${i === 0 ? "" : "\r\n"}--${form.boundary}${form.padding[i]}\r\n`),
      utf8(`${cd}: form-data; name="${part.name}"${file}\r\n${type}\r\n`),
      part.content,
    );
  }
  const close = `--${form.boundary}--${form.padding[form.parts.length]}`;
  pieces.push(utf8(`${form.parts.length === 0 ? "" : "\r\n"}${close}`));
  if (form.epilogue.length > 0) pieces.push(utf8("\r\n"), form.epilogue);
  return concat(pieces);
}

/** Whether `haystack` holds `needle`. */
function holds(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(needle) !== -1;
}

/**
 * Whether the form is well-formed: no content holds its delimiter, nor begins with the
 * boundary (RFC 2046 §5.1.1: not even as the prefix of a line).
 */
function wellFormed(form: Form): boolean {
  const delimiter = utf8(`\r\n--${form.boundary}`);
  const contents = [form.preamble, ...form.parts.map((p) => p.content)];
  return contents.every((c) => !holds(concat([utf8("\r\n"), c]), delimiter));
}

// Arbitraries.

const BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?";
const boundaryArb = fc.oneof(
  fc.stringMatching(/^-{0,20}[0-9A-Za-z]{1,30}$/), // the shape of browsers' and curl's
  fc.tuple(
    fc.array(fc.constantFrom(...BCHARS, " "), { maxLength: 69 }),
    fc.constantFrom(...BCHARS),
  ).map(([body, last]) => body.join("") + last),
);
/** Names safe for every parser: Request.formData() splits on ";" and "=" and keeps quotes. */
const simpleNameArb = fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/);
/**
 * Names with anything a quoted string may hold unescaped, non-ASCII included; not empty, which
 * busboy reports as no name.
 */
const richNameArb = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }).filter((s) =>
  // deno-lint-ignore no-control-regex -- control characters are what is kept out
  !/["\\\x00-\x1f\x7f]/.test(s)
);
const typeArb = fc.constantFrom(null, "text/plain", "application/octet-stream", "image/png");

/** Content bytes rich in what delimiter searches stumble on. */
function trickyArb(boundary: string): fc.Arbitrary<Uint8Array> {
  const pieces = [
    "\r",
    "\n",
    "\r\n",
    "-",
    "--",
    "\r\n--",
    `--${boundary}`, // a boundary not at a line start is content
    `\n--${boundary}`, // nor after a bare LF
    `\r--${boundary}`,
    `\r\n--${boundary.slice(0, -1)}`, // the delimiter cut short
  ].map(utf8);
  return fc.array(
    fc.oneof(fc.constantFrom(...pieces), fc.uint8Array({ maxLength: 40 })),
    { maxLength: 12 },
  ).map(concat);
}

function formArb(options: { rich: boolean; extras: boolean }): fc.Arbitrary<Form> {
  return boundaryArb.chain((boundary) => {
    const nameArb = options.rich ? fc.oneof(simpleNameArb, richNameArb) : simpleNameArb;
    const partArb = fc.record({
      name: nameArb,
      filename: fc.option(nameArb, { nil: null }),
      contentType: typeArb,
      text: fc.string({ unit: "grapheme", maxLength: 60 }),
      bytes: fc.oneof(fc.uint8Array({ maxLength: 400 }), trickyArb(boundary)),
      lowerCase: fc.boolean(),
    }).map(({ name, filename, contentType, text, bytes, lowerCase }): FormPart => ({
      name,
      filename,
      // A field's Content-Type would make busboy report it; files get one or none.
      contentType: filename === null ? null : contentType,
      content: filename === null ? utf8(text) : bytes,
      lowerCase,
    }));
    const paddingArb = options.extras ? fc.stringMatching(/^[ \t]{0,3}$/) : fc.constant("");
    return fc.record({
      boundary: fc.constant(boundary),
      quoted: fc.boolean(),
      preamble: options.extras ? fc.uint8Array({ maxLength: 30 }) : fc.constant(new Uint8Array(0)),
      parts: fc.array(partArb, { maxLength: 6 }),
      padding: fc.array(paddingArb, { minLength: 7, maxLength: 7 }),
      epilogue: options.extras ? fc.uint8Array({ maxLength: 30 }) : fc.constant(new Uint8Array(0)),
    });
  }).filter(wellFormed);
}

// Parsers.

/** A part as every parser reports it, contents as Latin-1 text. */
interface Entry {
  name: string;
  filename: string | null;
  contentType: string;
  content: string;
}

function model(form: Form): Entry[] {
  return form.parts.map((p) => ({
    name: p.name,
    filename: p.filename,
    contentType: p.contentType ?? "text/plain",
    content: latin1(p.content),
  }));
}

/** parseMultipart over `chunks`, with the preamble and epilogue it reports. */
async function ours(form: Form, chunks: Uint8Array[]) {
  const entries: Entry[] = [];
  let preamble = "", epilogue = "";
  for await (const event of parseMultipart(ReadableStream.from(chunks), contentTypeOf(form))) {
    if (event.type === "preamble") preamble = latin1(event.body);
    else if (event.type === "epilogue") epilogue = latin1(event.body);
    else {
      entries.push({
        name: event.name!,
        filename: event.filename,
        contentType: event.contentType ?? "text/plain",
        content: latin1(await new Response(event.body).bytes()),
      });
    }
  }
  return { entries, preamble, epilogue };
}

interface BusboyStream {
  on(event: string, listener: (data: Buffer) => void): void;
}
interface Busboy {
  on(event: "field", f: (name: string, value: string, info: { mimeType: string }) => void): void;
  on(event: "file", f: (name: string, s: BusboyStream, info: BusboyFileInfo) => void): void;
  on(event: "close", f: () => void): void;
  on(event: "error", f: (error: Error) => void): void;
  write(chunk: Buffer): boolean;
  end(): void;
}
interface BusboyFileInfo {
  filename: string;
  mimeType: string;
}
const busboy = busboyModule as unknown as (config: object) => Busboy;

/** npm:busboy over `chunks`, in its order of events. */
function theirs(form: Form, chunks: Uint8Array[]): Promise<Entry[]> {
  const parser = busboy({
    headers: { "content-type": contentTypeOf(form) },
    defParamCharset: "utf8",
    preservePath: true,
    limits: { fieldSize: Infinity, fileSize: Infinity, fields: Infinity, files: Infinity },
  });
  const entries: Entry[] = [];
  const files: Promise<void>[] = [];
  parser.on("field", (name, value) => {
    entries.push({ name, filename: null, contentType: "text/plain", content: latin1(utf8(value)) });
  });
  parser.on("file", (name, stream, info) => {
    const entry: Entry = { name, filename: info.filename, contentType: info.mimeType, content: "" };
    entries.push(entry);
    files.push(
      new Promise((resolve) => {
        stream.on("data", (data) => (entry.content += data.toString("latin1")));
        stream.on("end", () => resolve());
      }),
    );
  });
  const closed = new Promise<void>((resolve, reject) => {
    parser.on("close", resolve);
    parser.on("error", reject);
  });
  for (const chunk of chunks) parser.write(Buffer.from(chunk));
  parser.end();
  return closed.then(() => Promise.all(files)).then(() => entries);
}

/** The entries of a FormData, files as [name, type, Latin-1 content]. */
async function formEntries(form: FormData): Promise<[string, string | string[]][]> {
  const out: [string, string | string[]][] = [];
  for (const [name, value] of form) {
    out.push([
      name,
      typeof value === "string"
        ? value
        : [value.name, value.type, latin1(new Uint8Array(await value.arrayBuffer()))],
    ]);
  }
  return out;
}

function request(form: Form, body: Uint8Array): Request {
  return new Request("http://localhost/", {
    method: "POST",
    headers: { "content-type": contentTypeOf(form) },
    body: body as Uint8Array<ArrayBuffer>,
  });
}

Deno.test("multipart properties", async (t) => {
  await t.step("parseMultipart gives the parts a form was built from, any chunking", async () => {
    await fc.assert(
      fc.asyncProperty(formArb({ rich: true, extras: true }), fc.integer(), async (form, seed) => {
        const wire = serialize(form);
        const got = await ours(form, split(wire, seeded(seed), 64));
        assert.deepEqual(got.entries, model(form));
        assert.equal(got.preamble, latin1(form.preamble));
        assert.equal(got.epilogue, latin1(form.epilogue));
      }),
      { numRuns: fuzzRuns(200), seed: FC_SEED },
    );
  });

  await t.step("parseMultipart agrees with npm:busboy", async () => {
    await fc.assert(
      fc.asyncProperty(formArb({ rich: true, extras: false }), fc.integer(), async (form, seed) => {
        const wire = serialize(form);
        const random = seeded(seed);
        const [mine, busboys] = await Promise.all([
          ours(form, split(wire, random, 200)),
          theirs(form, split(wire, random, 200)),
        ]);
        assert.deepEqual(mine.entries, busboys);
        assert.deepEqual(mine.entries, model(form)); // and both are right
      }),
      { numRuns: fuzzRuns(200), seed: FC_SEED },
    );
  });

  await t.step("readFormData agrees with Request.formData()", async () => {
    await fc.assert(
      fc.asyncProperty(formArb({ rich: false, extras: false }), async (form) => {
        const wire = serialize(form);
        const want = await formEntries(await request(form, wire).formData());
        assert.deepEqual(await formEntries(await readFormData(request(form, wire))), want);
      }),
      { numRuns: fuzzRuns(100), seed: FC_SEED },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Mutated bodies.

const LIMITS: Required<MultipartLimits> = {
  maxParts: 8,
  maxHeaderSize: 256,
  maxPartSize: 2000,
  maxFieldSize: 500,
  maxFields: 4,
  maxPreambleSize: 100,
  maxTotalSize: 10_000,
};

/** Transport padding now and then, a long run (near maxHeaderSize) more rarely. */
function padding(random: () => number): string {
  const length = random() < 0.8
    ? 0
    : random() < 0.8
    ? between(random, 1, 3)
    : between(random, 180, 260);
  let text = "";
  for (let i = 0; i < length; i++) text += random() < 0.5 ? " " : "\t";
  return text;
}

/**
 * A `name` or `filename` parameter: quoted mostly, now and then bare, with backslashes (no
 * escapes in form-data), extended, or extended in a way that cannot be decoded.
 */
function parameter(random: () => number, name: string, value: string): string {
  const form = random();
  if (form < 0.8) return `${name}="${value}"`;
  if (form < 0.9) return `${name}=${value}`;
  if (form < 0.95) return `${name}="C:\\dir\\${value}%22\\"`; // every "\\" kept, %22 as sent
  // "é" and the value (RFC 8187): read for filename*, a parameter of its own for name*
  if (form < 0.975) return `${name}*=UTF-8''%C3%A9${value}`;
  return `${name}="${value}"; ${name}*=koi8-r''${value}`; // ignored: the plain one stands
}

/**
 * A valid body to mutate: up to 9 parts (maxParts is 8), their content tricky, now and then
 * transport padding, a Content-Type, parameters in each form, and an epilogue.
 */
function validBody(random: () => number, boundary: string): Uint8Array {
  let text = random() < 0.3 ? "preamble\r\n" : "";
  for (let n = random() < 0.1 ? between(random, 7, 9) : between(random, 0, 4); n > 0; n--) {
    const file = random() < 0.5 ? `; ${parameter(random, "filename", `f${n}.bin`)}` : "";
    const type = random() < 0.2 ? "Content-Type: \t text/plain \r\n" : "";
    text += `--${boundary}${padding(random)}\r\n${type}`;
    text += `Content-Disposition: form-data; ${parameter(random, "name", `p${n}`)}${file}\r\n\r\n`;
    text += latin1(randomBytes(random, between(random, 0, 300))) + "\r\n";
  }
  const epilogue = random() < 0.2 ? "\r\nepilogue" : "\r\n";
  return Uint8Array.from(
    text + `--${boundary}--${padding(random)}${epilogue}`,
    (c) => c.charCodeAt(0),
  );
}

/** Applies one random mutation. */
function mutate(random: () => number, bytes: Uint8Array, boundary: string): Uint8Array {
  const at = between(random, 0, bytes.length);
  const insert = (piece: Uint8Array) => concat([bytes.subarray(0, at), piece, bytes.subarray(at)]);
  switch (between(random, 0, 6)) {
    case 0: { // flip a byte
      const out = bytes.slice();
      if (out.length > 0) out[Math.min(at, out.length - 1)]! ^= 1 << between(random, 0, 7);
      return out;
    }
    case 1: // cut short
      return bytes.subarray(0, at);
    case 2: // delete a run
      return concat([bytes.subarray(0, at), bytes.subarray(at + between(random, 1, 20))]);
    case 3: // a line break, bare or not
      return insert(utf8(["\r\n", "\n", "\r"][between(random, 0, 2)]!));
    case 4: // a delimiter, whole or broken
      return insert(
        utf8(`\r\n--${boundary}${["", "--", "\r\n", " x", "-"][between(random, 0, 4)]}`),
      );
    case 5: // a header line
      return insert(
        utf8(["A: b\r\n", "Bad line\r\n", "Content-Disposition: x\r\n"][between(random, 0, 2)]!),
      );
    default: // repeat a run
      return insert(bytes.subarray(at, at + between(random, 1, 200)));
  }
}

/** A boundary, and a valid body with it mutated 1 to 4 times. */
function mutatedBody(random: () => number): [string, Uint8Array] {
  const boundary = random() < 0.5 ? "b" : "----formdata-undici-0123456789";
  let wire = validBody(random, boundary);
  for (let n = between(random, 1, 4); n > 0; n--) wire = mutate(random, wire, boundary);
  return [boundary, wire];
}

/**
 * Asserts that parsing gave what the reference reads: the same preamble, parts and epilogue,
 * or a refusal with a status it allows, after the same parts; the last part's body may then
 * be cut short if that part was still open.
 */
function assertAsReference(got: Outcome, want: ReferenceMultipartOutcome, context: string) {
  const { refuse, open, ...whole } = want;
  if (refuse.length === 0) return assert.deepEqual(got, whole, context);
  assert(
    got.status !== null && refuse.includes(got.status),
    `${context}: status ${got.status}, want ${refuse.join(" or ")}`,
  );
  assert.deepEqual(
    { ...got, status: null, parts: got.parts.map((p, i) => ({ ...p, body: i })) },
    { ...whole, status: null, parts: whole.parts.map((p, i) => ({ ...p, body: i })) },
    context,
  );
  got.parts.forEach((part, i) => {
    const body = whole.parts[i]!.body;
    if (open && i === got.parts.length - 1) {
      assert(body.startsWith(part.body), `${context}: part ${i + 1} is not a prefix`);
    } else assert.equal(part.body, body, `${context}: part ${i + 1}`);
  });
}

Deno.test("multipart fuzz", async (t) => {
  await t.step("mutated bodies give what the RFC 2046 reference reads, or its refusal", () => {
    const runs = fuzzRuns(3000);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const [boundary, wire] = mutatedBody(random);
      const want = referenceParseMultipart(wire, boundary, LIMITS);
      const context = `seed ${seed}: ${JSON.stringify(latin1(wire))}`;
      assertAsReference(parseSync([wire], boundary, LIMITS), want, `${context}, one chunk`);
      const chunks = split(wire, random, 50);
      assertAsReference(parseSync(chunks, boundary, LIMITS), want, `${context}, chunked`);
    }
  });

  await t.step("mutated bodies end in parts or a 400/413, within the limits", () => {
    const runs = fuzzRuns(3000);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const [boundary, wire] = mutatedBody(random);
      const parser = new MultipartParser(boundary, LIMITS);
      let parts = 0, size = 0, delivered = 0;
      const sink = {
        preamble(body: Uint8Array) {
          assert(body.length <= LIMITS.maxPreambleSize!, `seed ${seed}: preamble`);
        },
        partStart() {
          parts++;
          size = 0;
        },
        partData(data: Uint8Array) {
          delivered += data.length;
          assert((size += data.length) <= LIMITS.maxPartSize!, `seed ${seed}: part size`);
        },
        partEnd() {},
        epilogue(body: Uint8Array) {
          assert(body.length <= LIMITS.maxPreambleSize!, `seed ${seed}: epilogue`);
        },
      };
      try {
        for (const chunk of split(wire, random, 50)) {
          for (let at = 0; at < chunk.length;) at += parser.push(chunk.subarray(at), sink);
        }
        parser.end(sink);
      } catch (error) {
        if (!(error instanceof HttpError) || ![400, 413].includes(error.status)) {
          assert.fail(`seed ${seed}: threw ${error instanceof Error ? error.stack : error}`);
        }
      }
      assert(parts <= LIMITS.maxParts!, `seed ${seed}: ${parts} parts`);
      assert(delivered <= wire.length, `seed ${seed}: more data than input`);
    }
  });

  await t.step("the stream form ends too, in parts or a typed error, never hanging", async () => {
    const runs = fuzzRuns(300);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      let wire = validBody(random, "b");
      for (let n = between(random, 1, 3); n > 0; n--) wire = mutate(random, wire, "b");
      const events = parseMultipart(ReadableStream.from(split(wire, random, 80)), {
        boundary: "b",
        ...LIMITS,
      });
      const read = (async () => {
        for await (const event of events) {
          if (event.type === "part" && random() < 0.7) await new Response(event.body).bytes();
        }
      })();
      await within(read, 5000, `seed ${seed}`).catch((error) => {
        if (!(error instanceof HttpError) || ![400, 413].includes(error.status)) {
          assert.fail(`seed ${seed}: threw ${error instanceof Error ? error.stack : error}`);
        }
      });
    }
  });
});
