// Copyright 2026 the wirestream authors. MIT license.
// The benchmark handler on the wire engine (httpServer). Usage: deno run --allow-net=127.0.0.1
// bench/_http_servers/wire.ts [port]; prints `listening <port>` once bound to 127.0.0.1.

import { httpServer } from "../../mod.ts";
import { handler, portArgument } from "./_handler.ts";

httpServer({
  hostname: "127.0.0.1",
  port: portArgument(),
  // The 256 MiB chunked uploads exceed the 128 MiB default.
  maxBodySize: Infinity,
  onListen: (addr) => console.log(`listening ${addr.port}`),
}, handler);
