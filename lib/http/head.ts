// Copyright 2026 the wirestream authors. MIT license.
/**
 * HTTP/1.1 message heads (RFC 9112 §2–5): finding a head's end in buffered bytes, parsing a
 * request or a response head, with limits.
 *
 * Policy: lines end with CRLF. A bare LF or a bare CR anywhere in a head is a 400 (RFC 9112
 * §2.2 lets a recipient accept a bare LF; refusing it closes a door to request smuggling
 * between parsers that disagree). Empty lines before a request line are skipped (§2.2).
 *
 * @module
 */

import { latin1Text } from "./_latin1.ts";
import { HttpError } from "./error.ts";
import type { BufferedReader } from "./reader.ts";

/** Limits of a request head, with safe defaults. */
export interface HeadLimits {
  /**
   * The longest request line, in bytes, CRLF excluded (414 URI Too Long above it).
   *
   * @default {8192}
   */
  maxRequestLineSize?: number;
  /**
   * The largest head, in bytes, request line and final CRLF included (431 above it).
   *
   * @default {16384}
   */
  maxHeadSize?: number;
  /**
   * The most header fields in a head (431 above it).
   *
   * @default {100}
   */
  maxHeaders?: number;
}

/** A parsed request head. */
export interface RequestHead {
  /** The method, case kept (methods are case-sensitive). */
  method: string;
  /** The request-target as sent: origin, absolute, authority or asterisk form. */
  target: string;
  /** The protocol version. */
  version: "HTTP/1.0" | "HTTP/1.1";
  /** The header fields in order, names lowercased. */
  fields: [string, string][];
}

/** A parsed response head. */
export interface ResponseHead {
  /** The protocol version, as sent (`HTTP/1.1`). */
  version: string;
  /** The three-digit status code. */
  status: number;
  /** The reason phrase; may be empty. */
  reason: string;
  /** The header fields in order, names lowercased. */
  fields: [string, string][];
}

/** A token (RFC 9110 §5.6.2): a method, a field name, a subprotocol. Internal. */
export const TOKEN: RegExp = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * The methods Fetch upper-cases in a `Request` ("normalize a method"). In another case they are
 * other methods (RFC 9110 §9.1: "The method token is case-sensitive"). Internal.
 */
export const NORMALIZED_METHODS: ReadonlySet<string> = new Set([
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
]);

/**
 * Why `method` is not served when it differs only in case from one that Fetch upper-cases
 * (`get`, `Head`), else null. Methods are case-sensitive (RFC 9110 §9.1): `head` is not HEAD,
 * yet a `Request` would say HEAD, and a response framed as HEAD's (no body) would desynchronise
 * a proxy that reads it as the answer to `head`. Both engines answer it with 501. Internal.
 *
 * @param method The method as sent.
 * @param upper The method in upper case, when the caller has it.
 */
export function methodCaseProblem(method: string, upper = method.toUpperCase()): string | null {
  if (upper === method || !NORMALIZED_METHODS.has(upper)) return null;
  return `Cannot serve request: method ${method} is not implemented (methods are case-sensitive)`;
}

/**
 * Methods both engines answer 501 (in any case): CONNECT is for proxies, TRACE and TRACK
 * would echo a request's credentials back to a script (cross-site tracing). Internal.
 */
export const UNSUPPORTED_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);

