// Copyright 2026 the wirestream authors. MIT license.
/**
 * Multipart bodies (RFC 2046 §5.1, RFC 7578): Ktor's `parseMultipart` as a stream of events
 * whose parts carry their bodies as streams, over a state machine with no streams or promises.
 *
 * Line ends are CRLF only: see {@linkcode MultipartParser} for the bare-LF policy.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { latin1Text } from "../http/_latin1.ts";
import { HttpError } from "../http/error.ts";
import { parseFieldLines, TCHAR } from "../http/head.ts";
import { ownCopy, parseParameterized, quote } from "./_params.ts";
import { BoundarySearch } from "./search.ts";

/** The limits of a multipart body, with safe defaults; exceeding one is a 413. */
export interface MultipartLimits {
  /**
   * The most parts in a body.
   *
   * @default {1000}
   */
  maxParts?: number;
  /**
   * The largest header section of one part, in bytes: its field lines with their CRLFs, the
   * CRLF of the empty line that ends it, and any transport padding after the boundary before
   * it (so a part with no field lines needs 2).
   *
   * @default {8192}
   */
  maxHeaderSize?: number;
  /**
   * The largest body of one part, in bytes (a file's content).
   *
   * @default {134217728}
   */
  maxPartSize?: number;
  /**
   * The largest multipart body, in bytes: everything, preamble, delimiters, headers and
   * epilogue included. Checked against a declared length before reading, then as bytes come.
   *
   * @default {134217728}
   */
  maxTotalSize?: number;
  /**
   * The most form fields: parts with a `name` and no `filename`.
   *
   * @default {1000}
   */
  maxFields?: number;
  /**
   * The largest body of a form field (a part with a `name` and no `filename`), in bytes.
   *
   * @default {1048576}
   */
  maxFieldSize?: number;
  /**
   * The largest preamble, and the largest epilogue (each is gathered into one event), in
   * bytes.
   *
   * @default {16384}
   */
  maxPreambleSize?: number;
}

/** Options of {@linkcode MultipartParser}: the limits and the body's length. */
export interface MultipartParserOptions extends MultipartLimits {
  /**
   * The body's exact length in bytes, when known (Ktor's `totalLength`): a body that runs
   * past it, or ends short of it, is a 400. `null` when it is not known (`Infinity` is a
   * `RangeError`).
   */
  totalLength?: number | null;
}

/** A part's head: its header fields and what they say. */
export interface MultipartHead {
  /** The part's header fields (values are byte strings, one character per byte). */
  headers: Headers;
  /**
   * The `name` parameter of its `Content-Disposition` (RFC 7578 §4.2), read as UTF-8 where it
   * is valid UTF-8, or null. Browsers write `"` as `%22` and CR and LF as `%0D` and `%0A` in
   * names and filenames; those escapes are left as they are, as `Request.formData()` leaves
   * them in Deno 2.9. A backslash is not an escape: a quoted name or filename runs to the next
   * `"` and keeps every `\` (WHATWG HTML's form-data encoding and parser), so `a\b` stays
   * `a\b` and `name="a\"b"` is a 400 (`curl --form-escape` and Go's `mime/multipart`, with
   * the many clients that copy its writer, write such escapes: from them, a name or filename
   * with a `"` is a 400 and one with a `\` arrives with it doubled, as in Deno's `formData()`;
   * busboy reads the escapes). The body is
   * refused rather than read again with escapes: a second reading changed what other parsers
   * see (`name="doc\"; filename=\"evil.html"` is a file to Deno's `formData()`, and a field
   * when read with escapes), and a part that is a file to one parser and a field to another
   * is how filters are slipped past.
   */
  name: string | null;
  /**
   * The `filename*` (RFC 8187) or else `filename` parameter of its `Content-Disposition`, as
   * sent (a path included, if any, such as `C:\dir\f.txt`), or null. A `filename*` that
   * cannot be decoded (malformed, quoted, a charset other than UTF-8 or ISO-8859-1, bad UTF-8)
   * is ignored: `filename` stands, or null if there is none (RFC 6266 §4.3; RFC 7578 §4.2 forbids
   * `filename*` in form-data). A part with a filename is a file. It comes from the peer: never
   * use it as a path as it is. A parameter given twice (two `filename`s) makes the body a 400,
   * where busboy takes the first: which one the sender meant cannot be told.
   */
  filename: string | null;
  /**
   * Its `Content-Type`, or null (RFC 7578 §4.4: then `text/plain`). A part with two is a 400,
   * as with two `Content-Disposition` fields: Deno's `formData()` takes the last, busboy the
   * first.
   */
  contentType: string | null;
}

/** Where {@linkcode MultipartParser.push} delivers what it parses, in order. */
export interface MultipartSink {
  /** The preamble, once whole; only when it is not empty. */
  preamble(body: Uint8Array): void;
  /** A part begins: its head was read. */
  partStart(head: MultipartHead): void;
  /** The next bytes of the current part's body (views of the input where possible). */
  partData(bytes: Uint8Array): void;
  /** The current part's body ended. */
  partEnd(): void;
  /** The epilogue, at the end; only when it is not empty. */
  epilogue(body: Uint8Array): void;
}

// States.
const PREAMBLE = 0, // before the first boundary
  AFTER = 1, // just past a delimiter's boundary
  DASH = 2, // past a boundary and one "-"
  PAD = 3, // in transport padding after a boundary
  LINE_LF = 4, // past the CR that ends a boundary line
  HEAD = 5, // in a part's header section
  BODY = 6, // in a part's body
  CLOSE_PAD = 7, // past a close delimiter, in its transport padding
  CLOSE_LF = 8, // past the CR after a close delimiter
  EPILOGUE = 9, // after the close delimiter's line
  FAILED = 10;
