// Copyright 2026 the wirestream authors. MIT license.
// The benchmark routes on node:http, written the node:http way (the same answers as
// _handler.ts). Usage: node bench/_http_servers/node_http.mjs [port]; prints `listening <port>`
// once bound to 127.0.0.1.

import http from "node:http";
import process from "node:process";

const port = Number(process.argv[2] ?? 0);

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/") {
    // setHeader, not writeHead: end() then adds Content-Length, as the others send.
    res.setHeader("content-type", "text/plain;charset=UTF-8");
    res.end("Hello, World!");
  } else if (req.method === "POST" && req.url === "/echo") {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    req.pipe(res);
  } else if (req.method === "POST" && req.url === "/drain") {
    let size = 0;
    req.on("data", (chunk) => (size += chunk.length));
    req.on("end", () => {
      res.setHeader("content-type", "text/plain;charset=UTF-8");
      res.end(String(size));
    });
  } else {
    req.resume();
    res.writeHead(404, { "content-type": "text/plain;charset=UTF-8" });
    res.end("Not Found");
  }
});
// The uploads may take longer than the 300 s default; the driver bounds them itself.
server.requestTimeout = 0;
server.listen(port, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
