// Copyright 2026 the wirestream authors. MIT license.
// Fuzz test of parseRequestHead against a reference: the parser as it was written first, which
// split the head into lines and each field line at its colon. The parser reads the head by
// index now (no string per line, none for a common name); on any input, valid, nearly valid
// or random bytes, both give the same head, or the same HttpError (status and message).
// parseResponseHead is fuzzed against a reading of the grammar of RFC 9112 §4–5 instead
// (tests/_util/response_head_reference.ts): the same head, or a refusal with the same status.
// WIRESTREAM_FUZZ_RUNS sets the number of runs (small by default, 10⁶ before a release).
import assert from "node:assert/strict";
import {
  type HeadLimits,
  HttpError,
  parseRequestHead,
  parseResponseHead,
} from "@wirestream/wirestream";
import { between, fuzzRuns, SEED_BASE, seeded } from "../_util/random.ts";
import { referenceParseResponseHead } from "../_util/response_head_reference.ts";

// ---- The reference: the line-by-line parser ----------------------------------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex -- matching control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// A request-target's characters, from RFC 3986 §2: unreserved, "%" (pct-encoded), gen-delims
// but "#" (no fragment, RFC 9112 §3.2) and sub-delims; then the characters RFC 3986 leaves out
// that clients send in queries anyway, all but the backslash (read as "/" by URL parsers).
const RFC3986 = "A-Za-z0-9\\-._~" + "%" + ":/?\\[\\]@" + "!$&'()*+,;=";
const TOLERATED = '"<>^`{|}';
const TARGET = new RegExp(`^[${RFC3986}${TOLERATED}]+$`);
const VERSION = /^HTTP\/(\d)\.(\d)$/;
const HOST_PATTERN = String.raw`(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)`;
const AUTHORITY = new RegExp(`^${HOST_PATTERN}:\\d+$`);
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/;

