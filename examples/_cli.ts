// Copyright 2026 the wirestream authors. MIT license.
// The command line the handler examples share: `--port N` (8000 by default) and
// `--engine wire|deno`, serving on 127.0.0.1 and printing `listening on http://127.0.0.1:N/`.

import {
  type EngineHandler,
  NativeEngine,
  WireEngine,
  type WireEngineConfig,
} from "@wirestream/wirestream";

/** The value after `name` in `args`, or `fallback` when `name` is absent. */
export function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1] ?? "";
}

/**
 * Serves `handler` as the command line says: `--engine wire` (the default, with `wire`'s
 * settings) or `--engine deno`, on 127.0.0.1 at `--port`.
 *
 * @throws {RangeError} For a bad `--port` or `--engine`.
 */
export function serveFromArgs(
  args: string[],
  handler: EngineHandler,
  wire: WireEngineConfig = {},
): void {
  const value = option(args, "--port", "8000");
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Invalid --port: ${JSON.stringify(value)} is not a port number`);
  }
  const engine = option(args, "--engine", "wire");
  const environment = {
    hostname: "127.0.0.1",
    port,
    onListen: (addr: Deno.NetAddr) => console.log(`listening on http://127.0.0.1:${addr.port}/`),
  };
  if (engine === "wire") WireEngine.start(handler, environment, wire);
  else if (engine === "deno") NativeEngine.start(handler, environment, {});
  else throw new RangeError(`Invalid --engine: ${JSON.stringify(engine)} is not wire or deno`);
}
