// Copyright 2026 the wirestream authors. MIT license.
// A strict reader of multipart/byteranges bodies (RFC 9110 §14.6, RFC 2046 §5.1.1) for the
// range tests: it shares no code with lib/ranges, so a writer bug cannot hide itself.

import assert from "node:assert/strict";
import { latin1 } from "./http.ts";

/** One part of a multipart/byteranges body. */
export interface BytesPart {
  /** The part's header fields. */
  headers: Headers;
  /** `Content-Range` read back: first, last, and the length (null for `*`). */
  range: { first: number; last: number; size: number | null };
  /** The part's bytes. */
  body: Uint8Array;
}

/** The boundary of a `multipart/byteranges; boundary=…` Content-Type (quoted or not). */
export function boundaryOf(contentType: string | null): string {
  const match = /^multipart\/byteranges;\s*boundary=(?:"([^"]+)"|([^\s;"]+))$/.exec(
    contentType ?? "",
  );
  assert(match !== null, `not a multipart/byteranges type: ${contentType}`);
  return match[1] ?? match[2]!;
}

/**
 * The parts of `body`, which must be exactly: for each part, `--boundary` CRLF, header lines,
 * CRLF, the bytes that its Content-Range announces, CRLF; then `--boundary--` CRLF.
 */
export function parseByteranges(body: Uint8Array, boundary: string): BytesPart[] {
  const text = latin1(body);
  const parts: BytesPart[] = [];
  let at = 0;
  const expect = (literal: string, what: string) => {
    assert.equal(text.slice(at, at + literal.length), literal, `${what} at byte ${at}`);
    at += literal.length;
  };
  while (text.startsWith(`--${boundary}\r\n`, at)) {
    expect(`--${boundary}\r\n`, "a delimiter");
    const end = text.indexOf("\r\n\r\n", at);
    assert(end >= 0, "a part's header ends");
    const headers = new Headers();
    for (const line of text.slice(at, end).split("\r\n")) {
      const colon = line.indexOf(":");
      assert(colon > 0, `a header line: ${JSON.stringify(line)}`);
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    at = end + 4;
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers.get("content-range") ?? "");
    assert(match !== null, `a Content-Range: ${headers.get("content-range")}`);
    const range = {
      first: Number(match[1]),
      last: Number(match[2]),
      size: match[3] === "*" ? null : Number(match[3]),
    };
    const length = range.last - range.first + 1;
    parts.push({ headers, range, body: body.slice(at, at + length) });
    at += length;
    expect("\r\n", "the CRLF after a part");
  }
  expect(`--${boundary}--\r\n`, "the close delimiter");
  assert.equal(at, body.length, "nothing after the close delimiter");
  return parts;
}