/**
 * The fields of the connection and of the message's framing: the engine writes them itself (a
 * handler's are dropped, but for its Upgrade, which goes out with its connection option), and
 * none may be a trailer (RFC 9110 §6.5.1). Internal.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);

/** 1 for each character code that is a tchar (RFC 9110 §5.6.2), as TOKEN matches. Internal. */
export const TCHAR: Uint8Array = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}
// A field value: visible ASCII, obs-text, spaces and tabs (RFC 9110 §5.5); no other controls.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// A request-target: visible ASCII with no fragment (RFC 9112 §3.2) and no backslash. RFC 3986
// allows none of `"<>\^`{|}` in a URI, but only the backslash changes what a target means: the
// WHATWG URL parser that makes `request.url` reads it as "/" in http(s) URLs, so
// `/public\..\admin` would reach routing as `/admin` while an RFC 3986 proxy in front sees a
// path under /public. The others keep their meaning there (percent-encoded or kept as they
// are), and clients send some of them unencoded (JSON or `|` in a query) to servers that take
// them: refusing them would break those clients and protect nothing.
const TARGET = /^[\x21\x22\x24-\x5b\x5d-\x7e]+$/;
const VERSION = /^HTTP\/(\d)\.(\d)$/;
/**
 * `text` without the optional whitespace (SP, HTAB) at its ends (RFC 9110 §5.6.3): trim()
 * would also take 0xA0, and a framing header read differently from a proxy in front is how
 * requests get smuggled. A loop, not `/^[ \t]+|[ \t]+$/`: that regex retries at every space
 * of a run inside the text, which makes a peer's long run of spaces cost quadratic time.
 * Internal.
 */