const CR = 13, LF = 10, SP = 32, HTAB = 9, HYPHEN = 45, COLON = 58, DEL = 127;
const NO_BYTES = new Uint8Array(0);

/**
 * Decodes a head that is all ASCII, where UTF-8 and Latin-1 agree: about three times as fast
 * as {@linkcode latin1Text} on a typical part head.
 */
const ascii = new TextDecoder();

// boundary := 0*69<bchars> bcharsnospace (RFC 2046 §5.1.1)
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * Whether `boundary` is a valid multipart boundary (RFC 2046 §5.1.1): 1 to 70 characters from
 * `0-9 A-Z a-z ' ( ) + _ , - . / : = ?` and space, not ending with a space.
 *
 * @param boundary The boundary, without quotes.
 * @returns Whether it is valid.
 *
 * @example Checking boundaries
 * ```ts
 * import { isValidBoundary } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isValidBoundary("----WebKitFormBoundary7MA4YWxkTrZu0gW"), true);
 * assert.equal(isValidBoundary("ends with a space "), false);
 * assert.equal(isValidBoundary("x".repeat(71)), false);
 * ```
 */
export function isValidBoundary(boundary: string): boolean {
  return BOUNDARY.test(boundary);
}

/** A part's head, its `Headers` built on first use (most consumers never ask). */
class Head implements MultipartHead {
  readonly name: string | null;
  readonly filename: string | null;
  readonly contentType: string | null;
  #fields: [string, string][];
  #headers: Headers | null = null;

  constructor(
    fields: [string, string][],
    name: string | null,
    filename: string | null,
    contentType: string | null,
  ) {
    this.#fields = fields;
    this.name = name;
    this.filename = filename;
    this.contentType = contentType;
  }

