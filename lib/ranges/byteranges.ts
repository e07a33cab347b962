// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `writeMultipleRanges`: the `multipart/byteranges` body of a 206 answer to a request
 * for several ranges (RFC 9110 §14.6), streamed range by range, with its exact length known
 * in advance.
 *
 * @module
 */

import { isValidBoundary } from "../multipart/parser.ts";
import { latin1Bytes } from "../http/_latin1.ts";
import { TOKEN } from "../http/head.ts";
import { type ByteRange, contentRange } from "./range.ts";

/** The bytes of one range: a stream of them, or all of them at once. */
export type RangeSource = ReadableStream<Uint8Array> | Uint8Array;

/**
 * Gives the bytes of `range` (Ktor's `channelProducer`): a stream of exactly
 * `range.last - range.first + 1` bytes (for a file: open, seek to `range.first`, read that
 * many), or those bytes. It is called once per range, when the body reaches that range, and a
 * stream it gives is read as the body is read (backpressure) and cancelled when the body is.
 */
export type OpenRange = (range: ByteRange) => RangeSource | Promise<RangeSource>;

/** Options of {@linkcode writeMultipleRanges} and {@linkcode calculateMultipleRangesBodyLength}. */
export interface WriteMultipleRangesOptions {
  /**
   * The length of the whole representation in bytes, for each part's `Content-Range`
   * (`bytes 0-9/1000`); `undefined` writes `*` for a length not known (`bytes 0-9/*`). Every
   * range must lie below it.
   */
  fullLength?: number | undefined;
  /**
   * The boundary between parts, which the answer's `Content-Type` names
   * (`multipart/byteranges; boundary=…`, quoted when it is not a token: see
   * {@linkcode byterangesContentType}): 1 to 70 characters of RFC 2046 §5.1.1 (letters,
   * digits and `'()+_,-./:=? `), not ending in a space, and found nowhere in the ranges' bytes
   * (a random one is: `crypto.randomUUID()` fits).
   */
  boundary: string;
  /**
   * The representation's media type, which each part carries as `Content-Type`; `undefined`
   * leaves the field out (RFC 9110 §14.6: only a representation that has one).
   */
  contentType?: string | undefined;
}

/**
 * Ktor's `writeMultipleRanges`: the `multipart/byteranges` body of RFC 9110 §14.6 for
 * `ranges` of a representation whose bytes `open` gives. Each part is the delimiter, the
 * part's `Content-Type` and `Content-Range`, an empty line and the range's bytes; the close
 * delimiter ends the body:
 *
 * ```text
 * --<boundary>\r\n
 * Content-Type: <contentType>\r\n
 * Content-Range: bytes <first>-<last>/<fullLength or *>\r\n
 * \r\n
 * <the range's bytes>\r\n
 * --<boundary>--\r\n
 * ```
 *
 * The body is pulled: `open` is called for a range only when the reader reaches it, one
 * range at a time, and a range's stream is read no faster than the body is. A source that
 * gives more or fewer bytes than its range holds errors the body with a `RangeError` (the
 * reader must not take a cut or padded part for a whole one), and its stream is cancelled;
 * cancelling the body cancels the stream of the range being read. Chunks of a source are
 * passed on as they are, not copied. {@linkcode calculateMultipleRangesBodyLength} gives the
 * body's length in advance, for `Content-Length`.
 *
 * @param open Gives each range's bytes.
 * @param ranges The ranges, in the order of the parts (at least one).
 * @param options The boundary, the media type and the representation's length.
 * @returns The body.
 * @throws {TypeError} When the boundary or the media type is not valid.
 * @throws {RangeError} When `ranges` is empty, or a range is not a pair of safe integers
 * with `0 <= first <= last < fullLength`.
 *
 * @example Two ranges of bytes in memory
 * ```ts
 * import { calculateMultipleRangesBodyLength, writeMultipleRanges } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("Hello, ranges!");
 * const ranges = [{ first: 0, last: 4 }, { first: 7, last: 12 }];
 * const options = { fullLength: data.length, boundary: "SEPARATOR", contentType: "text/plain" };
 * const body = writeMultipleRanges((r) => data.subarray(r.first, r.last + 1), ranges, options);
 * const text = await new Response(body).text();
 * assert.equal(
 *   text,
 *   "--SEPARATOR\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/14\r\n\r\nHello\r\n" +
 *     "--SEPARATOR\r\nContent-Type: text/plain\r\nContent-Range: bytes 7-12/14\r\n\r\nranges\r\n" +
 *     "--SEPARATOR--\r\n",
 * );
 * assert.equal(calculateMultipleRangesBodyLength(ranges, options), text.length);
 * ```
 */