export function trimOws(text: string): string {
  let start = 0, end = text.length;
  while (start < end && isOws(text.charCodeAt(start))) start++;
  while (end > start && isOws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
// A host (RFC 3986 §3.2.2): an IP literal or a reg-name, as a pattern for the two below.
const HOST_PATTERN = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)`;
/**
 * A Host field value or an absolute-form target's authority: a host and an optional port
 * (RFC 9110 §7.2, RFC 3986 §3.2). Internal.
 */
export const HOST: RegExp = new RegExp(`^${HOST_PATTERN}(?::\\d*)?$`);

/**
 * `hostname` as a URL or Host writes it: an IPv6 address in brackets (RFC 3986 §3.2.2).
 * Internal.
 */
export function urlHost(hostname: string): string {
  return hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
}

/**
 * Why `value`, a `Host` (or a URL's authority, `what`), cannot be served: the 400's message,
 * or null for a valid authority ({@linkcode HOST}). Internal.
 */
export function authorityProblem(what: "Host" | "authority", value: string): string | null {
  if (HOST.test(value)) return null;
  return `Cannot serve request: ${what} ${
    JSON.stringify(value.slice(0, 64))
  } is not a valid authority`;
}
// An authority-form target (CONNECT): a host and a port, which is not optional (RFC 9112 §3.2.3).
const AUTHORITY = new RegExp(`^${HOST_PATTERN}:\\d+$`);
// An absolute-form target (RFC 9112 §3.2.2): its scheme and its authority.
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/;

/** The form of a request-target (RFC 9112 §3.2). Internal. */
export type TargetForm = "origin" | "absolute" | "authority" | "asterisk";

/** The form of a request-target that {@linkcode parseRequestHead} let through. Internal. */
export function targetForm(target: string): TargetForm {
  return target.charCodeAt(0) === 0x2f
    ? "origin"
    : target === "*"
    ? "asterisk"
    : ABSOLUTE.test(target)
    ? "absolute"
    : "authority";
}

/**
 * The scheme (lowercased) and authority of an absolute-form target, or null for a target in
 * another form. Internal.
 */
export function absoluteTargetParts(target: string): [scheme: string, authority: string] | null {
  const m = ABSOLUTE.exec(target);
  return m === null ? null : [m[1]!.toLowerCase(), m[2]!];
}

const LF = 10, CR = 13;

function resolve(limits: HeadLimits): Required<HeadLimits> {
  return {
    maxRequestLineSize: limits.maxRequestLineSize ?? 8192,
    maxHeadSize: limits.maxHeadSize ?? 16_384,
    maxHeaders: limits.maxHeaders ?? 100,
  };
}

/**
 * Looks for the end of a head in `bytes[start, end)`, scanning from `from` (bytes before it
 * were scanned already).
 *
 * @returns The index just past the empty line that ends the head, or -1 when it is not there
 * yet.
 * @throws {HttpError} 400 for a bare LF, 414 for a request line over its limit, 431 for a
 * head over its limit (as soon as the bytes show it, without waiting for the end).
 */
export function findHeadEnd(
  bytes: Uint8Array,
  start: number,
  from: number,
  end: number,
  limits: HeadLimits = {},
  kind: "request" | "response" = "request",
): number {
  const { maxRequestLineSize, maxHeadSize } = resolve(limits);
  // Search only up to `end`: indexOf on the whole buffer would scan stale bytes past it.
  const window = end === bytes.length ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, end);
  let at = Math.max(from, start);
  while (true) {
    const lf = window.indexOf(LF, at);
    if (lf === -1 || lf >= end) break;
    if (lf === start || bytes[lf - 1] !== CR) {
      throw new HttpError(400, `Cannot read ${kind} head: a line ends with a bare LF`);
    }
    if (
      kind === "request" && lf - 1 - start > maxRequestLineSize && bytes.indexOf(LF, start) === lf
    ) {
      throw new HttpError(
        414,
        `Cannot read request head: the request line exceeds ${maxRequestLineSize} bytes`,
      );
    }
    if (lf - start + 1 > maxHeadSize) {
      throw new HttpError(431, `Cannot read ${kind} head: it exceeds ${maxHeadSize} bytes`);
    }
    if (lf - start >= 3 && bytes[lf - 2] === LF) return lf + 1;
    at = lf + 1;
  }
  if (kind === "request" && end - start > maxRequestLineSize + 1) {
    const first = window.indexOf(LF, start);
    if (first === -1 || first >= end) {
      throw new HttpError(
        414,
        `Cannot read request head: the request line exceeds ${maxRequestLineSize} bytes`,
      );
    }
  }
  if (end - start > maxHeadSize) {
    throw new HttpError(431, `Cannot read ${kind} head: it exceeds ${maxHeadSize} bytes`);
  }
  return -1;
}

/** Parses the field lines of a head; names are lowercased. */
function parseFields(lines: string[], kind: string, maxHeaders: number): [string, string][] {
  if (lines.length - 1 > maxHeaders) {
    throw new HttpError(
      431,
      `Cannot read ${kind} head: ${lines.length - 1} fields exceed ${maxHeaders}`,
    );
  }
  return parseFieldLines(lines, 1, `Cannot read ${kind} head`);
}

/**
 * Parses field lines (RFC 9110 §5, RFC 9112 §5): a token name, a colon with no whitespace
 * before it, a value with no control character but HTAB, trimmed of SP and HTAB. Used for
 * heads and for chunked trailers.
 *
 * @param lines The lines, CRLF removed.
 * @param from The index of the first field line.
 * @param action What the error messages say was tried (`Cannot read request head`).
 * @returns The fields, names lowercased, in order.
 * @throws {HttpError} 400 for a malformed line.
 */
export function parseFieldLines(lines: string[], from: number, action: string): [string, string][] {
  const fields: [string, string][] = [];
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name)) {
      // Also obs-fold (a line starting with whitespace) and whitespace before the colon.
      throw new HttpError(400, `${action}: bad field line ${JSON.stringify(line.slice(0, 64))}`);
    }
    const value = line.slice(colon + 1);
    if (BAD_VALUE.test(value)) {
      throw new HttpError(
        400,
        `${action}: field ${JSON.stringify(name)} holds a control character`,
      );
    }
    fields.push([name.toLowerCase(), trimOws(value)]);
  }
  return fields;
}

/** Splits a head into lines, refusing a bare CR. */
function lines(bytes: Uint8Array, start: number, end: number, kind: string): string[] {
  const text = latin1Text(bytes, start, end - 4);
  const result = text.split("\r\n");
  if (text.includes("\r")) {
    for (const line of result) {
      if (line.includes("\r")) {
        throw new HttpError(400, `Cannot read ${kind} head: a line holds a bare CR`);
      }
    }
  }
  return result;
}

/**
 * Parses a request head (RFC 9112 §3, §5): the request line (a token method, a request-target
 * of visible ASCII in origin, absolute, authority or asterisk form, HTTP/1.0 or HTTP/1.1) and
 * the field lines (token names, no whitespace before the colon, no obs-fold, no control
 * characters in values). A target with a `#` (a fragment) or a `\` is refused: URL parsers
 * read a backslash as `/` in http URLs, and RFC 3986 allows it nowhere in a URI.
 *
 * @param bytes The buffer.
 * @param start Where the head begins.
 * @param end Where it ends, just past its empty line (see {@linkcode findHeadEnd}).
 * @param limits The field count limit (the sizes are checked by `findHeadEnd`).
 * @returns The head.
 * @throws {HttpError} 400 for a malformed head, 505 for a major version other than 1 (a
 * higher minor one, `HTTP/1.2`, is read as `HTTP/1.1`: RFC 9110 §2.5), 431 for too many fields.
 *
 * @example Parsing a request head
 * ```ts
 * import { findHeadEnd, parseRequestHead } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n");
 * const head = parseRequestHead(bytes, 0, findHeadEnd(bytes, 0, 0, bytes.length));
 * assert.deepEqual(head, {
 *   method: "GET", target: "/a?b", version: "HTTP/1.1", fields: [["host", "x"], ["accept", "text/plain"]],
 * });
 * ```
 */
export function parseRequestHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits = {},
): RequestHead {
  // One string for the whole head, read by index: no string per line, and none for a method,
  // a version or a field name that is a common one. The checks, their order and their
  // messages are those of a parse line by line (tests/fuzz/head_fuzz_test.ts compares them).
  const text = latin1Text(bytes, start, end - 4);
  const length = text.length;
  // Bare CRs first; then every CR ends a line, and the CRLFs count the field lines.
  let lines = 1;
  for (let cr = text.indexOf("\r"); cr !== -1; cr = text.indexOf("\r", cr + 2)) {
    if (text.charCodeAt(cr + 1) !== LF) {
      throw new HttpError(400, "Cannot read request head: a line holds a bare CR");
    }
    lines++;
  }
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd === -1) lineEnd = length;
  const first = text.indexOf(" "), second = first === -1 ? -1 : text.indexOf(" ", first + 1);
  const third = second === -1 ? -1 : text.indexOf(" ", second + 1);
  if (
    first <= 0 || first >= lineEnd || second === -1 || second >= lineEnd ||
    (third !== -1 && third < lineEnd)
  ) {
    throw new HttpError(
      400,
      `Cannot read request head: bad request line ${
        JSON.stringify(text.slice(0, Math.min(lineEnd, 64)))
      }`,
    );
  }
  const method = knownMethod(text, first) ?? text.slice(0, first);
  if (!isToken(method, 0, method.length)) {
    throw new HttpError(
      400,
      `Cannot read request head: method ${JSON.stringify(method.slice(0, 64))} is not a token`,
    );
  }
  const target = text.slice(first + 1, second);
  let version: "HTTP/1.0" | "HTTP/1.1";
  if (lineEnd - second === 9 && text.startsWith("HTTP/1.1", second + 1)) version = "HTTP/1.1";
  else if (lineEnd - second === 9 && text.startsWith("HTTP/1.0", second + 1)) version = "HTTP/1.0";
  else {
    const versionText = text.slice(second + 1, lineEnd);
    const v = VERSION.exec(versionText);
    if (v === null) {
      throw new HttpError(
        400,
        `Cannot read request head: ${
          JSON.stringify(versionText.slice(0, 64))
        } is not an HTTP version`,
      );
    }
    // RFC 9110 §2.5: a higher minor version of a major version we implement is read as the
    // highest minor version we conform to.
    if (v[1] !== "1") {
      throw new HttpError(
        505,
        `Cannot serve ${versionText}: only HTTP/1.0 and HTTP/1.1 are supported`,
      );
    }
    version = "HTTP/1.1";
  }
  if (!TARGET.test(target)) {
    throw new HttpError(
      400,
      `Cannot read request head: request-target ${
        JSON.stringify(target.slice(0, 64))
      } holds a character that is not allowed`,
    );
  }
  const form = targetForm(target);
  if (
    (form === "asterisk" && method !== "OPTIONS") ||
    (form === "authority") !== (method === "CONNECT") ||
    (form === "authority" && !AUTHORITY.test(target))
  ) {
    throw new HttpError(
      400,
      `Cannot read request head: request-target ${
        JSON.stringify(target.slice(0, 64))
      } does not suit ${method}`,
    );
  }
  const maxHeaders = limits.maxHeaders ?? 100;
  if (lines - 1 > maxHeaders) {
    throw new HttpError(
      431,
      `Cannot read request head: ${lines - 1} fields exceed ${maxHeaders}`,
    );
  }
  const fields: [string, string][] = [];
  for (let k = 1; k < lines; k++) {
    const at = lineEnd + 2;
    lineEnd = text.indexOf("\r\n", at);
    if (lineEnd === -1) lineEnd = length;
    fields.push(fieldOf(text, at, lineEnd, "Cannot read request head"));
  }
  return { method, target, version, fields };
}

