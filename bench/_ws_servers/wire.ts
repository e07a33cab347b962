// Copyright 2026 the wirestream authors. MIT license.
// Our session on the wire engine: httpServer, upgradeWebSocket and the echo loop of
// examples/echo.ts. Usage: deno run --allow-net=127.0.0.1 bench/_ws_servers/wire.ts [port];
// prints `listening <port>` once bound to 127.0.0.1.

import { httpServer } from "../../mod.ts";
import { handler } from "../../examples/echo.ts";
import { portArgument } from "../_http_servers/_handler.ts";

httpServer({
  hostname: "127.0.0.1",
  port: portArgument(),
  onListen: (addr) => console.log(`listening ${addr.port}`),
}, handler);
