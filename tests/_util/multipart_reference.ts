// Copyright 2026 the wirestream authors. MIT license.
// A reference reading of a multipart body, written from RFC 2046 §5.1.1 and RFC 7578 with
// the policies that MultipartParser documents, for fuzz oracles. It holds the whole body and
// reads it front to back with indexOf and plain loops; it shares no code with lib/multipart.

import type { MultipartLimits } from "@wirestream/wirestream";
import type { Outcome, ParsedPart } from "./multipart.ts";

/**
 * What the reference makes of a body: what a parser delivers before it stops, in the shape
 * of tests/_util/multipart.ts's Outcome, and when it refuses the body, the statuses it may
 * refuse it with (400 and 413 both when a body cut short also ran over a limit: where a
 * parser holds back bytes that may begin a delimiter, it may see either first), and whether
 * the last part was still open, its body then perhaps delivered only in part.
 */
export interface ReferenceMultipartOutcome extends Outcome {
  refuse: number[];
  open: boolean;
}

const CR = 0x0d, LF = 0x0a, SP = 0x20, HTAB = 0x09, HYPHEN = 0x2d;

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");
const isTchar = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
  "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
const isToken = (text: string) =>
  text.length > 0 &&
  Array.from(text).every((c) => c.charCodeAt(0) <= 0xff && isTchar(c.charCodeAt(0)));

/** A refusal, as an exception inside the reference. */
class Refusal {
  constructor(readonly statuses: number[]) {}
}