/**
 * The field of `text[start, end)` (a field line, CRLF excluded), as {@linkcode parseFieldLines}
 * parses it: a common name is found without a string of its own.
 */
function fieldOf(text: string, start: number, end: number, action: string): [string, string] {
  let colon = text.indexOf(":", start);
  if (colon >= end) colon = -1;
  const known = colon === -1 ? undefined : knownName(text, start, colon);
  if (known === undefined && (colon === -1 || !isToken(text, start, colon))) {
    // Also obs-fold (a line starting with whitespace) and whitespace before the colon.
    const line = text.slice(start, end);
    throw new HttpError(400, `${action}: bad field line ${JSON.stringify(line.slice(0, 64))}`);
  }
  let from = colon + 1, to = end;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      throw new HttpError(
        400,
        `${action}: field ${JSON.stringify(text.slice(start, colon))} holds a control character`,
      );
    }
  }
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return [known ?? text.slice(start, colon).toLowerCase(), text.slice(from, to)];
}

/** Whether `text[start, end)` is a token (what {@linkcode TOKEN} tests, with no string). */
function isToken(text: string, start: number, end: number): boolean {
  if (start >= end) return false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (TCHAR[c] !== 1) return false;
  }
  return true;
}

const METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"];

/** The method that `text` starts with and that ends at `end`, when it is a common one. */
function knownMethod(text: string, end: number): string | undefined {
  for (let i = 0; i < METHODS.length; i++) {
    const method = METHODS[i]!;
    if (method.length === end && text.startsWith(method)) return method;
  }
  return undefined;
}

