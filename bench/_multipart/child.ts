// Copyright 2026 the wirestream authors. MIT license.
// One parser over the generated body, in its own process so that its peak RSS is its own:
//
//   deno run -A bench/_multipart/child.ts <parser> <MiB> [<warm-up MiB>]
//
// A warm-up run on a smaller body (16 MiB by default) comes first. Prints one JSON line: the parser, the seconds it took, what it found (checked against the
// layout) and the process's peak RSS (VmHWM) in MiB.

import { once } from "node:events";
import { Buffer } from "node:buffer";
import process from "node:process";
import busboyModule from "busboy";
import fastifyBusboyModule from "@fastify/busboy";
import { parseMultipartStream } from "@remix-run/multipart-parser";
import { parseMultipart } from "../../mod.ts";
import { bodyStream, BOUNDARY, CONTENT_TYPE, expected, layout } from "./body.ts";

/** What a parser found. */
interface Found {
  parts: number;
  files: number;
  contentBytes: number;
}

type Parser = (body: ReadableStream<Uint8Array<ArrayBuffer>>) => Promise<Found>;

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

const PARSERS: Record<string, Parser> = {
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

  async busboy(body) {
    const parser = busboy({
      headers: { "content-type": CONTENT_TYPE },
      limits: { fieldSize: Infinity, fileSize: Infinity },
    });
    const found = count(parser);
    const closed = once(parser as never, "close");
    await feed(body, parser);
    await closed;
    return found;
  },

  async "@fastify/busboy"(body) {
    const parser = new FastifyBusboy({
      headers: { "content-type": CONTENT_TYPE },
      limits: { fieldSize: Infinity, fileSize: Infinity },
    });
    const found = count(parser);
    const finished = once(parser as never, "finish");
    await feed(body, parser);
    await finished;
    return found;
  },

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

/** The names of the parsers, the floor first. */
export const PARSER_NAMES: string[] = Object.keys(PARSERS);

if (import.meta.main) {
  const [name = "", mibText = "200", warmupText = "16"] = Deno.args;
  const parser = PARSERS[name];
  if (parser === undefined) throw new Error(`Unknown parser ${JSON.stringify(name)}`);
  // A server parses upload after upload: the timed run follows a smaller one that warms the JIT.
  if (Number(warmupText) > 0) await parser(bodyStream(layout(Number(warmupText))));
  const parts = layout(Number(mibText));
  const want = expected(parts);
  const started = performance.now(), cpuStarted = process.cpuUsage();
  const found = await parser(bodyStream(parts));
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpuStarted);
  const floor = name === "floor";
  const problems: string[] = [];
  if (floor ? found.contentBytes !== want.bodyBytes : found.contentBytes !== want.contentBytes) {
    problems.push(`found ${found.contentBytes} bytes`);
  }
  if (!floor && (found.parts !== want.parts || found.files !== want.files)) {
    problems.push(`found ${found.parts} parts and ${found.files} files`);
  }
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
  console.log(JSON.stringify({
    parser: name,
    seconds,
    cpu: (user + system) / 1e6,
    bodyBytes: want.bodyBytes,
    hwm,
    problems,
  }));
}