export function writeMultipleRanges(
  open: OpenRange,
  ranges: readonly ByteRange[],
  options: WriteMultipleRangesOptions,
): ReadableStream<Uint8Array> {
  return byterangesBody(open, layOutByteranges(ranges, options));
}

/**
 * Ktor's `calculateMultipleRangesBodyLength`: the exact length in bytes of the body that
 * {@linkcode writeMultipleRanges} gives for the same `ranges` and options, for the answer's
 * `Content-Length`.
 *
 * @param ranges The ranges.
 * @param options The boundary, the media type and the representation's length.
 * @returns The body's length in bytes.
 * @throws {TypeError} When the boundary or the media type is not valid.
 * @throws {RangeError} As {@linkcode writeMultipleRanges} does, and when the length exceeds
 * `Number.MAX_SAFE_INTEGER`.
 *
 * @example The length of a two-part body
 * ```ts
 * import { calculateMultipleRangesBodyLength } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const ranges = [{ first: 0, last: 99 }, { first: 500, last: 599 }];
 * const first = "--b\r\n".length + "Content-Range: bytes 0-99/1000\r\n\r\n".length + 100 + 2;
 * const second = "--b\r\n".length + "Content-Range: bytes 500-599/1000\r\n\r\n".length + 100 + 2;
 * const close = "--b--\r\n".length;
 * const options = { fullLength: 1000, boundary: "b" };
 * assert.equal(calculateMultipleRangesBodyLength(ranges, options), first + second + close);
 * assert.equal(first + second + close, 292);
 * ```
 */
export function calculateMultipleRangesBodyLength(
  ranges: readonly ByteRange[],
  options: WriteMultipleRangesOptions,
): number {
  return byterangesLength(layOutByteranges(ranges, options));
}

/**
 * The `Content-Type` of a `multipart/byteranges` answer with `boundary`: the boundary as it
 * is when it is a token, quoted when it holds one of the other characters a boundary may
 * hold (space and `(),/:=?`), which an unquoted parameter value cannot carry (RFC 9110
 * §5.6.6). Give the same boundary to {@linkcode writeMultipleRanges}.
 *
 * @param boundary The boundary: 1 to 70 characters of RFC 2046 §5.1.1, not ending in a space.
 * @returns The field value.
 * @throws {TypeError} When the boundary is not valid.
 *
 * @example A boundary that must be quoted
 * ```ts
 * import { byterangesContentType } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(byterangesContentType("SEPARATOR"), "multipart/byteranges; boundary=SEPARATOR");
 * assert.equal(byterangesContentType("a b?c"), 'multipart/byteranges; boundary="a b?c"');
 * ```
 */
export function byterangesContentType(boundary: string): string {
  checkBoundary(boundary);
  // RFC 2046's boundary characters hold no '"' or '\': quoting needs no escapes.
  return `multipart/byteranges; boundary=${TOKEN.test(boundary) ? boundary : `"${boundary}"`}`;
}

/** Throws a TypeError unless `boundary` is 1 to 70 RFC 2046 characters, not ending in a space. */
function checkBoundary(boundary: unknown): asserts boundary is string {
  if (typeof boundary !== "string" || !isValidBoundary(boundary)) {
    throw new TypeError(
      `Invalid boundary: ${
        JSON.stringify(boundary)?.slice(0, 80)
      } is not 1 to 70 RFC 2046 characters`,
    );
  }
}