// Field names that requests carry often, lowercase, by length: found in a head, they need no
// string of their own.
const NAMES_BY_LENGTH: string[][] = [];
for (
  const name of [
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "dnt",
    "expect",
    "forwarded",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "keep-alive",
    "origin",
    "pragma",
    "priority",
    "range",
    "referer",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "sec-websocket-extensions",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-version",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "upgrade-insecure-requests",
    "user-agent",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-requested-with",
  ]
) (NAMES_BY_LENGTH[name.length] ??= []).push(name);

/** The common field name that `text[start, end)` is, in any case; undefined for another. */
function knownName(text: string, start: number, end: number): string | undefined {
  const names = NAMES_BY_LENGTH[end - start];
  if (names === undefined) return undefined;
  outer: for (let n = 0; n < names.length; n++) {
    const name = names[n]!;
    for (let i = 0; i < name.length; i++) {
      let c = text.charCodeAt(start + i);
      if (c >= 0x41 && c <= 0x5a) c |= 0x20; // A-Z to a-z: names match case-insensitively
      if (c !== name.charCodeAt(i)) continue outer;
    }
    return name;
  }
  return undefined;
}

/**
 * Parses a response head (RFC 9112 §4): `HTTP/x.y`, a three-digit status, a space and an
 * optional reason, then the field lines.
 *
 * @param bytes The buffer.
 * @param start Where the head begins.
 * @param end Where it ends, just past its empty line.
 * @param limits The field count limit.
 * @returns The head.
 * @throws {HttpError} 400 for a malformed head, 431 for too many fields.
 *
 * @example Parsing a response head
 * ```ts
 * import { parseResponseHead } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
 * const head = parseResponseHead(bytes, 0, bytes.length);
 * assert.deepEqual([head.status, head.reason, head.fields], [101, "Switching Protocols", [["upgrade", "websocket"]]]);
 * ```
 */
