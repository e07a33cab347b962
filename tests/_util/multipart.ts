// Copyright 2026 the wirestream authors. MIT license.
// Running the multipart parser over chunks, as the machine and as the stream, into one shape
// that tests compare.

import assert from "node:assert/strict";
import {
  HttpError,
  type MultipartHead,
  MultipartParser,
  type MultipartParserOptions,
  parseMultipart,
} from "@wirestream/wirestream";
import { latin1 } from "./http.ts";
import { concat } from "./random.ts";

/** Bytes of a string of code points 0–255, one byte each. */
export function bytes(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** A part as parsed: its head, and its body as Latin-1 text. */
export interface ParsedPart {
  headers: [string, string][];
  name: string | null;
  filename: string | null;
  contentType: string | null;
  body: string;
}

/** What parsing gave, as Latin-1 text. */
export interface Outcome {
  preamble: string | null;
  parts: ParsedPart[];
  epilogue: string | null;
  /** The status of the HttpError that ended it, or null. */
  status: number | null;
}

function partOf(head: MultipartHead): ParsedPart {
  return {
    headers: [...head.headers],
    name: head.name,
    filename: head.filename,
    contentType: head.contentType,
    body: "",
  };
}

/** Rethrows anything that is not an HttpError; returns its status. */
export function statusOf(error: unknown): number {
  if (!(error instanceof HttpError)) throw error;
  return error.status;
}

/**
 * Parses `chunks` with the machine, pushing the rest of a chunk again after each head; checks
 * that data is only delivered inside a part and that a part's data are views of the input.
 * On failure the outcome holds what was delivered before it.
 */
export function parseSync(
  chunks: readonly Uint8Array[],
  boundary: string,
  options: MultipartParserOptions = {},
): Outcome {
  const outcome: Outcome = { preamble: null, parts: [], epilogue: null, status: null };
  const parser = new MultipartParser(boundary, options);
  let open = false, input: Uint8Array = new Uint8Array(0);
  const sink = {
    preamble(body: Uint8Array) {
      assert.equal(outcome.parts.length, 0, "a preamble after a part");
      outcome.preamble = latin1(body);
    },
    partStart(head: MultipartHead) {
      assert(!open, "a part starts inside a part");
      outcome.parts.push(partOf(head));
      open = true;
    },
    partData(data: Uint8Array) {
      assert(open, "data outside a part");
      assert(data.length > 0, "an empty data chunk");
      if (data.buffer === input.buffer) {
        assert(data.byteOffset >= input.byteOffset, "a view before the chunk");
        assert(data.byteOffset + data.length <= input.byteOffset + input.length, "past the chunk");
      }
      outcome.parts.at(-1)!.body += latin1(data);
    },
    partEnd() {
      assert(open, "a part ends outside a part");
      open = false;
    },
    epilogue(body: Uint8Array) {
      outcome.epilogue = latin1(body);
    },
  };
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length || at === 0;) {
        input = chunk.subarray(at);
        const used = parser.push(input, sink);
        assert(used >= 0 && used <= input.length, `consumed ${used} of ${input.length}`);
        at += used;
        if (at === chunk.length) break;
        assert(used > 0 || input.length === 0, "no progress");
      }
    }
    parser.end(sink);
    assert(!open, "ended inside a part");
  } catch (error) {
    outcome.status = statusOf(error);
  }
  return outcome;
}

/**
 * Parses `chunks` with `parseMultipart` (the boundary form), reading every body to its end
 * before the next event. On failure the outcome holds what was read before it.
 */
export async function parseStream(
  chunks: readonly Uint8Array[],
  boundary: string,
  options: MultipartParserOptions = {},
): Promise<Outcome> {
  const outcome: Outcome = { preamble: null, parts: [], epilogue: null, status: null };
  const source = ReadableStream.from(chunks);
  try {
    for await (const event of parseMultipart(source, { ...options, boundary })) {
      if (event.type === "preamble") outcome.preamble = latin1(event.body);
      else if (event.type === "epilogue") outcome.epilogue = latin1(event.body);
      else {
        const part = partOf(event);
        outcome.parts.push(part);
        for await (const data of event.body) part.body += latin1(data);
      }
    }
  } catch (error) {
    outcome.status = statusOf(error);
  }
  return outcome;
}

/** The whole of `chunks` as one Latin-1 string (for messages). */
export function show(chunks: readonly Uint8Array[]): string {
  return JSON.stringify(latin1(concat(chunks)));
}
