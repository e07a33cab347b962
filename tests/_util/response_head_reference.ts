// Copyright 2026 the wirestream authors. MIT license.
// A reference reading of an HTTP/1.1 response head, written from the grammar of RFC 9112 §4–5
// and RFC 9110 §5, for fuzz oracles. It walks bytes one at a time with a predicate per rule,
// and shares no code (and no regular expression) with lib/http/head.ts.

/** A response head as the reference reads it. */
export interface ReferenceResponseHead {
  version: string;
  status: number;
  reason: string;
  fields: [string, string][];
}

/**
 * What the reference makes of a head: the head, or the statuses a refusal may carry. A head
 * that is both malformed (400) and over `maxHeaders` (431) may be refused with either: no rule
 * orders the two checks.
 */
export type ReferenceResponseOutcome = { head: ReferenceResponseHead } | { refuse: number[] };

const SP = 0x20, HTAB = 0x09, CR = 0x0d, LF = 0x0a, COLON = 0x3a;

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
// RFC 5234 B.1: VCHAR = %x21-7E; RFC 9110 §5.5: obs-text = %x80-FF.
const isVchar = (b: number) => b >= 0x21 && b <= 0x7e;
const isObsText = (b: number) => b >= 0x80;
// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
// "_" / "`" / "|" / "~" / DIGIT / ALPHA.
const isTchar = (b: number) =>
  isDigit(b) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
  "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b));
// RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ); RFC 9110 §5.5: a field
// value is field-vchar (VCHAR / obs-text) with SP and HTAB between.
const isTextByte = (b: number) => b === HTAB || b === SP || isVchar(b) || isObsText(b);
const isOws = (b: number) => b === SP || b === HTAB;

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");

/**
 * Reads `bytes[start, end)`, a head that ends with the empty line (CRLF CRLF) as the library's
 * `parseResponseHead` receives it. Policies of wirestream encoded here, beyond the bare RFC:
 * - a bare CR or LF is refused (lib/http/head.ts module doc: "A bare LF or a bare CR anywhere
 *   in a head is a 400"), so is obs-fold and whitespace before the colon (parseFieldLines
 *   doc, "the field rules of requests" in tests/http/head_test.ts);
 * - every control character but HTAB in a value is refused, not only CR, LF and NUL
 *   (RFC 9110 §5.5 lets a recipient reject them; parseFieldLines doc);
 * - the space after the status code may be missing when no reason follows
 *   (tests/http/head_test.ts: `"HTTP/1.1 101"` is a 101), and any three digits are a status
 *   code, as RFC 9112 §4's `status-code = 3DIGIT` says (`"HTTP/1.1 000 x"` is a 0 there);
 * - more than `maxHeaders` field lines is a 431 (HeadLimits doc).
 */
export function referenceParseResponseHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  maxHeaders: number,
): ReferenceResponseOutcome {
  // The head is status-line CRLF *( field-line CRLF ) CRLF: drop the final CRLF, then every
  // line ends with CRLF.
  const text = bytes.subarray(start, end - 2);
  const lines: Uint8Array[] = [];
  let malformed = false;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === CR && text[i + 1] === LF) {
      lines.push(text.subarray(lineStart, i));
      lineStart = i + 2;
      i++;
    } else if (text[i] === CR || text[i] === LF) {
      malformed = true; // a bare CR or LF
    }
  }
  if (lineStart !== text.length) malformed = true; // cannot happen for a head ending CRLF CRLF

  const statusLine = lines[0] ?? new Uint8Array(0);
  const head = readStatusLine(statusLine);
  if (head === null) malformed = true;
  const fieldLines = lines.slice(1);
  for (const line of fieldLines) {
    const field = readFieldLine(line);
    if (field === null) malformed = true;
    else head?.fields.push(field);
  }
  const tooMany = fieldLines.length > maxHeaders;
  if (malformed || tooMany) {
    return { refuse: [...(malformed ? [400] : []), ...(tooMany ? [431] : [])] };
  }
  return { head: head! };
}

/**
 * RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ], with
 * HTTP-version = "HTTP/" DIGIT "." DIGIT (§2.3, case-sensitive) and status-code = 3DIGIT.
 */
function readStatusLine(line: Uint8Array): ReferenceResponseHead | null {
  const name = [0x48, 0x54, 0x54, 0x50, 0x2f]; // "HTTP/"
  if (line.length < 12) return null;
  if (!name.every((b, i) => line[i] === b)) return null;
  if (!isDigit(line[5]!) || line[6] !== 0x2e || !isDigit(line[7]!)) return null;
  if (line[8] !== SP) return null;
  if (!isDigit(line[9]!) || !isDigit(line[10]!) || !isDigit(line[11]!)) return null;
  let reason = "";
  if (line.length > 12) {
    if (line[12] !== SP) return null;
    const phrase = line.subarray(13);
    if (!phrase.every(isTextByte)) return null;
    reason = latin1(phrase);
  }
  const status = (line[9]! - 0x30) * 100 + (line[10]! - 0x30) * 10 + (line[11]! - 0x30);
  return { version: latin1(line.subarray(0, 8)), status, reason, fields: [] };
}

/**
 * RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, with field-name a token
 * (RFC 9110 §5.1), matched case-insensitively and so given here in lower case.
 */
function readFieldLine(line: Uint8Array): [string, string] | null {
  const colon = line.indexOf(COLON);
  if (colon < 1) return null;
  const name = line.subarray(0, colon);
  if (!name.every(isTchar)) return null;
  let valueStart = colon + 1, valueEnd = line.length;
  if (!line.subarray(valueStart).every(isTextByte)) return null;
  while (valueStart < valueEnd && isOws(line[valueStart]!)) valueStart++;
  while (valueEnd > valueStart && isOws(line[valueEnd - 1]!)) valueEnd--;
  return [latin1(name).toLowerCase(), latin1(line.subarray(valueStart, valueEnd))];
}
