// Copyright 2026 the wirestream authors. MIT license.
/**
 * Range-aware answers (RFC 9110 §13–14): 200, 206 with one range or `multipart/byteranges`,
 * 416, `If-Range`, the conditional requests that give 304 and 412, and `HEAD`.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { HttpError } from "../http/error.ts";
import { formatHttpDate, parseHttpDate } from "./_http_date.ts";
import { isEntityTag, parseEntityTags, strongMatch, weakMatch } from "./_entity_tag.ts";
import {
  byterangesBody,
  byterangesContentType,
  byterangesLength,
  checkContentType,
  layOutByteranges,
  type OpenRange,
  rangeBody,
} from "./byteranges.ts";
import { trimOws } from "../http/head.ts";
import { type ByteRange, contentRange, DEFAULT_MAX_RANGES, parseRange } from "./range.ts";

/** Options of {@linkcode serveRanges}: the representation, and how to answer for it. */
export interface ServeRangesOptions {
  /** The representation's length in bytes. */
  size: number;
  /**
   * Gives the bytes of a range, as {@linkcode writeMultipleRanges} takes it: called when the
   * body reaches the range (never for `HEAD`, 304, 412 or 416), once per range, and its
   * stream is cancelled when the client goes away. A 200 asks for the whole, `0` to
   * `size - 1` (and nothing when `size` is 0).
   */
  open: OpenRange;
  /**
   * The representation's media type: the `Content-Type` of a 200 and of a single-range 206,
   * and of each part of a multipart one. Left out when undefined.
   */
  contentType?: string | undefined;
  /**
   * The representation's entity-tag, as the `ETag` field writes it, quotes included: strong
   * (`"v1"`) or weak (`W/"v1"`). Only a strong one lets `If-Range` resume a download.
   */
  etag?: string | undefined;
  /**
   * When the representation last changed: `Last-Modified`, to the second. A time later than
   * now is sent as now (RFC 9110 §8.8.2.1).
   */
  lastModified?: Date | undefined;
  /**
   * The most ranges one request may list; a `Range` header with more is ignored (200). See
   * {@linkcode ParseRangeOptions.maxRanges}.
   *
   * @default {32}
   */
  maxRanges?: number;
  /**
   * More header fields for every answer (`Cache-Control`, say); those this function sets
   * replace them.
   */
  headers?: HeadersInit;
}

/**
 * Answers a `GET` or `HEAD` for a representation of `size` bytes that `open` reads, as
 * RFC 9110 says a server that supports byte ranges does:
 *
 * - **Conditions** (§13.2.2), in order: `If-Match` (strong comparison; `*` holds) or else
 *   `If-Unmodified-Since` fails with 412; `If-None-Match` (weak comparison) or else
 *   `If-Modified-Since` answers 304 with the validators and no body.
 * - **`Range`** (§14.2), parsed by {@linkcode parseRange}: one satisfiable range gets 206
 *   with `Content-Range`; several (after coalescing) get 206 with a `multipart/byteranges`
 *   body of {@linkcode writeMultipleRanges} under a random boundary; none satisfiable gets
 *   416 with Content-Range: bytes &#42;/size; a malformed header, one of another unit or one
 *   with more than `maxRanges` ranges is ignored (200).
 * - **`If-Range`** (§13.1.5): the ranges are served only when it holds, else the whole with
 *   200. An entity-tag holds when it matches `etag` by strong comparison, so a weak one never
 *   does; a date holds when it is `Last-Modified` exactly (to the second) and the change it
 *   stands for is over a second old, which makes it a strong validator (§8.8.2.2).
 * - **Every** 200 and 206 carries `Accept-Ranges: bytes`, `Content-Length` (of the body
 *   sent: a multipart one is measured in advance), and `ETag`, `Last-Modified` and
 *   `Content-Type` when given. Other methods get 405 with `Allow: GET, HEAD`.
 * - **`HEAD`** gets the status and fields a `GET` without `Range` would, and no body: it
 *   ignores `Range` and `If-Range`, since §14.2 defines range handling for `GET` only and
 *   says to ignore `Range` on other methods. The conditions still apply (304, 412).
 *
 * @param request The request.
 * @param options The representation: its size, how to read it, and its validators.
 * @returns The answer; its body is read from `open` only as it is sent.
 * @throws {RangeError} When `size` is not a safe integer from 0, `maxRanges` is not an
 * integer from 1 or `Infinity`, or `lastModified` is an invalid date.
 * @throws {TypeError} When `etag` is not an entity-tag, `contentType` is not a field value,
 * or `open` is not a function.
 *
 * @example A single range, many ranges, and a resumed download
 * ```ts
 * import { serveRanges } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("0123456789abcdefghij");
 * const options = {
 *   size: data.length,
 *   open: (r: { first: number; last: number }) => data.subarray(r.first, r.last + 1),
 *   contentType: "text/plain",
 *   etag: '"v1"',
 * };
 * const get = (headers: HeadersInit) => serveRanges(new Request("http://x/", { headers }), options);
 *
 * const single = get({ range: "bytes=-5" });
 * assert.equal(single.status, 206);
 * assert.equal(single.headers.get("content-range"), "bytes 15-19/20");
 * assert.equal(await single.text(), "fghij");
 *
 * const multi = get({ range: "bytes=0-1,10-11" });
 * assert.equal(multi.status, 206);
 * assert.match(multi.headers.get("content-type")!, /^multipart\/byteranges; boundary=\w+$/);
 * assert.equal(Number(multi.headers.get("content-length")), (await multi.bytes()).length);
 *
 * assert.equal(get({ range: "bytes=10-", "if-range": '"v1"' }).status, 206);
 * assert.equal(get({ range: "bytes=10-", "if-range": '"v0"' }).status, 200); // changed: all of it
 * assert.equal(get({ range: "bytes=20-" }).headers.get("content-range"), "bytes *" + "/20"); // 416
 * assert.equal(get({ "if-none-match": 'W/"v1"' }).status, 304);
 *
 * // HEAD ignores Range (RFC 9110 §14.2): the fields of the whole.
 * const head = serveRanges(new Request("http://x/", { method: "HEAD", headers: { range: "bytes=0-1" } }), options);
 * assert.equal(head.status, 200);
 * assert.equal(head.headers.get("content-length"), "20");
 * ```
 */
