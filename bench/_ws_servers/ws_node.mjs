// Copyright 2026 the wirestream authors. MIT license.
// npm:ws's WebSocketServer on Node, each message sent back with its type. ws comes from the
// checkout's node_modules/ (`deno install` puts it there, with bufferutil, whose prebuilt addon
// ws loads when it can: this server says on stderr whether it did). Usage: node
// bench/_ws_servers/ws_node.mjs [port]; prints `listening <port>` once bound to 127.0.0.1.

import { createRequire } from "node:module";
import process from "node:process";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 0);

const require = createRequire(import.meta.url);
// ws keeps the native unmask behind a wrapper only when bufferutil loaded (ws/lib/buffer-util.js).
const bufferUtil = require(require.resolve("ws").replace(/index\.js$/, "lib/buffer-util.js"));
process.stderr.write(
  `ws ${require("ws/package.json").version}: bufferutil ` +
    `${/bufferUtil\.unmask/.test(String(bufferUtil.unmask)) ? "loaded" : "NOT loaded"}\n`,
);

const server = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on("error", () => socket.terminate());
});
server.on("listening", () => console.log(`listening ${server.address().port}`));
