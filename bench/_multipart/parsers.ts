// Copyright 2026 the wirestream authors. MIT license.
// The parsers the multipart benchmarks compare, each as a function that reads a whole body
// stream and reports what it found: parts, files and content bytes. The consumers do the same
// work for each: every part's content is read and counted.

import { once } from "node:events";
import { Buffer } from "node:buffer";
import busboyModule from "busboy";
import fastifyBusboyModule from "@fastify/busboy";
import { parseMultipartStream } from "@remix-run/multipart-parser";
import { parseMultipart } from "../../mod.ts";
import { BOUNDARY, CONTENT_TYPE } from "./body.ts";

/** What a parser found. */
export interface Found {
  parts: number;
  files: number;
  contentBytes: number;
}

/** A parser: reads the body to its end. */
export type Parser = (body: ReadableStream<Uint8Array<ArrayBuffer>>) => Promise<Found>;

/** What the benchmark uses of a busboy parser (a Node writable); busboy ships no types. */
interface NodeParser {
  on(event: string, listener: (...args: never[]) => void): unknown;
  write(chunk: Buffer): boolean;
  end(): void;
}

/** busboy's and @fastify/busboy's options, as far as used here. */
interface BusboyConfig {
  headers: { "content-type": string };
  limits: { fieldSize: number; fileSize: number };
}

const busboy = busboyModule as unknown as (config: BusboyConfig) => NodeParser;
const FastifyBusboy = fastifyBusboyModule as unknown as new (config: BusboyConfig) => NodeParser;

/** Both busboys' options: no limits, the body's type. */
const CONFIG: BusboyConfig = {
  headers: { "content-type": CONTENT_TYPE },
  limits: { fieldSize: Infinity, fileSize: Infinity },
};

/** Runs a busboy parser over `body` until it emits `end` ("close" or "finish"). */
async function runBusboy(
  body: ReadableStream<Uint8Array>,
  parser: NodeParser,
  end: string,
): Promise<Found> {
  const found = count(parser);
  const ended = once(parser as never, end);
  await feed(body, parser);
  await ended;
  return found;
}

/** Feeds a busboy parser with backpressure, then ends it. */
async function feed(body: ReadableStream<Uint8Array>, parser: NodeParser): Promise<void> {
  for await (const chunk of body) {
    if (!parser.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))) {
      await once(parser as never, "drain");
    }
  }
  parser.end();
}

/** Counts the parts and bytes a busboy parser reports. */
function count(parser: NodeParser): Found {
  const found = { parts: 0, files: 0, contentBytes: 0 };
  parser.on("file", (_name: string, stream: { on(e: string, f: (d: Buffer) => void): void }) => {
    found.parts++;
    found.files++;
    stream.on("data", (data) => (found.contentBytes += data.length));
  });
  parser.on("field", (_name: string, value: string) => {
    found.parts++;
    found.contentBytes += value.length;
  });
  return found;
}

/** The parsers by name, the floor first. */
export const PARSERS: Record<string, Parser> = {
  /** Reads the body and parses nothing. */
  async floor(body) {
    let contentBytes = 0;
    for await (const chunk of body) contentBytes += chunk.length;
    return { parts: 0, files: 0, contentBytes };
  },

  async wirestream(body) {
    const found = { parts: 0, files: 0, contentBytes: 0 };
    for await (
      const event of parseMultipart(body, CONTENT_TYPE, {
        maxTotalSize: Infinity,
        maxPartSize: Infinity,
        maxParts: Infinity,
        maxFields: Infinity,
      })
    ) {
      if (event.type !== "part") continue;
      found.parts++;
      if (event.filename !== null) found.files++;
      const reader = event.body.getReader();
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        found.contentBytes += value.length;
      }
    }
    return found;
  },

  busboy: (body) => runBusboy(body, busboy(CONFIG), "close"),
  "@fastify/busboy": (body) => runBusboy(body, new FastifyBusboy(CONFIG), "finish"),

  async "@remix-run/multipart-parser"(body) {
    const found = { parts: 0, files: 0, contentBytes: 0 };
    const options = {
      boundary: BOUNDARY,
      maxFileSize: Infinity,
      maxTotalSize: Infinity,
      maxParts: Infinity,
    };
    for await (const part of parseMultipartStream(body, options)) {
      found.parts++;
      if (part.isFile) found.files++;
      found.contentBytes += part.size;
    }
    return found;
  },

  async "Request.formData()"(body) {
    const request = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": CONTENT_TYPE },
      body,
      duplex: "half",
    } as RequestInit);
    const found = { parts: 0, files: 0, contentBytes: 0 };
    for (const [, value] of await request.formData()) {
      found.parts++;
      if (typeof value === "string") found.contentBytes += value.length;
      else {
        found.files++;
        found.contentBytes += value.size;
      }
    }
    return found;
  },
};