  get headers(): Headers {
    if (this.#headers === null) {
      this.#headers = new Headers();
      for (const [name, value] of this.#fields) this.#headers.append(name, value);
    }
    return this.#headers;
  }
}

/** What went wrong, as a 400. */
function malformed(why: string): HttpError {
  return new HttpError(400, `Cannot parse multipart body: ${why}`);
}

function byteName(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

/**
 * The multipart state machine, with no streams or promises (the codec under
 * {@linkcode parseMultipart}): it finds the delimiters of RFC 2046 §5.1.1 (`CRLF--boundary`,
 * optional transport padding, CRLF; or `--` for the last one), parses each part's header
 * section, and hands the bytes in between on as views of the input. The body may begin with
 * the boundary itself or with a preamble; what follows the close delimiter's line is the
 * epilogue. Every limit of {@linkcode MultipartLimits} is checked as bytes arrive, before
 * anything past it is delivered.
 *
 * {@linkcode push} stops just after a part's head, so that a caller can set up that part
 * before its body flows: push the rest of the chunk again.
 *
 * **Line ends** are CRLF. A bare LF or CR in a part's header section or after a boundary is a
 * 400; `LF--boundary` inside a part's content is content (a delimiter begins with CRLF), so a
 * body written with bare LFs throughout fails for want of a boundary rather than being read
 * one way here and another elsewhere. A boundary must not begin a line of content (RFC 2046
 * §5.1.1): right after a part's header section it ends the part, empty (RFC 2046's
 * `body-part` without its optional body, as Deno's `Request.formData()` reads it; busboy 1.6
 * reads the next part's head as that part's content); followed by anything but `--`, transport
 * padding or CRLF it is a 400. A field line folded onto the next (obs-fold) is a 400, and so is
 * anything after a close delimiter but transport padding and a CRLF (`--b--junk`), even once
 * every part was delivered.
 *
 * **Ownership**: part data is delivered as views of the input chunks; the preamble and
 * epilogue are copies.
 *
 * @example Parsing a body in one chunk
 * ```ts
 * import { type MultipartHead, MultipartParser } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const body = new TextEncoder().encode(
 *   "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XyZ--\r\n",
 * );
 * const heads: MultipartHead[] = [];
 * let text = "";
 * const parser = new MultipartParser("XyZ");
 * const sink = {
 *   preamble() {},
 *   partStart: (head: MultipartHead) => void heads.push(head),
 *   partData: (bytes: Uint8Array) => void (text += new TextDecoder().decode(bytes)),
 *   partEnd() {},
 *   epilogue() {},
 * };
 * for (let at = 0; at < body.length;) at += parser.push(body.subarray(at), sink);
 * parser.end(sink);
 * assert.deepEqual([heads[0]!.name, text], ["a", "hello"]);
 * ```
 */
export class MultipartParser {
  /** The boundary. */
  readonly boundary: string;
  readonly #search: BoundarySearch;
  readonly #maxParts: number;
  readonly #maxHeaderSize: number;
  readonly #maxPartSize: number;
  readonly #maxTotalSize: number;
  readonly #maxFields: number;
  readonly #maxFieldSize: number;
  readonly #maxPreambleSize: number;
  readonly #totalLength: number | null;
  #state = PREAMBLE;
  #sink: MultipartSink | null = null;
  /** Bytes consumed so far. */
  #received = 0;
  #parts = 0;
  #fields = 0;
  /** The current part's body bytes so far, and their limit. */
  #partSize = 0;
  #partLimit = 0;
  #isField = false;
  /** The header section: its lines, each ended by LF, CRs dropped. */
  #head: Uint8Array = new Uint8Array(256);
  #headLength = 0;
  /** Wire bytes of the header section so far (padding and CRLFs included). */
  #headSize = 0;
  #lineLength = 0;
  #sawCR = false;
  /** The bitwise OR of the header section's bytes: bit 7 set when one is not ASCII. */
  #headBits = 0;
  /**
   * The preamble or the epilogue, gathered in [0, #gatheredSize): one buffer that grows by
   * doubling, not a copy per chunk (one of 1 byte cost about 220 bytes).
   */
  #gathered: Uint8Array = NO_BYTES;
  #gatheredSize = 0;

  /**
   * Creates a parser.
   *
   * @param boundary The boundary, without quotes or leading dashes.
   * @param options The limits and the total length.
   * @throws {RangeError} For an invalid boundary (see {@linkcode isValidBoundary}), limit or
   * `totalLength`.
   */
  constructor(boundary: string, options: MultipartParserOptions = {}) {
    if (!isValidBoundary(boundary)) {
      throw new RangeError(`Invalid boundary: ${quote(boundary)} is not 1 to 70 valid characters`);
    }
    this.boundary = boundary;
    const needle = new Uint8Array(4 + boundary.length);
    needle.set([CR, LF, HYPHEN, HYPHEN]);
    for (let i = 0; i < boundary.length; i++) needle[4 + i] = boundary.charCodeAt(i);
    this.#search = new BoundarySearch(needle);
    this.#search.prime(2); // the first boundary may open the body: its CRLF is implied
    this.#maxParts = checkLimit("maxParts", options.maxParts ?? 1000);
    this.#maxHeaderSize = checkLimit("maxHeaderSize", options.maxHeaderSize ?? 8192);
    this.#maxPartSize = checkLimit("maxPartSize", options.maxPartSize ?? 134_217_728);
    this.#maxTotalSize = checkLimit("maxTotalSize", options.maxTotalSize ?? 134_217_728);
    this.#maxFields = checkLimit("maxFields", options.maxFields ?? 1000);
    this.#maxFieldSize = checkLimit("maxFieldSize", options.maxFieldSize ?? 1_048_576);
    this.#maxPreambleSize = checkLimit("maxPreambleSize", options.maxPreambleSize ?? 16_384);
    const total = options.totalLength ?? null;
    if (total !== null) checkLength("totalLength", total);
    if (total !== null && total > this.#maxTotalSize) {
      throw new HttpError(
        413,
        `Cannot parse multipart body: its length of ${total} bytes exceeds maxTotalSize of ${this.#maxTotalSize} bytes`,
      );
    }
    this.#totalLength = total;
  }

  /** The bytes consumed so far. */
  get received(): number {
    return this.#received;
  }

  /** Whether the close delimiter was read (what follows is the epilogue). */
  get closed(): boolean {
    return this.#state >= CLOSE_PAD && this.#state !== FAILED;
  }

  /**
   * Parses what it can of `chunk`, handing what it finds to `sink`.
   *
   * @param chunk The next bytes of the body.
   * @param sink Receives the preamble, the parts and their data.
   * @returns How many bytes of `chunk` it consumed: all of them, unless a part's head ended
   * inside it; then push the rest again once that part is set up.
   * @throws {HttpError} 400 for a malformed body or one longer than `totalLength`, 413 over a
   * limit. The parser is then unusable.
   */
  push(chunk: Uint8Array, sink: MultipartSink): number {
    if (this.#state === FAILED) throw malformed("the parser failed earlier");
    this.#sink = sink;
    try {
      const after = this.#received + chunk.length;
      if (this.#totalLength !== null && after > this.#totalLength) {
        throw malformed(`it runs past its length of ${this.#totalLength} bytes`);
      }
      if (after > this.#maxTotalSize) {
        throw new HttpError(
          413,
          `Cannot parse multipart body: it exceeds maxTotalSize of ${this.#maxTotalSize} bytes`,
        );
      }
      const used = this.#run(chunk);
      this.#received += used;
      return used;
    } catch (error) {
      this.#state = FAILED;
      throw error;
    }
  }

  /**
   * Checks that the body ended properly, and hands on the epilogue.
   *
   * @param sink Receives the epilogue.
   * @throws {HttpError} 400 when the body ended before its close delimiter (inside a part's
   * body, in a head, or with no boundary at all), or short of `totalLength`.
   */
  end(sink: MultipartSink): void {
    const state = this.#state;
    if (state === FAILED) throw malformed("the parser failed earlier");
    this.#state = FAILED; // nothing may follow the end
    if (state < CLOSE_PAD || state === CLOSE_LF) {
      throw malformed(
        state === PREAMBLE
          ? "no boundary found"
          : state === BODY
          ? `it ended inside the body of part ${this.#parts}, before a boundary`
          : state === HEAD
          ? `it ended inside the header section of part ${this.#parts}`
          : "it ended after a boundary, before its line ended",
      );
    }
    if (this.#totalLength !== null && this.#received !== this.#totalLength) {
      throw malformed(
        `it ended after ${this.#received} of its ${this.#totalLength} bytes`,
      );
    }
    if (this.#gatheredSize > 0) sink.epilogue(this.#takeGathered());
  }

  #run(chunk: Uint8Array): number {
    const end = chunk.length;
    let i = 0;
    while (i < end) {
      switch (this.#state) {
        case BODY: {
          const at = this.#search.push(chunk, i, this.#onData);
          if (at === -1) return end;
          i = at;
          this.#sink!.partEnd();
          this.#afterBoundary();
          break;
        }
        case PREAMBLE: {
          const at = this.#search.push(chunk, i, this.#onPreamble);
          if (at === -1) return end;
          i = at;
          if (this.#gatheredSize > 0) this.#sink!.preamble(this.#takeGathered());
          this.#afterBoundary();
          break;
        }
        case AFTER: {
          const c = chunk[i++]!;
          if (c === HYPHEN) this.#state = DASH;
          else if (c === CR) this.#state = LINE_LF;
          else if (c === SP || c === HTAB) {
            this.#countPadding();
            this.#state = PAD;
          } else {
            throw malformed(
              `a boundary is followed by ${byteName(c)}, not CRLF, "--" or transport padding`,
            );
          }
          break;
        }
        case DASH: {
          const c = chunk[i++]!;
          if (c !== HYPHEN) {
            throw malformed(`a boundary is followed by "-" and ${byteName(c)}, not "--"`);
          }
          this.#state = CLOSE_PAD;
          break;
        }
        case PAD: {
          const c = chunk[i++]!;
          if (c === CR) this.#state = LINE_LF;
          else if (c === SP || c === HTAB) this.#countPadding();
          else throw malformed(`transport padding is followed by ${byteName(c)}, not CRLF`);
          break;
        }
        case LINE_LF: {
          if (chunk[i++] !== LF) throw malformed("a boundary line ends with a bare CR");
          if (++this.#parts > this.#maxParts) {
            throw new HttpError(
              413,
              `Cannot parse multipart body: it has more than maxParts of ${this.#maxParts} parts`,
            );
          }
          this.#headLength = this.#lineLength = this.#headBits = 0;
          this.#state = HEAD;
          break;
        }
        case HEAD: {
          const at = this.#readHead(chunk, i);
          if (at === -1) return end;
          this.#startPart();
          this.#state = BODY;
          // The blank line's CRLF may serve as the next delimiter's: "--boundary" right after
          // the header section ends the part empty (RFC 2046 forbids it as content: it would
          // begin a line), as busboy and Request.formData() read it.
          this.#search.prime(2);
          return at; // the caller sets the part up before its body flows
        }
        case CLOSE_PAD: {
          const c = chunk[i++]!;
          if (c === CR) this.#state = CLOSE_LF;
          else if (c === SP || c === HTAB) this.#countPadding();
          else throw malformed(`the close delimiter is followed by ${byteName(c)}, not CRLF`);
          break;
        }
        case CLOSE_LF: {
          if (chunk[i++] !== LF) throw malformed("the close delimiter's line ends with a bare CR");
          this.#state = EPILOGUE;
          break;
        }
        case EPILOGUE:
          this.#gather(i === 0 ? chunk : chunk.subarray(i));
          return end;
      }
    }
    return end;
  }

  #afterBoundary(): void {
    this.#state = AFTER;
    this.#headSize = 0;
    this.#sawCR = false;
  }

  /** Counts a byte of transport padding against maxHeaderSize (it is not free either). */
  #countPadding(): void {
    if (++this.#headSize > this.#maxHeaderSize) {
      throw new HttpError(
        413,
        `Cannot parse multipart body: transport padding after a boundary exceeds maxHeaderSize of ${this.#maxHeaderSize} bytes`,
      );
    }
  }

  /**
   * Reads header-section bytes from `chunk[from…]` into #head, lines ended by LF, CRs dropped,
   * up to the empty line. Returns the index past that line, or -1 when the chunk ended first.
   * Hot fields live in locals; the scan stops one byte past what maxHeaderSize allows.
   */
  #readHead(chunk: Uint8Array, from: number): number {
    const end = Math.min(chunk.length, from + (this.#maxHeaderSize - this.#headSize) + 1);
    let head = this.#head, n = this.#headLength, line = this.#lineLength, sawCR = this.#sawCR;
    let i = from, found = false, bits = this.#headBits;
    while (i < end) {
      const c = chunk[i++]!;
      if (sawCR) {
        if (c !== LF) throw malformed(`a header line of part ${this.#parts} holds a bare CR`);
        sawCR = false;
        if (line === 0) {
          found = true;
          break;
        }
        line = 0;
      } else if (c === CR) {
        sawCR = true;
        continue;
      } else if (c === LF) {
        throw malformed(`a header line of part ${this.#parts} ends with a bare LF`);
      } else line++;
      if (n === head.length) {
        const grown = new Uint8Array(n * 2);
        grown.set(head);
        head = grown;
      }
      head[n++] = c;
      bits |= c;
    }
    if ((this.#headSize += i - from) > this.#maxHeaderSize) {
      throw new HttpError(
        413,
        `Cannot parse multipart body: the header section of part ${this.#parts} exceeds maxHeaderSize of ${this.#maxHeaderSize} bytes`,
      );
    }
    this.#head = head;
    this.#headLength = n;
    this.#lineLength = line;
    this.#sawCR = sawCR;
    this.#headBits = bits;
    return found ? i : -1;
  }

  #startPart(): void {
    const fields = this.#fieldLines() ?? parseFieldLines(
      latin1Text(this.#head, 0, this.#headLength - 1).split("\n"),
      0,
      `Cannot parse multipart body: part ${this.#parts} has a bad head`,
    );
    let disposition: string | null = null, contentType: string | null = null;
    for (const [name, value] of fields) {
      if (name === "content-disposition") {
        if (disposition !== null) {
          throw malformed(`part ${this.#parts} has two Content-Disposition fields`);
        }
        disposition = value;
      } else if (name === "content-type") {
        // Parsers disagree on which one counts (Deno's formData() the last, busboy the
        // first): a file's type is what filters check, so neither is taken.
        if (contentType !== null) {
          throw malformed(`part ${this.#parts} has two Content-Type fields`);
        }
        contentType = value;
      }
    }
    let name: string | null = null, filename: string | null = null;
    if (disposition !== null) {
      const { params } = parseParameterized(
        disposition,
        () => `the Content-Disposition of part ${this.#parts}`,
        { quotedPairs: false }, // form-data escapes nothing with "\\" (see ParameterizedOptions)
      );
      name = params.get("name") ?? null;
      filename = params.get("filename") ?? null;
    }
    this.#isField = name !== null && filename === null;
    this.#partSize = 0;
    this.#partLimit = this.#maxPartSize;
    if (this.#isField) {
      if (++this.#fields > this.#maxFields) {
        throw new HttpError(
          413,
          `Cannot parse multipart body: it has more than maxFields of ${this.#maxFields} fields`,
        );
      }
      this.#partLimit = Math.min(this.#maxPartSize, this.#maxFieldSize);
    }
    this.#sink!.partStart(
      new Head(fields, name, filename, contentType === null ? null : ownCopy(contentType)),
    );
  }

  /**
   * The header section's fields, parsed from its bytes (`name: value` lines, each ended by LF):
   * names lowercased, values without the optional whitespace at their ends, as
   * `parseFieldLines` gives them. Null when a line is not a valid field line (a name that is
   * not a token, no colon, a control character in a value): `parseFieldLines` then says why.
   * One decode of the whole section and a slice per name and value: this runs once per part,
   * and the generic path (split, a regex per name and per value) cost a few microseconds.
   */
  #fieldLines(): [string, string][] | null {
    const head = this.#head, n = this.#headLength;
    const fields: [string, string][] = [];
    if (n === 0) return fields;
    const text = (this.#headBits & 0x80) === 0
      ? ascii.decode(head.subarray(0, n))
      : latin1Text(head, 0, n);
    for (let start = 0; start < n;) {
      let i = start, upper = false;
      for (let c = head[i]!; TCHAR[c] === 1; c = head[++i]!) upper ||= c >= 0x41 && c <= 0x5a;
      if (i === start || head[i] !== COLON) return null; // each line ends with LF: not a tchar
      const colon = i;
      let c: number;
      while ((c = head[++i]!) !== LF) if ((c < SP && c !== HTAB) || c === DEL) return null;
      let from = colon + 1, to = i;
      while (from < to && (head[from] === SP || head[from] === HTAB)) from++;
      while (to > from && (head[to - 1] === SP || head[to - 1] === HTAB)) to--;
      const name = text.slice(start, colon);
      fields.push([upper ? name.toLowerCase() : name, text.slice(from, to)]);
      start = i + 1;
    }
    return fields;
  }

  readonly #onData = (bytes: Uint8Array): void => {
    if ((this.#partSize += bytes.length) > this.#partLimit) {
      throw new HttpError(
        413,
        `Cannot parse multipart body: part ${this.#parts} exceeds ${
          this.#isField && this.#maxFieldSize < this.#maxPartSize ? "maxFieldSize" : "maxPartSize"
        } of ${this.#partLimit} bytes`,
      );
    }
    this.#sink!.partData(bytes);
  };

  readonly #onPreamble = (bytes: Uint8Array): void => this.#gather(bytes);

  /** Keeps a copy of preamble or epilogue bytes, within maxPreambleSize. */
  #gather(bytes: Uint8Array): void {
    if ((this.#gatheredSize += bytes.length) > this.#maxPreambleSize) {
      throw new HttpError(
        413,
        `Cannot parse multipart body: its ${
          this.#state === PREAMBLE ? "preamble" : "epilogue"
        } exceeds maxPreambleSize of ${this.#maxPreambleSize} bytes`,
      );
    }
    const size = this.#gatheredSize;
    let gathered = this.#gathered;
    if (gathered.length < size) {
      gathered = new Uint8Array(
        Math.min(Math.max(size, 2 * gathered.length, 256), this.#maxPreambleSize),
      );
      gathered.set(this.#gathered.subarray(0, size - bytes.length));
      this.#gathered = gathered;
    }
    gathered.set(bytes, size - bytes.length);
  }

  #takeGathered(): Uint8Array {
    const size = this.#gatheredSize;
    const bytes = size === this.#gathered.length ? this.#gathered : this.#gathered.slice(0, size);
    this.#gathered = NO_BYTES;
    this.#gatheredSize = 0;
    return bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// The stream form.

/** The preamble: the bytes before the first boundary (RFC 2046 §5.1.1), when there are any. */
export interface MultipartPreamble {
  /** Always `"preamble"`. */
  type: "preamble";
  /** The bytes, CRLF before the first boundary excluded. */
  body: Uint8Array;
}

/** A part, its body a stream; the next event comes once the body is read or cancelled. */
export interface MultipartPart extends MultipartHead {
  /** Always `"part"`. */
  type: "part";
  /**
   * The part's content, streamed from the source as it is read (views of the source's chunks).
   * It errors with the body's {@linkcode HttpError} if the body turns out malformed or
   * truncated before this part ended, so a short part never looks whole.
   */
  body: ReadableStream<Uint8Array>;
}

/** The epilogue: the bytes after the close delimiter's line, when there are any. */
export interface MultipartEpilogue {
  /** Always `"epilogue"`. */
  type: "epilogue";
  /** The bytes. */
  body: Uint8Array;
}

/** What {@linkcode parseMultipart} yields, in order: a preamble, parts, an epilogue. */
export type MultipartEvent = MultipartPreamble | MultipartPart | MultipartEpilogue;

/** Options of {@linkcode parseMultipart} from a `Request` or a content type. */
export interface ParseMultipartOptions extends MultipartLimits {
  /**
   * The body's length in bytes, verified: a body that runs past it or ends short of it is a
   * 400. From a `Request` it defaults to its `Content-Length`. `null` when it is not known
   * (`Infinity` is a `RangeError`).
   */
  contentLength?: number | null;
}

/** Options of {@linkcode parseMultipart} from a boundary (Ktor's third form). */
export interface MultipartBoundaryOptions extends MultipartLimits {
  /** The boundary, without quotes or leading dashes. */
  boundary: string;
  /** The body's length in bytes, verified as `contentLength` is. */
  totalLength?: number | null;
}

const MULTIPART = /^multipart\/[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Reads the boundary from a `Content-Type` value (RFC 2046 §5.1.1): a `multipart/*` type with
 * a `boundary` parameter, quoted or not.
 *
 * @param contentType The field value.
 * @returns The boundary.
 * @throws {HttpError} 415 when the type is not `multipart/*`; 400 when the value is
 * malformed or the boundary is missing or invalid.
 *
 * @example Reading a boundary
 * ```ts
 * import { multipartBoundary } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(multipartBoundary('multipart/form-data; boundary="a b:c"'), "a b:c");
 * assert.throws(() => multipartBoundary("text/plain"), { status: 415 });
 * ```
 */
export function multipartBoundary(contentType: string | null): string {
  if (contentType === null || contentType === "") {
    throw new HttpError(415, "Cannot parse multipart body: there is no Content-Type");
  }
  const { value, params } = parseParameterized(contentType, "Content-Type");
  if (!MULTIPART.test(value)) {
    throw new HttpError(
      415,
      `Cannot parse multipart body: Content-Type ${quote(value)} is not multipart/*`,
    );
  }
  const boundary = params.get("boundary");
  if (boundary === undefined) {
    throw new HttpError(400, "Cannot parse multipart body: Content-Type has no boundary");
  }
  if (!isValidBoundary(boundary)) {
    throw new HttpError(
      400,
      `Cannot parse multipart body: boundary ${quote(boundary)} is not 1 to 70 valid characters`,
    );
  }
  return boundary;
}

/**
 * Ktor's `parseMultipart`: parses a multipart body as it arrives, into a stream of events: a
 * preamble (if any), then each part with its header fields and its body as a stream, then an
 * epilogue (if any). Memory stays flat at any size: part bodies are never gathered.
 *
 * - **One part at a time.** The next event is read from the source only once the current
 *   part's body was read to its end or cancelled. A body that was never locked (no reader,
 *   `pipeTo` or `Response` took it) when the next event is asked for is skipped: its bytes
 *   are read and dropped, and the body errors with a `TypeError` if it is read later, so an
 *   ignored part neither stalls the stream nor silently reads as empty.
 * - **Backpressure.** A body pulls from the source only when its reader asks (no read-ahead),
 *   so a slow part consumer slows the peer.
 * - **Errors.** A malformed or truncated body errors the current part's body and the event
 *   stream with a 400 {@linkcode HttpError}, a limit with a 413 (see
 *   {@linkcode MultipartLimits}); a source error is passed through. Nothing already delivered
 *   is taken back, and no part ends short without an error.
 * - **Cancellation.** Cancelling the event stream while a part's body is being read lets that
 *   body finish; the source is cancelled after it (or at once when no body is in use).
 *
 * The three forms are Ktor's: from a `Request` (its `Content-Type`, `Content-Length` and
 * body), from a body and its content type, and from a body and a boundary.
 *
 * @param request The request.
 * @param options The limits; `contentLength` defaults to the request's `Content-Length`.
 * @returns The events.
 * @throws {HttpError} At once: 415 when the request is not `multipart/*`; 400 for a missing or
 * invalid boundary, a malformed `Content-Length` or no body; 413 when the declared length
 * exceeds `maxTotalSize` (or 2^53 − 1).
 * @throws {RangeError} For an invalid limit or `contentLength`.
 *
 * @example Reading the parts of a form upload
 * ```ts
 * import { parseMultipart } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const form = new FormData();
 * form.append("title", "Hello");
 * form.append("file", new File(["file content"], "a.txt", { type: "text/plain" }));
 * const request = new Request("http://localhost/upload", { method: "POST", body: form });
 *
 * const seen: string[] = [];
 * for await (const event of parseMultipart(request)) {
 *   if (event.type !== "part") continue;
 *   const text = await new Response(event.body).text();
 *   seen.push(`${event.name} ${event.filename} ${event.contentType} ${text}`);
 * }
 * assert.deepEqual(seen, ["title null null Hello", "file a.txt text/plain file content"]);
 * ```
 */
export function parseMultipart(
  request: Request,
  options?: ParseMultipartOptions,
): ReadableStream<MultipartEvent>;
/**
 * Ktor's `parseMultipart(input, contentType, contentLength)`: parses `body` with the boundary
 * of `contentType`.
 *
 * @param body The body's bytes.
 * @param contentType The `Content-Type` value, `multipart/*` with a boundary.
 * @param options The limits, and the `contentLength` to verify.
 * @returns The events.
 * @throws {HttpError} At once: 415 when the type is not `multipart/*`; 400 for a missing or
 * invalid boundary; 413 when `contentLength` exceeds `maxTotalSize`.
 * @throws {RangeError} For an invalid limit or `contentLength`.
 *
 * @example Parsing a stream with its content type
 * ```ts
 * import { type MultipartEvent, parseMultipart } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("preamble\r\n--b\r\n\r\nno headers\r\n--b--\r\nepilogue");
 * const events: MultipartEvent[] = await Array.fromAsync(
 *   parseMultipart(ReadableStream.from([wire]), "multipart/mixed; boundary=b", { contentLength: wire.length }),
 * );
 * assert.deepEqual(events.map((e) => e.type), ["preamble", "part", "epilogue"]);
 * ```
 */
export function parseMultipart(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  options?: ParseMultipartOptions,
): ReadableStream<MultipartEvent>;
/**
 * Ktor's `parseMultipart(boundaryPrefixed, input, totalLength)`: parses `body` with a known
 * boundary.
 *
 * @param body The body's bytes.
 * @param options The boundary, the limits, and the `totalLength` to verify.
 * @returns The events.
 * @throws {RangeError} For an invalid boundary, limit or `totalLength`.
 * @throws {HttpError} At once: 413 when `totalLength` exceeds `maxTotalSize`.
 *
 * @example A truncated body is an error, never a short part
 * ```ts
 * import { HttpError, parseMultipart } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("--b\r\n\r\npart of a file, then the connection dropped");
 * const events = parseMultipart(ReadableStream.from([wire]), { boundary: "b" });
 * for await (const event of events.values({ preventCancel: true })) {
 *   if (event.type === "part") {
 *     await assert.rejects(new Response(event.body).bytes(), (e) => e instanceof HttpError && e.status === 400);
 *     break;
 *   }
 * }
 * ```
 */
export function parseMultipart(
  body: ReadableStream<Uint8Array>,
  options: MultipartBoundaryOptions,
): ReadableStream<MultipartEvent>;
export function parseMultipart(
  input: Request | ReadableStream<Uint8Array>,
  second?: ParseMultipartOptions | MultipartBoundaryOptions | string,
  third?: ParseMultipartOptions,
): ReadableStream<MultipartEvent> {
  let source: ReadableStream<Uint8Array>, parser: MultipartParser;
  if (input instanceof Request) {
    const options = (second ?? {}) as ParseMultipartOptions;
    const boundary = multipartBoundary(input.headers.get("content-type"));
    let length = options.contentLength;
    if (length === undefined) {
      const header = input.headers.get("content-length");
      if (header !== null && !/^\d+$/.test(header)) {
        throw malformed(`Content-Length ${quote(header)} is not a length`);
      }
      length = header === null ? null : Number(header);
      if (length !== null && !Number.isSafeInteger(length)) {
        // A valid length (RFC 9110 §8.6: 1*DIGIT), beyond any body we could count.
        throw new HttpError(
          413,
          `Cannot accept multipart body: its Content-Length of ${header} bytes is too large`,
        );
      }
    } else if (length !== null) {
      checkLength("contentLength", length);
    }
    if (input.body === null) throw malformed("the request has no body");
    parser = new MultipartParser(boundary, { ...options, totalLength: length });
    source = input.body;
  } else if (typeof second === "string") {
    const options = third ?? {};
    const declared = options.contentLength ?? null;
    if (declared !== null) checkLength("contentLength", declared);
    parser = new MultipartParser(multipartBoundary(second), {
      ...options,
      totalLength: options.contentLength ?? null,
    });
    source = input;
  } else {
    const options = second as MultipartBoundaryOptions | undefined;
    if (typeof options?.boundary !== "string") {
      throw new TypeError("Cannot parse multipart body: give a content type or a boundary");
    }
    parser = new MultipartParser(options.boundary, options);
    source = input;
  }
  return new MultipartReader(source, parser).events;
}

/**
 * Checks a declared body length: a safe integer from 0 (`Infinity` is no length: `null` is
 * the unknown one).
 */
function checkLength(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(
      `Invalid ${name}: ${
        typeof value === "number" ? value : typeof value
      } is not a length, an integer from 0 to 2^53 − 1 (give null for a body of unknown length)`,
    );
  }
}

/** The reader behind each event stream that {@linkcode parseMultipart} made. */
const readers = new WeakMap<ReadableStream<MultipartEvent>, MultipartReader>();

/**
 * Ends the parse behind `events` at once, for a consumer that failed (internal: not in
 * `mod.ts`). Cancelling the events lets a body that is being read finish, and no one may ever
 * finish it (a callback that took a reader on it threw); this errors the current part's body
 * and the events with `reason`, reader or not, and cancels and releases the source. Another
 * stream (not locked) is cancelled with `reason`.
 *
 * @param events The events, as `parseMultipart` gave them.
 * @param reason Why: the error the body reads fail with, and the source's cancel reason.
 * @returns When the source is cancelled.
 */
export function abortMultipart(
  events: ReadableStream<MultipartEvent>,
  reason: unknown,
): Promise<void> {
  return readers.get(events)?.abort(reason) ?? events.cancel(reason).catch(() => {});
}

/** A part as {@linkcode parseMultipart} gives it. */
class Part implements MultipartPart {
  readonly type = "part" as const;
  readonly name: string | null;
  readonly filename: string | null;
  readonly contentType: string | null;
  readonly body: ReadableStream<Uint8Array>;
  readonly #head: MultipartHead;

  constructor(head: MultipartHead, body: ReadableStream<Uint8Array>) {
    this.#head = head;
    this.name = head.name;
    this.filename = head.filename;
    this.contentType = head.contentType;
    this.body = body;
  }

  get headers(): Headers {
    return this.#head.headers;
  }
}

/** The part being delivered by a {@linkcode MultipartReader}. */
interface CurrentPart {
  readonly stream: ReadableStream<Uint8Array>;
  readonly controller: ReadableStreamDefaultController<Uint8Array>;
  /** The body is still open to its reader (not closed, errored or cancelled). */
  open: boolean;
  /** Chunks handed to the body so far. */
  delivered: number;
  /** Wakes an event read waiting for this part to end or be dropped. */
  wake: (() => void) | null;
}

/**
 * Drives a {@linkcode MultipartParser} from a source for the event stream and the part
 * bodies: one pump at a time, pulled by whichever stream is read.
 */
class MultipartReader implements MultipartSink {
  readonly events: ReadableStream<MultipartEvent>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #parser: MultipartParser;
  #controller!: ReadableStreamDefaultController<MultipartEvent>;
  /** The unconsumed rest of the last chunk read. */
  #pending: Uint8Array | null = null;
  /** The part between its start and its end, if any. */
  #part: CurrentPart | null = null;
  #produced = 0;
  /** A pump is under way; others wait in line, and each hands the turn to the next. */
  #busy = false;
  #waiting: (() => void)[] = [];
  #finished = false;
  /** The consumer cancelled the events: stop at the end of the current part. */
  #cancelled = false;
  #cancelReason: unknown = undefined;
  /** The source's cancellation, once begun. */
  #stopped: Promise<void> | null = null;

  constructor(source: ReadableStream<Uint8Array>, parser: MultipartParser) {
    this.#reader = source.getReader();
    this.#parser = parser;
    this.events = new ReadableStream<MultipartEvent>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pullEvent(),
      cancel: (reason) => this.#cancelEvents(reason),
    }, { highWaterMark: 0 });
    readers.set(this.events, this);
  }

  /** See {@linkcode abortMultipart}. */
  abort(reason: unknown): Promise<void> {
    if (!this.#finished) this.#cancelReason = reason; // before #drop may stop
    const part = this.#part;
    this.#part = null;
    if (part !== null && part.open) this.#drop(part, reason); // a held reader included
    if (!this.#cancelled) {
      this.#cancelled = true;
      try {
        this.#controller.error(reason);
      } catch {
        // Closed already.
      }
    }
    return this.#stop();
  }

  async #pullEvent(): Promise<void> {
    const part = this.#part;
    if (part !== null && part.open) {
      if (!part.stream.locked) {
        this.#drop(part, new TypeError("Cannot read part body: the next event was read first"));
      } else {
        await new Promise<void>((resolve) => (part.wake = resolve));
      }
    }
    await this.#pump(null, this.#produced);
  }

  /**
   * Reads on for a part's body. It never rejects: a rejected pull errors the body at once,
   * and a stream errored so drops the chunks still queued in it, so a part that had ended
   * whole lost its last bytes to an error later in the same source chunk (the events'
   * error: the next part's). An error while the part is open reaches it through #fail; the
   * parser refuses a chunk over a limit before it delivers any of it, so none is queued then.
   */
  #pullBody(part: CurrentPart): Promise<void> {
    return this.#pump(part, part.delivered).catch(() => {});
  }

  /** Stops delivering to `part`: its remaining bytes are read and dropped. */
  #drop(part: CurrentPart, error: unknown): void {
    part.open = false;
    if (error !== undefined) part.controller.error(error);
    part.wake?.();
    part.wake = null;
    if (this.#cancelled) void this.#stop(); // no one reads on: let the source go
  }

  #cancelEvents(reason: unknown): Promise<void> | void {
    this.#cancelled = true;
    this.#cancelReason = reason;
    const part = this.#part;
    if (part !== null && part.open) {
      if (part.stream.locked) return; // its body is being read: stop after it
      this.#drop(part, new TypeError("Cannot read part body: the events were cancelled"));
    }
    return this.#stop();
  }

  /** Cancels the source (a read under way resolves as done) and ends the parse. */
  #stop(): Promise<void> {
    if (this.#stopped !== null) return this.#stopped;
    if (this.#finished) return Promise.resolve();
    this.#finished = true;
    this.#pending = null;
    return this.#stopped = this.#reader.cancel(this.#cancelReason).catch(() => {}).then(() => {
      this.#reader.releaseLock(); // the source is no longer ours: its owner may close it
    });
  }