/** Where `needle` first occurs in `bytes` at or after `from`, or -1. */
function find(bytes: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Reads `body` with the boundary `boundary` and the limits `limits` (all of them set). The
 * grammar is RFC 2046 §5.1.1's:
 *
 *     multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF body-part
 *                       *encapsulation close-delimiter transport-padding [CRLF epilogue]
 *     encapsulation := delimiter transport-padding CRLF body-part
 *     delimiter := CRLF dash-boundary;  dash-boundary := "--" boundary
 *
 * with these documented policies of MultipartParser (lib/multipart/parser.ts):
 * - line ends are CRLF; a bare CR or LF in a header section or after a boundary is a 400
 *   ("Line ends" in the MultipartParser doc);
 * - the CRLF that ends a header section may also begin the next delimiter, so a boundary right
 *   after it ends the part, empty (same doc);
 * - a body that ends in the close delimiter's transport padding is whole, as the grammar's
 *   optional [CRLF epilogue] says;
 * - transport padding counts against maxHeaderSize with the header section after it, the
 *   blank line's CRLF included (MultipartLimits.maxHeaderSize doc);
 * - a field is a part with a `name` and no `filename` (maxFields doc); the `name` and
 *   `filename` are read as UTF-8 where valid (MultipartHead doc), `filename*` (RFC 8187) wins
 *   over `filename` when it can be decoded and is ignored when it cannot (RFC 6266 §4.3);
 *   no other starred name is an ext-value (`name*` is a parameter of its own, not `name`);
 *   parameters follow parseParameterized's doc: an unquoted value runs to the next `;` or
 *   whitespace, empty parameters are skipped, one given twice is a 400;
 * - a quoted name or filename has no quoted-pairs: as in the WHATWG multipart/form-data
 *   parser ("parse a multipart/form-data name": collect bytes that are not LF, CR or `"`,
 *   then expect `"`), it runs to the next `"` and keeps every `\`; `%22`, `%0D` and `%0A`
 *   are kept as written, as Deno's Request.formData() keeps them (the spec's last step, which
 *   decodes them, is not taken: MultipartHead.name doc);
 * - two Content-Disposition fields are a 400, and so are two Content-Type fields.
 */
export function referenceParseMultipart(
  body: Uint8Array,
  boundary: string,
  limits: Required<MultipartLimits>,
): ReferenceMultipartOutcome {
  const out: ReferenceMultipartOutcome = {
    preamble: null,
    parts: [],
    epilogue: null,
    status: null,
    refuse: [],
    open: false,
  };
  try {
    read(body, boundary, limits, out);
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    out.refuse = error.statuses;
    out.status = error.statuses[0]!;
  }
  return out;
}

function read(
  body: Uint8Array,
  boundary: string,
  limits: Required<MultipartLimits>,
  out: ReferenceMultipartOutcome,
): void {
  if (body.length > limits.maxTotalSize) throw new Refusal([413]);
  const dashBoundary = Uint8Array.from("--" + boundary, (c) => c.charCodeAt(0));
  const delimiter = Uint8Array.from("\r\n--" + boundary, (c) => c.charCodeAt(0));

  // The preamble: everything before the first delimiter, or nothing if the body opens with
  // the dash-boundary.
  let at: number; // just past a dash-boundary
  if (find(body, dashBoundary, 0) === 0) at = dashBoundary.length;
  else {
    const first = find(body, delimiter, 0);
    const preambleEnd = first === -1 ? body.length : first;
    if (first === -1) throw new Refusal(preambleEnd > limits.maxPreambleSize ? [400, 413] : [400]);
    if (preambleEnd > limits.maxPreambleSize) throw new Refusal([413]);
    if (preambleEnd > 0) out.preamble = latin1(body.subarray(0, preambleEnd));
    at = first + delimiter.length;
  }

  let parts = 0, fields = 0;
  while (true) {
    // After a boundary: "--" (the close delimiter) or a part, transport padding then CRLF.
    let headSize = 0;
    const close = body[at] === HYPHEN;
    if (close) {
      if (at + 1 >= body.length || body[at + 1] !== HYPHEN) throw new Refusal([400]);
      at += 2;
    }
    while (at < body.length && (body[at] === SP || body[at] === HTAB)) {
      if (++headSize > limits.maxHeaderSize) throw new Refusal([413]);
      at++;
    }
    if (close && at === body.length) return; // no [CRLF epilogue]
    if (body[at] !== CR || body[at + 1] !== LF) throw new Refusal([400]);
    at += 2;
    if (close) {
      const epilogue = body.subarray(at);
      if (epilogue.length > limits.maxPreambleSize) throw new Refusal([413]);
      if (epilogue.length > 0) out.epilogue = latin1(epilogue);
      return;
    }
    if (++parts > limits.maxParts) throw new Refusal([413]);

    // The header section: lines ended by CRLF, up to an empty line, within maxHeaderSize.
    const lines: string[] = [];
    let lineStart = at;
    while (true) {
      if (at >= body.length) throw new Refusal([400]); // cut short
      const c = body[at]!;
      headSize++;
      if (c === LF && body[at - 1] !== CR) throw new Refusal([400]); // a bare LF
      if (at > lineStart && body[at - 1] === CR && c !== LF) throw new Refusal([400]); // bare CR
      if (headSize > limits.maxHeaderSize) throw new Refusal([413]);
      at++;
      if (c === LF) {
        if (at - 2 === lineStart) break; // the empty line
        lines.push(latin1(body.subarray(lineStart, at - 2)));
        lineStart = at;
      }
    }
    const part = readHead(lines);
    const isField = part.name !== null && part.filename === null;
    if (isField && ++fields > limits.maxFields) throw new Refusal([413]);
    out.parts.push(part);
    out.open = true;

    // The body: up to the next delimiter, whose CRLF may be the header section's last.
    const limit = isField ? Math.min(limits.maxPartSize, limits.maxFieldSize) : limits.maxPartSize;
    const next = find(body, dashBoundary, at) === at ? at - 2 : find(body, delimiter, at);
    const contentEnd = next === -1 ? body.length : Math.max(next, at);
    const content = body.subarray(at, contentEnd);
    part.body = latin1(content); // delivered perhaps only in part if refused
    if (next === -1) throw new Refusal(content.length > limit ? [400, 413] : [400]);
    if (content.length > limit) throw new Refusal([413]);
    out.open = false;
    at = next + delimiter.length;
  }
}

/** A part's head from its field lines (RFC 9112 §5.1 field-line, RFC 7578 §4.2). */
function readHead(lines: string[]): ParsedPart {
  const headers = new Headers();
  let disposition: string | null = null;
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon < 1 || !isToken(line.slice(0, colon))) throw new Refusal([400]);
    const value = line.slice(colon + 1);
    for (const c of value) {
      const code = c.charCodeAt(0);
      if ((code < SP && code !== HTAB) || code === 0x7f) throw new Refusal([400]);
    }
    const name = line.slice(0, colon).toLowerCase();
    const trimmed = value.replace(/^[ \t]+|[ \t]+$/g, "");
    if (name === "content-disposition") {
      if (disposition !== null) throw new Refusal([400]);
      disposition = trimmed;
    }
    if (name === "content-type" && headers.has("content-type")) throw new Refusal([400]);
    headers.append(name, trimmed);
  }
  const params = disposition === null ? new Map<string, string>() : readParams(disposition);
  return {
    headers: [...headers],
    name: params.get("name") ?? null,
    filename: params.get("filename") ?? null,
    contentType: headers.get("content-type"),
    body: "",
  };
}

/**
 * The parameters of a Content-Disposition value (RFC 6266 §4.1): a type, then
 * `*( OWS ";" OWS [ token "=" ( value / quoted-string ) ] )`, names in lower case.
 */
function readParams(value: string): Map<string, string> {
  // The type is a token (RFC 6266 §4.1), so its end is the first semicolon. It must be there;
  // it is not checked further: the parser reads any part, one with no Content-Disposition at
  // all included (MultipartHead.name doc: "or null").
  const ows = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, "");
  const semi = value.indexOf(";");
  if (ows(semi === -1 ? value : value.slice(0, semi)) === "") throw new Refusal([400]);
  // The parameters: split at the semicolons outside quoted strings (a backslash escapes
  // nothing: WHATWG HTML's form-data encoding never writes one as an escape).
  const pieces: string[] = [];
  let piece = "", quoted = false;
  for (let i = semi === -1 ? value.length : semi + 1; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') quoted = !quoted;
    if (c === ";" && !quoted) {
      pieces.push(piece);
      piece = "";
    } else piece += c;
  }
  if (quoted) throw new Refusal([400]); // an unterminated quoted string
  pieces.push(piece);
  const plain = new Map<string, string>(), extended = new Map<string, string | null>();
  for (const raw of pieces) {
    const param = ows(raw);
    if (param === "") continue; // an empty parameter
    const eq = param.indexOf("=");
    const name = eq === -1 ? "" : param.slice(0, eq).toLowerCase();
    if (!isToken(name)) throw new Refusal([400]);
    const given = param.slice(eq + 1);
    let text = "";
    if (given.startsWith('"')) {
      // The bytes up to the next quote, every one kept (WHATWG "parse a multipart/form-data
      // name"); nothing may follow the closing quote.
      const close = given.indexOf('"', 1);
      if (close !== given.length - 1) throw new Refusal([400]);
      text = given.slice(1, close);
    } else if (/[ \t"]/.test(given)) throw new Refusal([400]); // junk, or a quote inside
    else text = given;
    if (name === "filename*") { // the only ext-value read: no name* in RFC 7578
      if (extended.has("filename")) throw new Refusal([400]);
      extended.set("filename", extValue(text));
    } else {
      if (plain.has(name)) throw new Refusal([400]);
      plain.set(name, utf8OrLatin1(text));
    }
  }
  for (const [name, text] of extended) {
    if (text !== null) plain.set(name, text); // RFC 6266 §4.3: the plain one is the fallback
  }
  return plain;
}

/**
 * RFC 8187 §3.2.1: charset "'" [ language ] "'" value-chars, percent-decoded; null when it
 * is not one, or not in UTF-8 or ISO-8859-1 (§3.2.1: recipients need support only those), or
 * not valid UTF-8.
 */
function extValue(text: string): string | null {
  const m = /^([^']+)'([A-Za-z0-9-]*)'(.*)$/.exec(text);
  if (m === null) return null;
  const [, charset, , chars] = m;
  const bytes: number[] = [];
  for (let i = 0; i < chars!.length; i++) {
    const c = chars![i]!;
    if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(chars!.slice(i + 1, i + 3))) {
      bytes.push(parseInt(chars!.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[A-Za-z0-9!#$&+\-.^_`|~]/.test(c)) bytes.push(c.charCodeAt(0)); // attr-char
    else return null;
  }
  if (!/^[A-Za-z0-9!#$%&+\-^_`{}~]+$/.test(charset!)) return null;
  if (charset!.toLowerCase() === "iso-8859-1") {
    return bytes.map((b) => String.fromCharCode(b)).join("");
  }
  if (charset!.toLowerCase() !== "utf-8") return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/** A byte string read as UTF-8 where it is valid UTF-8, else kept as it is. */
function utf8OrLatin1(text: string): string {
  try {
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return text;
  }
}
