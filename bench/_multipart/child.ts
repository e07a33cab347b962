// Copyright 2026 the wirestream authors. MIT license.
// One parser over the generated body, in its own process so that its peak RSS is its own:
//
//   deno run -A bench/_multipart/child.ts <parser> <MiB> [<warm-up MiB>]
//
// Warm-up runs over that many MiB in all (16 by default), in bodies of up to 32 MiB, come first. Prints one JSON line: the
// parser, the wall and CPU seconds of the timed run, what it found (checked against the layout)
// and the process's peak RSS (VmHWM) in MiB.

import process from "node:process";
import { bodyStream, expected, layout } from "./body.ts";
import { PARSERS } from "./parsers.ts";

if (import.meta.main) {
  const [name = "", mibText = "200", warmupText = "16"] = Deno.args;
  const parser = PARSERS[name];
  if (parser === undefined) throw new Error(`Unknown parser ${JSON.stringify(name)}`);
  // A server parses upload after upload: the timed run follows warm-up runs over bodies of up
  // to 32 MiB (so that a parser that buffers peaks in the timed run, not here). V8 optimizes the
  // code run once per chunk or per part only after a few hundred MiB.
  for (let left = Number(warmupText); left > 0; left -= 32) {
    await parser(bodyStream(layout(Math.min(32, left))));
  }
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