  /**
   * Reads and parses until there is something new: for `part`, data delivered to it since
   * `before` (or its end); for the events (null), an event since `before`. One pump at a
   * time; a failure ends everything.
   */
  async #pump(part: CurrentPart | null, before: number): Promise<void> {
    if (this.#busy) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#busy = true;
    try {
      while (
        !this.#finished &&
        (part === null ? this.#produced === before : part.open && part.delivered === before)
      ) {
        let chunk = this.#pending;
        if (chunk === null) {
          const result = await this.#reader.read();
          if (this.#finished) return; // cancelled while reading
          if (result.done) {
            this.#finished = true;
            this.#parser.end(this);
            if (!this.#cancelled) this.#controller.close();
            return;
          }
          chunk = result.value;
          if (!(chunk instanceof Uint8Array)) {
            throw new TypeError(
              "Cannot parse multipart body: the source gave a chunk that is not a Uint8Array",
            );
          }
        }
        const used = this.#parser.push(chunk, this);
        this.#pending = used < chunk.length ? chunk.subarray(used) : null;
        if (this.#cancelled && this.#part === null) return void this.#stop();
      }
    } catch (error) {
      this.#fail(error);
      throw error;
    } finally {
      const next = this.#waiting.shift(); // the turn passes on, still busy
      if (next === undefined) this.#busy = false;
      else next();
    }
  }

  #fail(error: unknown): void {
    const part = this.#part;
    this.#part = null;
    if (part !== null && part.open) this.#drop(part, error);
    if (!this.#cancelled) {
      try {
        this.#controller.error(error);
      } catch {
        // Closed already.
      }
    }
    if (!this.#finished) {
      this.#finished = true;
      this.#pending = null;
      this.#reader.cancel(error).catch(() => {});
    }
  }

  // The sink.

  preamble(body: Uint8Array): void {
    this.#event({ type: "preamble", body });
  }

  partStart(head: MultipartHead): void {
    if (this.#cancelled) return;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      pull: () => this.#pullBody(part),
      cancel: () => this.#drop(part, undefined),
    }, { highWaterMark: 0 });
    const part: CurrentPart = { stream, controller, open: true, delivered: 0, wake: null };
    this.#part = part;
    this.#event(new Part(head, stream));
  }

  partData(bytes: Uint8Array): void {
    const part = this.#part;
    if (part === null || !part.open) return;
    part.controller.enqueue(bytes);
    part.delivered++;
  }

  partEnd(): void {
    const part = this.#part;
    this.#part = null;
    if (part === null) return;
    if (part.open) {
      part.open = false;
      part.controller.close();
    }
    part.wake?.();
    part.wake = null;
  }

  epilogue(body: Uint8Array): void {
    this.#event({ type: "epilogue", body });
  }

  #event(event: MultipartEvent): void {
    if (this.#cancelled) return;
    this.#controller.enqueue(event);
    this.#produced++;
  }
}
