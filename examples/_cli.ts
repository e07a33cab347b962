// Copyright 2026 the wirestream authors. MIT license.
// The command line the handler examples share: `--port N` (8000 by default) and
// `--engine wire|native` (`deno` names the native engine too), serving on 127.0.0.1 and
// printing `listening on http://127.0.0.1:N/`. A bad value prints the problem and exits 2.

import { type EngineHandler, NativeEngine, WireEngine } from "@wirestream/wirestream";

/** The value after `name` in `args`, or `fallback` when `name` is absent. */
export function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1] ?? "";
}

/**
 * Serves `handler` as the command line says: `--engine wire` (the default) or `--engine
 * native` (or `deno`), on 127.0.0.1 at `--port`, with `maxBodySize` on either engine (both
 * take 128 MiB by default). A bad `--port` or `--engine` prints why and exits with 2.
 */
export function serveFromArgs(
  args: string[],
  handler: EngineHandler,
  { maxBodySize }: { maxBodySize?: number } = {},
): void {
  const value = option(args, "--port", "8000");
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN; // not "", " ", 0x1F90 or 1e3
  const engine = option(args, "--engine", "wire");
  const problem = !(port <= 65_535)
    ? `Invalid --port: ${JSON.stringify(value)} is not a port number`
    : engine !== "wire" && engine !== "native" && engine !== "deno"
    ? `Invalid --engine: ${JSON.stringify(engine)} is not wire or native`
    : null;
  if (problem !== null) {
    console.error(problem);
    Deno.exit(2);
  }
  const environment = {
    hostname: "127.0.0.1",
    port,
    onListen: (addr: Deno.NetAddr) => console.log(`listening on http://127.0.0.1:${addr.port}/`),
  };
  const config = maxBodySize === undefined ? {} : { maxBodySize };
  if (engine === "wire") WireEngine.start(handler, environment, config);
  else NativeEngine.start(handler, environment, config);
}