/**
 * A `multipart/byteranges` body laid out: its ranges and options checked, and each part's head
 * built, once for both its length and its bytes (as `serveRanges` needs them). Internal.
 */
export interface ByterangesLayout {
  /** The ranges, in the order of the parts. */
  readonly ranges: readonly ByteRange[];
  /** Each part's head, delimiter to empty line, as Latin-1 text (one byte a character). */
  readonly heads: readonly string[];
  /** The close delimiter, CRLF included. */
  readonly close: string;
}

/**
 * Checks `ranges` and `options` and builds the head of each part. Internal.
 *
 * @throws {TypeError} As {@linkcode writeMultipleRanges}.
 * @throws {RangeError} As {@linkcode writeMultipleRanges}.
 */
export function layOutByteranges(
  ranges: readonly ByteRange[],
  options: WriteMultipleRangesOptions,
): ByterangesLayout {
  const { boundary, contentType, fullLength } = options;
  checkBoundary(boundary);
  checkContentType(contentType);
  if (fullLength !== undefined && !(Number.isSafeInteger(fullLength) && fullLength >= 0)) {
    throw new RangeError(`Invalid fullLength: ${fullLength} is not a safe integer from 0`);
  }
  if (ranges.length === 0) throw new RangeError("Invalid ranges: a multipart body needs one");
  for (let i = 0; i < ranges.length; i++) checkRange(ranges[i]!, fullLength, i);
  const type = contentType === undefined ? "" : `Content-Type: ${contentType}\r\n`;
  const heads = ranges.map((range) =>
    `--${boundary}\r\n${type}Content-Range: ${contentRange(range, fullLength)}\r\n\r\n`
  );
  return { ranges, heads, close: `--${boundary}--\r\n` };
}

/**
 * The length in bytes of a laid-out body. Internal.
 *
 * @throws {RangeError} When it exceeds `Number.MAX_SAFE_INTEGER`.
 */
export function byterangesLength(layout: ByterangesLayout): number {
  const { ranges, heads } = layout;
  let length = layout.close.length;
  for (let i = 0; i < ranges.length; i++) {
    length += heads[i]!.length + rangeLength(ranges[i]!) + 2; // and the CRLF after it
  }
  if (!Number.isSafeInteger(length)) {
    throw new RangeError(`Invalid ranges: their body of ${length} bytes is not a safe integer`);
  }
  return length;
}

/** The bytes of a laid-out body, as {@linkcode writeMultipleRanges} gives them. Internal. */
export function byterangesBody(
  open: OpenRange,
  layout: ByterangesLayout,
): ReadableStream<Uint8Array> {
  return rangesStream(open, layout.ranges, layout.heads, latin1Bytes(layout.close));
}

/**
 * The bytes of one range as a stream, checked as a part of {@linkcode writeMultipleRanges}
 * is: for the body of a single-range 206, or of a 200 (the range of the whole).
 */
export function rangeBody(open: OpenRange, range: ByteRange): ReadableStream<Uint8Array> {
  checkRange(range, undefined, 0);
  return rangesStream(open, [range], null, null);
}

// A field value: HTAB, SP, visible ASCII and obs-text (RFC 9110 §5.5).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Checks that a media type can stand in a header field. */
export function checkContentType(contentType: string | undefined): void {
  if (contentType !== undefined && !FIELD_VALUE.test(contentType)) {
    throw new TypeError(
      `Invalid contentType: ${JSON.stringify(contentType).slice(0, 80)} is not a field value`,
    );
  }
}

function checkRange(range: ByteRange, fullLength: number | undefined, index: number): void {
  const { first, last } = range ?? {};
  if (
    !Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || last < first ||
    (fullLength !== undefined && last >= fullLength)
  ) {
    throw new RangeError(
      `Invalid range ${index}: ${first}-${last} is not within 0-${
        fullLength ?? "∞"
      } with first <= last`,
    );
  }
}