export function serveRanges(request: Request, options: ServeRangesOptions): Response {
  const { size, open, contentType, etag, lastModified } = options;
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError(`Invalid size: ${size} is not a safe integer from 0`);
  }
  const maxRanges = checkLimit("maxRanges", options.maxRanges ?? DEFAULT_MAX_RANGES, 1);
  if (typeof open !== "function") throw new TypeError("Invalid open: it is not a function");
  checkContentType(contentType);
  if (etag !== undefined && !isEntityTag(etag)) {
    throw new TypeError(`Invalid etag: ${JSON.stringify(etag).slice(0, 80)} is not an entity-tag`);
  }
  let modified: number | undefined;
  if (lastModified !== undefined) {
    modified = lastModified.getTime();
    if (Number.isNaN(modified)) throw new RangeError("Invalid lastModified: an invalid date");
    // RFC 9110 §8.8.2.1: an origin server "MUST NOT generate a Last-Modified date that is
    // later than the server's time of message origination"; a later one is replaced by now.
    modified = Math.min(modified, Date.now());
    // Last-Modified has seconds, and so do the conditions on it. Floored, not truncated: the
    // remainder of a time before 1970 is negative, and would round it up to a later second.
    modified = Math.floor(modified / 1000) * 1000;
  }
  const notAllowed = checkMethod(request);
  if (notAllowed !== null) return notAllowed;
  const headers = new Headers(options.headers);
  headers.set("accept-ranges", "bytes");
  if (etag !== undefined) headers.set("etag", etag);
  if (modified !== undefined) headers.set("last-modified", formatHttpDate(modified));

  const condition = evaluateConditions(request.headers, etag, modified);
  if (condition === 412) {
    return failure(request, 412, "Cannot serve: a precondition of the request failed", headers);
  }
  if (condition === 304) return new Response(null, { status: 304, headers });

  // RFC 9110 §14.2: "GET is the only method for which range handling is defined", and a
  // server "MUST ignore a Range header field received with a request method" without it.
  // If-Range goes with it (§13.1.5 ignores it without a Range), so HEAD gets a 200's fields.
  const rangeHeader = request.method === "GET" ? request.headers.get("range") : null;
  let result = parseRange(rangeHeader, size, { maxRanges });
  if (result.type !== "ignore" && !ifRangeHolds(request.headers.get("if-range"), etag, modified)) {
    result = { type: "ignore", reason: "absent" }; // the client's copy is stale: send it all
  }
  if (result.type === "unsatisfiable") {
    headers.set("content-range", `bytes */${size}`);
    return failure(
      request,
      416,
      `Cannot serve ranges: none of ${
        JSON.stringify(rangeHeader!.slice(0, 64))
      } lies within the ${size} bytes`,
      headers,
    );
  }
  const head = request.method === "HEAD";
  if (result.type === "ignore") {
    if (contentType !== undefined) headers.set("content-type", contentType);
    headers.set("content-length", String(size));
    const body = head || size === 0 ? null : rangeBody(open, { first: 0, last: size - 1 });
    return new Response(body, { status: 200, headers });
  }
  const ranges: readonly ByteRange[] = result.ranges;
  if (ranges.length === 1) {
    const range = ranges[0]!;
    if (contentType !== undefined) headers.set("content-type", contentType);
    headers.set("content-range", contentRange(range, size));
    headers.set("content-length", String(range.last - range.first + 1));
    return new Response(head ? null : rangeBody(open, range), { status: 206, headers });
  }
  const boundary = randomBoundary();
  // The part heads are built once, for the length and the body alike.
  const layout = layOutByteranges(ranges, { fullLength: size, boundary, contentType });
  headers.set("content-type", byterangesContentType(boundary));
  headers.set("content-length", String(byterangesLength(layout)));
  const body = head ? null : byterangesBody(open, layout);
  return new Response(body, { status: 206, headers });
}

