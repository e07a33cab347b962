// Copyright 2026 the wirestream authors. MIT license.
// Memory per idle kept-alive connection on httpServer, in process: N raw Deno.Conns each make
// one GET, read the answer into a small buffer and wait. The heap and external bytes retained
// after a full collection, before and after, over N (the clients' Deno.Conns are in Rust and
// count for little). `idleTimeout` is raised so that none closes during the count.
//
//   deno run -A bench/http_idle_memory.ts [--connections 200]

import { httpServer } from "../mod.ts";
import { retainedBytes } from "../tests/_util/gc.ts";
import { parseOptions } from "./_load.ts";

const args = parseOptions(
  Deno.args,
  { connections: 200 },
  "deno run -A bench/http_idle_memory.ts [--connections N]",
);
const server = httpServer(
  { hostname: "127.0.0.1", port: 0, idleTimeout: 600_000 },
  () => new Response("hello"),
);
const conns: Deno.Conn[] = [];
const request = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
const decoder = new TextDecoder();

/** One connection: a GET answered, then silence. */
async function open(): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  conns.push(conn);
  await conn.write(request);
  const buffer = new Uint8Array(512);
  let got = "";
  while (!got.endsWith("hello")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the server closed the connection");
    got += decoder.decode(buffer.subarray(0, n));
  }
}

for (let i = 0; i < 5; i++) await open(); // warm: the code and the pools
await new Promise((resolve) => setTimeout(resolve, 50));
const before = retainedBytes();
for (let i = 0; i < args.connections; i++) await open();
await new Promise((resolve) => setTimeout(resolve, 50));
const perConnection = (retainedBytes() - before) / args.connections;
console.log(
  `${args.connections} idle connections: ${Math.round(perConnection)} bytes retained each`,
);
for (const conn of conns) conn.close();
await server.shutdown();
