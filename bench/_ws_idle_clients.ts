// Copyright 2026 the wirestream authors. MIT license.
// The clients of bench/ws_idle_memory.ts: opens N WebSockets (Deno's own) to the URL, 100 at a
// time, sends one short text on each and prints `ready <n>` once every one was echoed; then
// keeps them open and silent until killed.
//
//   deno run --allow-net=127.0.0.1 bench/_ws_idle_clients.ts ws://127.0.0.1:PORT/ N

const [url, count] = Deno.args;
const n = Number(count);
if (!url || !Number.isInteger(n) || n < 1) {
  console.error("usage: _ws_idle_clients.ts URL N");
  Deno.exit(2);
}
const sockets: WebSocket[] = [];
let echoed = 0;
for (let i = 0; i < n; i++) {
  const socket = new WebSocket(url);
  socket.onopen = () => socket.send(`hello ${i}`);
  socket.onmessage = () => {
    if (++echoed === n) console.log(`ready ${n}`);
  };
  socket.onerror = (event) => {
    console.error(`client ${i}: ${(event as ErrorEvent).message}`);
    Deno.exit(1);
  };
  sockets.push(socket);
  if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
}
setInterval(() => {}, 1 << 30); // keeps the sockets open until killed