function rangeLength(range: ByteRange): number {
  return range.last - range.first + 1;
}

// The steps of a part: its head, opening its source, reading it, and the CRLF after it.
const HEAD = 0, OPEN = 1, BODY = 2, TAIL = 3;

/**
 * The body of `ranges`: for each, its head (when `heads` is given), its bytes from `open`,
 * checked, and a CRLF (when there are heads); then `trailer`. Each pull enqueues at most one
 * chunk, and the stream has no queue of its own (highWaterMark 0), so nothing is opened or
 * read before a reader asks.
 */
function rangesStream(
  open: OpenRange,
  ranges: readonly ByteRange[],
  heads: readonly string[] | null,
  trailer: Uint8Array | null,
): ReadableStream<Uint8Array> {
  let index = 0, step = HEAD, left = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let opening: Promise<RangeSource> | null = null;
  let cancelled = false;

  /** Enqueues the next chunk; returns false when it enqueued none and must go on. */
  const advance = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    const range = ranges[index]!;
    switch (step) {
      case HEAD:
        step = OPEN;
        if (heads === null) return false;
        controller.enqueue(latin1Bytes(heads[index]!));
        return true;
      case OPEN: {
        opening = Promise.resolve(open(range));
        const source = await opening;
        opening = null;
        if (cancelled) return true; // cancel() saw `opening` and disposes of the source
        left = rangeLength(range);
        if (source instanceof Uint8Array) {
          if (source.length !== left) throw wrongLength(range, source.length, "gave");
          step = TAIL;
          controller.enqueue(source);
          return true;
        }
        if (!(source instanceof ReadableStream)) {
          throw new TypeError(
            `Cannot read range ${range.first}-${range.last}: open gave neither a ReadableStream nor a Uint8Array`,
          );
        }
        reader = source.getReader();
        step = BODY;
        return false;
      }
      case BODY: {
        const { done, value } = await reader!.read();
        if (cancelled) return true;
        if (done) {
          reader = null;
          if (left !== 0) throw wrongLength(range, rangeLength(range) - left, "ended after");
          step = TAIL;
          return false;
        }
        if (!(value instanceof Uint8Array)) {
          throw new TypeError(
            `Cannot read range ${range.first}-${range.last}: its source gave a chunk that is not a Uint8Array`,
          );
        }
        if (value.length > left) {
          throw wrongLength(range, rangeLength(range) - left + value.length, "gave at least");
        }
        left -= value.length;
        if (value.length === 0) return false;
        controller.enqueue(value);
        return true;
      }
      default:
        step = HEAD;
        index++;
        if (heads === null) return false;
        // A new one each time: a chunk handed out belongs to the reader, which may transfer
        // its buffer (a byte stream's enqueue does), and a shared one would then be gone
        // from every later body.
        controller.enqueue(Uint8Array.of(13, 10));
        return true;
    }
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        while (index < ranges.length) if (await advance(controller)) return;
        if (trailer !== null) controller.enqueue(trailer);
        controller.close();
      } catch (error) {
        // The body fails whole; the source being read is released (a file is closed).
        const current = reader;
        reader = null;
        await current?.cancel(error).catch(() => {});
        throw error;
      }
    },
    async cancel(reason) {
      cancelled = true;
      const current = reader;
      reader = null;
      if (current !== null) await current.cancel(reason);
      else if (opening !== null) {
        const source = await opening.catch(() => null);
        if (source instanceof ReadableStream) await source.cancel(reason);
      }
    },
  }, { highWaterMark: 0 });
}

function wrongLength(range: ByteRange, count: number, verb: string): RangeError {
  return new RangeError(
    `Cannot read range ${range.first}-${range.last}: its source ${verb} ${count} bytes, not ${
      rangeLength(range)
    }`,
  );
}