function trimOws(text: string): string {
  let start = 0, end = text.length;
  const ows = (c: number) => c === 0x20 || c === 0x09;
  while (start < end && ows(text.charCodeAt(start))) start++;
  while (end > start && ows(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function referenceParse(bytes: Uint8Array, start: number, end: number, limits: HeadLimits) {
  const fail = (status: number, message: string) => new HttpError(status, message);
  let text = "";
  for (let i = start; i < end - 4; i++) text += String.fromCharCode(bytes[i]!);
  const all = text.split("\r\n");
  if (text.includes("\r")) {
    for (const line of all) {
      if (line.includes("\r")) throw fail(400, "Cannot read request head: a line holds a bare CR");
    }
  }
  const line = all[0]!;
  const first = line.indexOf(" "), second = line.indexOf(" ", first + 1);
  if (first <= 0 || second === -1 || line.indexOf(" ", second + 1) !== -1) {
    throw fail(
      400,
      `Cannot read request head: bad request line ${JSON.stringify(line.slice(0, 64))}`,
    );
  }
  const method = line.slice(0, first), target = line.slice(first + 1, second);
  const versionText = line.slice(second + 1);
  if (!TOKEN.test(method)) {
    throw fail(
      400,
      `Cannot read request head: method ${JSON.stringify(method.slice(0, 64))} is not a token`,
    );
  }
  const v = VERSION.exec(versionText);
  if (v === null) {
    throw fail(
      400,
      `Cannot read request head: ${
        JSON.stringify(versionText.slice(0, 64))
      } is not an HTTP version`,
    );
  }
  if (v[1] !== "1") { // HTTP/1.2 and up are read as HTTP/1.1 (RFC 9110 §2.5)
    throw fail(505, `Cannot serve ${versionText}: only HTTP/1.0 and HTTP/1.1 are supported`);
  }
  if (!TARGET.test(target)) {
    throw fail(
      400,
      `Cannot read request head: request-target ${
        JSON.stringify(target.slice(0, 64))
      } holds a character that is not allowed`,
    );
  }
  const form = target.charCodeAt(0) === 0x2f
    ? "origin"
    : target === "*"
    ? "asterisk"
    : ABSOLUTE.test(target)
    ? "absolute"
    : "authority";
  if (
    (form === "asterisk" && method !== "OPTIONS") ||
    (form === "authority") !== (method === "CONNECT") ||
    (form === "authority" && !AUTHORITY.test(target))
  ) {
    throw fail(
      400,
      `Cannot read request head: request-target ${
        JSON.stringify(target.slice(0, 64))
      } does not suit ${method}`,
    );
  }
  const maxHeaders = limits.maxHeaders ?? 100;
  if (all.length - 1 > maxHeaders) {
    throw fail(431, `Cannot read request head: ${all.length - 1} fields exceed ${maxHeaders}`);
  }
  const fields: [string, string][] = [];
  for (let i = 1; i < all.length; i++) {
    const field = all[i]!;
    const colon = field.indexOf(":");
    const name = colon === -1 ? "" : field.slice(0, colon);
    if (!TOKEN.test(name)) {
      throw fail(
        400,
        `Cannot read request head: bad field line ${JSON.stringify(field.slice(0, 64))}`,
      );
    }
    const value = field.slice(colon + 1);
    if (BAD_VALUE.test(value)) {
      throw fail(
        400,
        `Cannot read request head: field ${JSON.stringify(name)} holds a control character`,
      );
    }
    fields.push([name.toLowerCase(), trimOws(value)]);
  }
  return {
    method,
    target,
    version: v[2] === "0" ? "HTTP/1.0" : "HTTP/1.1",
    fields,
  };
}

// ---- Inputs -------------------------------------------------------------------------------

// Valid pieces, and nearly valid ones (taken now and then).
const METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "get"];
const BAD_METHODS = ["CONNECT", "G(T", "", "GET\x80"];
const TARGETS = [
  "/",
  "/a?b=c",
  "/%41/long/path/to/some/where?with=a&query=string",
  "/~x",
  '/a?q={"k":"|^`<>"}',
];
const BAD_TARGETS = [
  "*",
  "http://h/x",
  "h:80",
  "[::1]:9",
  "/\x80",
  "/a#b",
  "",
  "/ /",
  "/a\\..\\b",
];
const VERSIONS = ["HTTP/1.1", "HTTP/1.0"];
const BAD_VERSIONS = ["HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.10", "", "HTTP/1.1 "];
const NAMES = [
  "Host",
  "host",
  "HOST",
  "User-Agent",
  "user-agent",
  "Accept",
  "Content-Length",
  "Transfer-Encoding",
  "Sec-WebSocket-Key",
  "X-Custom",
  "x",
  "Accept-Encodinh", // a common name's length, another name
  "sec-ch-ua-mobile",
  "X-Forwarded-For",
];
const BAD_NAMES = ["Hos t", " Host", "Host ", "", "Ho\x80st", "na:me", "H\x00"];
// Bytes that matter to a value: whitespace, obs-text, a UTF-8 sequence and BOM; controls.
const FINE = [0x20, 0x09, 0x3a, 0x80, 0xa0, 0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff];
const SPECIAL = [0x0d, 0x0a, 0x00, 0x7f, 0x01, 0x1f, ...FINE];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

/** Mostly a valid piece, now and then a nearly valid one. */
function pickMostly<T>(random: () => number, valid: readonly T[], invalid: readonly T[]): T {
  return random() < 0.04 ? pick(random, invalid) : pick(random, valid);
}

/** Random value text: printable ASCII, now and then whitespace or obs-text. */
function value(random: () => number): string {
  let text = "";
  for (let n = between(random, 0, 60); n > 0; n--) {
    text += String.fromCharCode(
      random() < 0.05 ? pick(random, FINE) : between(random, 0x20, 0x7e),
    );
  }
  return text;
}

/** Up to 8 field lines, each after a CRLF, valid or nearly so. */
function fieldLines(random: () => number): string {
  let text = "";
  for (let n = between(random, 0, 8); n > 0; n--) {
    text += `\r\n${pickMostly(random, NAMES, BAD_NAMES)}:${random() < 0.7 ? " " : ""}${
      value(random)
    }`;
  }
  return text;
}

/** A request head, valid or nearly so, then mutated now and then; CRLF CRLF at its end. */
function head(random: () => number): Uint8Array {
  let text = `${pickMostly(random, METHODS, BAD_METHODS)} ${
    pickMostly(random, TARGETS, BAD_TARGETS)
  } ${pickMostly(random, VERSIONS, BAD_VERSIONS)}`;
  if (random() < 0.05) text = text.replace(" ", "  ");
  text += fieldLines(random);
  return sprinkled(random, text);
}

/** The bytes of `text` with a few bytes inserted or overwritten now and then; CRLF CRLF after. */
function sprinkled(random: () => number, text: string): Uint8Array {
  const bytes = Array.from(text, (c) => c.charCodeAt(0));
  for (let n = random() < 0.2 ? between(random, 1, 3) : 0; n > 0; n--) {
    const at = Math.floor(random() * (bytes.length + 1));
    const byte = random() < 0.7 ? pick(random, SPECIAL) : Math.floor(random() * 256);
    if (random() < 0.5) bytes.splice(at, 0, byte);
    else if (at < bytes.length) bytes[at] = byte;
  }
  return Uint8Array.from([...bytes, 13, 10, 13, 10]);
}

/**
 * `wire` sometimes inside a larger buffer of LFs, as a read buffer holds a head: the buffer,
 * and where the head starts and ends in it.
 */
function inBuffer(random: () => number, wire: Uint8Array): [Uint8Array, number, number] {
  const pad = random() < 0.3 ? between(random, 1, 9) : 0;
  const buffer = new Uint8Array(pad + wire.length + pad).fill(0x0a);
  buffer.set(wire, pad);
  return [buffer, pad, pad + wire.length];
}

/** The result of `parse`: the head, or the error's status and message. */
function outcome(parse: () => unknown): unknown {
  try {
    return { head: parse() };
  } catch (error) {
    assert(error instanceof HttpError, String(error));
    return { status: error.status, message: error.message };
  }
}

Deno.test("parseRequestHead fuzz", async (t) => {
  await t.step("gives what the line-by-line parser gives, head or error", () => {
    const runs = fuzzRuns(20_000);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const wire = head(random);
      const limits = { maxHeaders: random() < 0.2 ? between(random, 0, 4) : 100 };
      const [buffer, pad, end] = inBuffer(random, wire);
      assert.deepEqual(
        outcome(() => parseRequestHead(buffer, pad, end, limits)),
        outcome(() => referenceParse(buffer, pad, end, limits)),
        `seed ${seed}: ${JSON.stringify(String.fromCharCode(...wire))}`,
      );
    }
  });
});

// ---- Response heads, against a reference written from RFC 9112 §4–5 ------------------------

const RESPONSE_VERSIONS = ["HTTP/1.1", "HTTP/1.0"];
const BAD_RESPONSE_VERSIONS = ["HTTP/2.0", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/11", ""];
const STATUSES = ["101", "200", "204", "404", "426", "599", "000", "999"];
const BAD_STATUSES = ["1011", "10", "20a", " 200", "+20", "\xb9\xb2\xb3", ""];
const REASONS = ["OK", "Switching Protocols", "Not  Found ", "\tTab", "Tr\xe8s bien", " "];

/** A response head, valid or nearly so, then mutated now and then; CRLF CRLF at its end. */
function responseHead(random: () => number): Uint8Array {
  let text = `${pickMostly(random, RESPONSE_VERSIONS, BAD_RESPONSE_VERSIONS)} ${
    pickMostly(random, STATUSES, BAD_STATUSES)
  }`;
  const reason = random();
  if (reason < 0.6) text += ` ${pick(random, REASONS)}`;
  else if (reason < 0.8) text += ` ${value(random)}`;
  else if (reason < 0.9) text += " "; // a space and no reason
  // Else neither a space nor a reason.
  text += fieldLines(random);
  return sprinkled(random, text);
}

Deno.test("parseResponseHead fuzz", async (t) => {
  await t.step("gives the head the RFC 9112 reference reads, or refuses as it does", () => {
    const runs = fuzzRuns(10_000);
    for (let seed = SEED_BASE + 1; seed <= SEED_BASE + runs; seed++) {
      const random = seeded(seed);
      const wire = responseHead(random);
      const maxHeaders = random() < 0.2 ? between(random, 0, 4) : 100;
      const [buffer, pad, end] = inBuffer(random, wire);
      const context = `seed ${seed}: ${JSON.stringify(String.fromCharCode(...wire))}`;
      const got = outcome(() => parseResponseHead(buffer, pad, end, { maxHeaders }));
      const want = referenceParseResponseHead(buffer, pad, end, maxHeaders);
      if ("head" in want) assert.deepEqual(got, want, context);
      else {
        const status = (got as { status?: number }).status;
        assert(
          status !== undefined && want.refuse.includes(status),
          `${context}: ${JSON.stringify(got)}, want a refusal with ${want.refuse.join(" or ")}`,
        );
      }
    }
  });
});
