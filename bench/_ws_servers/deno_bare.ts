// Copyright 2026 the wirestream authors. MIT license.
// The bare native WebSocket: Deno.serve and Deno.upgradeWebSocket, each message sent back as
// it came. Usage: deno run --allow-net=127.0.0.1 bench/_ws_servers/deno_bare.ts [port];
// prints `listening <port>` once bound to 127.0.0.1.

import { portArgument } from "../_http_servers/_handler.ts";

Deno.serve({
  hostname: "127.0.0.1",
  port: portArgument(),
  onListen: (addr) => console.log(`listening ${addr.port}`),
}, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  // Binary messages as ArrayBuffer, not the default Blob.
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => socket.send(event.data);
  return response;
});