/** 405 with `Allow` for a method other than GET and HEAD, else null. */
export function checkMethod(request: Request): Response | null {
  if (request.method === "GET" || request.method === "HEAD") return null;
  return failure(
    request,
    405,
    `Cannot serve ${JSON.stringify(request.method.slice(0, 64))}: only GET and HEAD`,
    new Headers({ allow: "GET, HEAD" }),
  );
}

/**
 * An error answer with a plain-text body (as {@linkcode HttpError.toResponse} makes it) and
 * its `Content-Length`; for `HEAD`, the same fields and no body.
 */
export function failure(
  request: Request,
  status: number,
  message: string,
  headers: Headers,
): Response {
  const response = new HttpError(status, message, { headers }).toResponse();
  response.headers.set("content-length", String(encoder.encode(message + "\n").length));
  if (request.method !== "HEAD") return response;
  response.body?.cancel();
  return new Response(null, { status, headers: response.headers });
}

const encoder = new TextEncoder();

/**
 * The preconditions of RFC 9110 §13.2.2 for GET and HEAD: 412, 304, or 0 to go on. A
 * malformed If-Match fails (it cannot be shown to hold); a malformed If-None-Match, or a date
 * that is not an HTTP-date, is ignored.
 */
function evaluateConditions(
  fields: Headers,
  etag: string | undefined,
  modified: number | undefined,
): 0 | 304 | 412 {
  const ifMatch = fields.get("if-match");
  if (ifMatch !== null) {
    const tags = parseEntityTags(ifMatch);
    if (tags !== "*" && !(tags?.some((tag) => strongMatch(tag, etag)) ?? false)) return 412;
  } else {
    const since = dateField(fields, "if-unmodified-since");
    if (since !== null && modified !== undefined && modified > since) return 412;
  }
  const ifNoneMatch = fields.get("if-none-match");
  if (ifNoneMatch !== null) {
    const tags = parseEntityTags(ifNoneMatch);
    if (tags === "*" || (tags?.some((tag) => weakMatch(tag, etag)) ?? false)) return 304;
  } else {
    const since = dateField(fields, "if-modified-since");
    if (since !== null && modified !== undefined && modified <= since) return 304;
  }
  return 0;
}

/** A date field's time, or null when absent or not an HTTP-date. */
function dateField(fields: Headers, name: string): number | null {
  const value = fields.get(name);
  if (value === null) return null;
  const time = parseHttpDate(trimOws(value));
  return Number.isNaN(time) ? null : time;
}

/** Whether If-Range lets the ranges be served (RFC 9110 §13.1.5); true when absent. */
function ifRangeHolds(
  value: string | null,
  etag: string | undefined,
  modified: number | undefined,
): boolean {
  if (value === null) return true;
  value = trimOws(value);
  if (value.startsWith('"') || value.startsWith("W/")) {
    return isEntityTag(value) && strongMatch(value, etag);
  }
  // A date is a strong validator when the representation cannot have changed twice within its
  // second (§8.8.2.2): the change was at least a second ago. `modified` is cut to the second,
  // so the change itself may be up to 999 ms after it.
  return modified !== undefined && parseHttpDate(value) === modified &&
    Date.now() >= modified + 2000;
}

/** 96 random bits in hex: a boundary no range's bytes will hold by chance. */
function randomBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}
