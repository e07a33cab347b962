// Copyright 2026 the wirestream authors. MIT license.
// Our session on the native engine: Deno.serve, then the same handler as wire.ts
// (upgradeWebSocket and the echo loop of examples/echo.ts). Until upgradeWebSocket accepts a
// Deno.serve request it throws, Deno.serve logs the error and answers 500, and
// bench/ws_load.ts reports this server as unavailable. Usage: deno run --allow-net=127.0.0.1
// bench/_ws_servers/native.ts [port]; prints `listening <port>` once bound to 127.0.0.1.

import { handler } from "../../examples/echo.ts";
import { portArgument } from "../_http_servers/_handler.ts";

Deno.serve({
  hostname: "127.0.0.1",
  port: portArgument(),
  onListen: (addr) => console.log(`listening ${addr.port}`),
}, handler);