export function parseResponseHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits = {},
): ResponseHead {
  const all = lines(bytes, start, end, "response");
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(all[0]!);
  if (m === null) {
    throw new HttpError(
      400,
      `Cannot read response head: bad status line ${JSON.stringify(all[0]!.slice(0, 64))}`,
    );
  }
  return {
    version: m[1]!,
    status: Number(m[2]),
    reason: m[3] ?? "",
    fields: parseFields(all, "response", resolve(limits).maxHeaders),
  };
}

/**
 * Reads a request head from `reader` and consumes it, skipping empty lines before it.
 *
 * @param reader The buffered reader; its buffer must hold at least `maxHeadSize` bytes.
 * @param limits The head limits.
 * @returns The head, or null when the stream ended before any byte of one.
 * @throws {HttpError} As {@linkcode findHeadEnd} and {@linkcode parseRequestHead}, and 400
 * when the stream ends inside the head, or as soon as what came cannot begin one (a request
 * line that does not begin with a method, a field line that does not begin with a name: a
 * TLS handshake on a plain port), rather than when a timeout or limit is reached.
 */
export async function readRequestHead(
  reader: BufferedReader,
  limits: HeadLimits = {},
): Promise<RequestHead | null> {
  const end = await readHead(reader, "request", limits);
  if (end === -1) return null;
  const head = parseRequestHead(reader.buffer, reader.start, end, limits);
  reader.consume(end - reader.start);
  return head;
}

/**
 * Reads a response head from `reader` and consumes it.
 *
 * @param reader The buffered reader.
 * @param limits The head limits.
 * @returns The head.
 * @throws {HttpError} As {@linkcode parseResponseHead}, and 400 when the stream ends first,
 * or as soon as what came cannot begin a head (it does not begin with `HTTP/`, or a field line
 * does not begin with a name).
 */
export async function readResponseHead(
  reader: BufferedReader,
  limits: HeadLimits = {},
): Promise<ResponseHead> {
  const end = await readHead(reader, "response", limits);
  if (end === -1) throw new HttpError(400, "Cannot read response head: the connection ended first");
  const head = parseResponseHead(reader.buffer, reader.start, end, limits);
  reader.consume(end - reader.start);
  return head;
}

/**
 * The request head already buffered in `reader`, consumed, with no promise in between (a
 * pipelined or kept-alive request's head usually is whole by the time it is looked for); or
 * undefined, with only empty lines consumed, when the buffer does not hold a whole head.
 * Internal: the pipeline's fast path before {@linkcode readRequestHead}.
 *
 * @throws {HttpError} As {@linkcode findHeadEnd} and {@linkcode parseRequestHead}.
 */
export function takeRequestHead(
  reader: BufferedReader,
  limits: HeadLimits,
): RequestHead | undefined {
  skipEmptyLines(reader);
  const end = findHeadEnd(reader.buffer, reader.start, reader.start, reader.end, limits, "request");
  if (end === -1) return undefined;
  const head = parseRequestHead(reader.buffer, reader.start, end, limits);
  reader.consume(end - reader.start);
  return head;
}

/** Skips empty lines before a request line (RFC 9112 §2.2); returns whether there were any. */
function skipEmptyLines(reader: BufferedReader): boolean {
  let skipped = false;
  while (
    reader.length >= 2 && reader.buffer[reader.start] === CR &&
    reader.buffer[reader.start + 1] === LF
  ) {
    reader.consume(2);
    skipped = true;
  }
  return skipped;
}

const HTTP_SLASH = [0x48, 0x54, 0x54, 0x50, 0x2f]; // "HTTP/"

