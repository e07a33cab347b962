// Copyright 2026 the wirestream authors. MIT license.
// Header values with parameters: Content-Type (RFC 9110 §8.3.1) and Content-Disposition (RFC
// 6266 §4.1, RFC 7578 §4.2), with quoted strings (RFC 9110 §5.6.4) and ext-values (RFC 8187).

import { HttpError } from "../http/error.ts";
import { latin1Text } from "../http/_latin1.ts";
import { TCHAR, trimOws } from "../http/head.ts";

/** A header value split into its leading value (lowercased) and its parameters. */
export interface Parameterized {
  /** The media type (`multipart/form-data`) or disposition type (`form-data`), lowercased. */
  value: string;
  /**
   * The parameters by lowercased name. A quoted string is unescaped (or not: see
   * {@linkcode ParameterizedOptions.quotedPairs}); the ext-value of `filename*` is decoded to
   * text and stands under `filename`, in place of a plain one; one that cannot be decoded is
   * left out. Other values are read from their bytes as UTF-8 where they are valid UTF-8 (see
   * {@linkcode utf8FromBytes}).
   */
  params: Map<string, string>;
}

/** Options of {@linkcode parseParameterized}. */
export interface ParameterizedOptions {
  /**
   * Whether a backslash in a quoted string quotes the next character (RFC 9110 §5.6.4, RFC
   * 2045 §5.1), as in a Content-Type. False for the Content-Disposition of a form-data part:
   * browsers, curl (since 7.81) and Deno's FormData encoder escape nothing there (WHATWG
   * HTML's multipart/form-data encoding writes `"`, CR and LF as `%22`, `%0D` and `%0A` and
   * leaves `\` as it is), so a quoted string runs to the next `"` and keeps every backslash,
   * as the WHATWG multipart/form-data parser reads it (`filename="C:\dir\f.txt"` is
   * `C:\dir\f.txt`). `%22`, `%0D` and `%0A` are kept as written, as `Request.formData()`
   * keeps them in Deno 2.9.
   *
   * @default {true}
   */
  quotedPairs?: boolean;
}

const SP = 0x20, HTAB = 0x09, DQUOTE = 0x22, BACKSLASH = 0x5c, SEMI = 0x3b;

/** Whether `text` is a token: one or more tchars (a loop: this runs per parameter). */
function isToken(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return text.length > 0;
}

/** Quotes peer text for a message, cut to 64 characters. */
export function quote(text: string): string {
  return JSON.stringify(text.slice(0, 64));
}

/**
 * Parses `value *( OWS ";" OWS name "=" ( token / quoted-string ) )`. An unquoted value is
 * taken up to the next `;` or whitespace (some senders leave `=` or `/` unquoted in a
 * boundary); empty parameters (`;;`, a trailing `;`) are skipped.
 *
 * Only `filename*` is read as an ext-value (RFC 8187), as browsers' and busboy's parsers read
 * it; one that cannot be decoded (malformed, a charset other than UTF-8 or ISO-8859-1, bad
 * UTF-8) is ignored, so `filename` stands: RFC 6266 §4.3 makes it the fallback, RFC 7578
 * §4.2 forbids `filename*` in form-data, and `Request.formData()` reads only `filename`. Any
 * other starred name is a parameter of its own, which no caller reads: media types have no
 * ext-values (RFC 9110 §5.6.6) and RFC 7578 defines no `name*`, so a `boundary*` or `name*`
 * that overrode `boundary` or `name` would make us read another form than the parsers in
 * front of us (a proxy's, a firewall's) read.
 *
 * @param header The field value.
 * @param what The field's name, for messages (or a function that gives it, only on failure).
 * @param options Whether quoted strings have quoted-pairs.
 * @throws {HttpError} 400 for a malformed value or a parameter given twice.
 */
