// Copyright 2026 the wirestream authors. MIT license.
// The benchmark handler on Deno.serve. Usage: deno run --allow-net=127.0.0.1
// bench/_http_servers/deno_serve.ts [port]; prints `listening <port>` once bound to 127.0.0.1.

import { handler, portArgument } from "./_handler.ts";

Deno.serve({
  hostname: "127.0.0.1",
  port: portArgument(),
  onListen: (addr) => console.log(`listening ${addr.port}`),
}, handler);