/**
 * Checks the bytes of a head not yet whole as they come, each once: a peer that speaks
 * another protocol (TLS, SSH) or sends binary data before a head's end is refused at once,
 * not when the head's timeout or size limit is reached. Looks at the start (a response's
 * `HTTP/`, a request's method) and at the start of each line (its field name); the rest is
 * left to the parser once the head is whole.
 */
class HeadStart {
  readonly #kind: "request" | "response";
  /** How many bytes from the head's start were checked. */
  #checked = 0;
  /** Whether the current line began after the first. */
  #field = false;
  /** Whether the current line's method or field name is still under way. */
  #name = true;
  /** Whether that method or name has a character yet. */
  #named = false;

  constructor(kind: "request" | "response") {
    this.#kind = kind;
  }

  /** The head's start moved past empty lines: what comes is checked from scratch. */
  reset(): void {
    this.#checked = 0;
    this.#field = false;
    this.#name = true;
    this.#named = false;
  }

  /** Why `bytes[start, end)` cannot begin a head, or null; looks only at bytes not seen. */
  problem(bytes: Uint8Array, start: number, end: number): string | null {
    const response = this.#kind === "response";
    for (let i = start + this.#checked; i < end; i++) {
      const c = bytes[i]!;
      const at = i - start;
      if (response && at < HTTP_SLASH.length && c !== HTTP_SLASH[at]) {
        return "it does not begin with HTTP/";
      }
      if (c === LF) {
        this.#field = true;
        this.#name = true;
        this.#named = false;
      } else if (this.#name) {
        if (!this.#field) {
          // A response's status line: only its start is checked. A request's method is a
          // token up to its space (or the CR of an empty line before the request).
          if (response || c === CR) this.#name = false;
          else if (c === 0x20 && this.#named) this.#name = false;
          else if (TCHAR[c] === 0) return "its request line does not begin with a method";
          else this.#named = true;
        } else if (c === CR || (c === 0x3a && this.#named)) {
          this.#name = false; // a field name up to its colon, or the head's empty line
        } else if (TCHAR[c] === 0) return "a field line does not begin with a field name";
        else this.#named = true;
      }
    }
    this.#checked = end - start;
    return null;
  }
}

/** Fills `reader` until a whole head is buffered; returns its end, or -1 at a clean end. */
async function readHead(
  reader: BufferedReader,
  kind: "request" | "response",
  limits: HeadLimits,
): Promise<number> {
  let scanned = 0;
  const begun = new HeadStart(kind);
  while (true) {
    if (kind === "request" && skipEmptyLines(reader)) {
      scanned = 0;
      begun.reset();
    }
    const end = findHeadEnd(
      reader.buffer,
      reader.start,
      reader.start + scanned,
      reader.end,
      limits,
      kind,
    );
    if (end !== -1) return end;
    const problem = begun.problem(reader.buffer, reader.start, reader.end);
    if (problem !== null) throw new HttpError(400, `Cannot read ${kind} head: ${problem}`);
    scanned = Math.max(0, reader.length - 3); // the end may straddle the next fill
    if (!(await reader.fill())) {
      if (reader.length === 0 && reader.done) return -1;
      if (!reader.done) {
        throw new HttpError(431, `Cannot read ${kind} head: it exceeds the read buffer`);
      }
      throw new HttpError(400, `Cannot read ${kind} head: the connection ended inside it`);
    }
  }
}

/**
 * Whether a comma-separated field value holds `token`, case-insensitively (RFC 9110 §5.6.1).
 *
 * @param value The field value, or null when absent.
 * @param token The token, lowercase.
 * @returns Whether it is one of the list's items.
 *
 * @example Checking Connection
 * ```ts
 * import { hasToken } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hasToken("keep-alive, Upgrade", "upgrade"), true);
 * assert.equal(hasToken("upgraded", "upgrade"), false);
 * ```
 */
export function hasToken(value: string | null | undefined, token: string): boolean {
  if (value === null || value === undefined) return false;
  for (const part of value.split(",")) {
    if (trimOws(part).toLowerCase() === token) return true;
  }
  return false;
}