export function parseParameterized(
  header: string,
  what: string | (() => string),
  options: ParameterizedOptions = {},
): Parameterized {
  const quotedPairs = options.quotedPairs ?? true;
  const fail = (why: string): never => {
    const field = typeof what === "string" ? what : what();
    throw new HttpError(400, `Cannot parse ${field}: ${why} in ${quote(header)}`);
  };
  let i = skipSpace(header, 0);
  const semi = header.indexOf(";", i);
  const value = trimOws(header.slice(i, semi === -1 ? header.length : semi));
  if (value === "") fail("no value");
  const plain = new Map<string, string>();
  let extended: string | null | undefined; // filename*: not given, undecodable, or decoded
  i = semi === -1 ? header.length : semi;
  while (i < header.length) {
    i = skipSpace(header, i + 1); // past the ";"
    if (i === header.length) break;
    if (header.charCodeAt(i) === SEMI) continue;
    const eq = header.indexOf("=", i);
    const name = eq === -1 ? "" : header.slice(i, eq).toLowerCase();
    if (!isToken(name)) fail('a parameter without a token name and "="');
    i = eq + 1;
    let text: string;
    const quoted = header.charCodeAt(i) === DQUOTE;
    if (quoted) {
      text = "";
      let j = i + 1, run = j;
      for (;; j++) {
        if (j >= header.length) fail(`an unterminated quoted string for ${name}`);
        const c = header.charCodeAt(j);
        if (c === DQUOTE) break;
        if (c === BACKSLASH && quotedPairs) {
          text += header.slice(run, j);
          if (++j >= header.length) fail(`an unterminated quoted string for ${name}`);
          run = j; // the escaped character is kept as it is
        } else if ((c < SP && c !== HTAB) || c === 0x7f) fail("a control character");
      }
      text += header.slice(run, j);
      i = j + 1;
    } else {
      let j = i;
      while (j < header.length) {
        const c = header.charCodeAt(j);
        if (c === SEMI || c === SP || c === HTAB) break;
        if (c < SP || c === 0x7f || c === DQUOTE) fail(`a bad character in ${name}`);
        j++;
      }
      text = header.slice(i, j);
      i = j;
    }
    i = skipSpace(header, i);
    if (i < header.length && header.charCodeAt(i) !== SEMI) fail(`junk after ${name}`);
    if (name === "filename*") {
      if (extended !== undefined) fail(`${name} given twice`);
      // null if it cannot be decoded; an ext-value is never a quoted string (RFC 8187 §3.2.1)
      extended = quoted ? null : decodeExtValue(text);
    } else {
      if (plain.has(name)) fail(`${name} given twice`);
      plain.set(name, utf8FromBytes(text));
    }
  }
  if (typeof extended === "string") plain.set("filename", extended); // RFC 6266 §4.3: it wins
  return { value: value.toLowerCase(), params: plain };
}

const encoder = new TextEncoder();
const copier = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A copy of `text` that keeps no other string alive. A slice of a head's text is a view of it
 * in V8: a name or filename that the application keeps (FormData keeps names, file names and
 * types) kept the whole header section alive with it, up to maxHeaderSize per part (7.3 kB
 * per part measured for a 7 kB head). UTF-8 there and back gives the same string, unshared.
 */
export function ownCopy(text: string): string {
  return copier.decode(encoder.encode(text));
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text.charCodeAt(i) === SP || text.charCodeAt(i) === HTAB)) i++;
  return i;
}

// ext-value = charset "'" [ language ] "'" value-chars (RFC 8187 §3.2.1).
const EXT_VALUE =
  /^([A-Za-z0-9!#$%&+\-^_`{}~]+)'([A-Za-z0-9-]*)'((?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-Fa-f]{2})*)$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes an RFC 8187 ext-value: UTF-8 or ISO-8859-1, percent-encoded; null when it is
 * malformed, in another charset, or not valid UTF-8.
 */
function decodeExtValue(text: string): string | null {
  const m = EXT_VALUE.exec(text);
  if (m === null) return null;
  const charset = m[1]!.toLowerCase();
  const raw = m[3]!;
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      bytes[n++] = parseInt(raw.slice(i + 1, i + 3), 16);
      i += 2;
    } else bytes[n++] = c;
  }
  // latin1Text, not TextDecoder("iso-8859-1") (windows-1252), nor fromCharCode(...bytes),
  // which overflows the stack for a long value (a 200 kB one under a raised maxHeaderSize).
  if (charset === "iso-8859-1") return latin1Text(bytes, 0, n);
  if (charset !== "utf-8") return null;
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    return null;
  }
}

/**
 * Reads a byte string (one character per byte, as `Headers` gives a field value) as UTF-8, as
 * browsers send names and filenames (HTML's form submission encodes them in UTF-8); a string
 * that is not valid UTF-8 is kept as it is (each byte as its Latin-1 character).
 */
export function utf8FromBytes(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return ownCopy(text);
  try {
    return utf8.decode(Uint8Array.from(text, (c) => c.charCodeAt(0)));
  } catch {
    // Not the slice itself, which would keep the whole head alive (see ownCopy).
    return ownCopy(text);
  }
}
