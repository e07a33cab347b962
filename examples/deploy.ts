// Copyright 2026 the wirestream authors. MIT license.
// An application for Deno Deploy: only what Deploy offers (Deno.serve through `deno serve`, no
// listening sockets of its own, no files written). A page, a health check, and a WebSocket
// echo with pings, on the native engine.
//
//   deno serve --allow-net examples/deploy.ts            (locally, as Deploy runs it)
//   deployctl deploy --entrypoint=examples/deploy.ts     (on Deno Deploy)

import { Application, type MessageSession, WebSockets } from "@wirestream/wirestream";

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>wirestream on Deno Deploy</title>
<h1>wirestream on Deno Deploy</h1>
<p><input id="text" value="hello"> <button id="send">send</button></p>
<pre id="log"></pre>
<script type="module">
  const log = (line) => (document.querySelector("#log").textContent += line + "\\n");
  const socket = new WebSocket(new URL("/ws", location.href.replace(/^http/, "ws")));
  socket.onopen = () => log("open");
  socket.onmessage = (event) => log("echo: " + event.data);
  socket.onclose = (event) => log("closed " + event.code);
  document.querySelector("#send").onclick = () => socket.send(document.querySelector("#text").value);
</script>
`;

/** Sends every message back, as it came (text stays text, binary stays binary). */
async function echo(session: MessageSession): Promise<void> {
  for await (const message of session.incoming) await session.send(message);
}

const app = new Application();
// Deploy's native engine maps pings onto Deno's idleTimeout: a silent client is dropped after
// pingInterval + timeout.
app.install(WebSockets, { pingInterval: 30_000, timeout: 10_000, maxMessageSize: 1 << 20 });
app.routing((r) => {
  r.get("/", () => new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }));
  r.get("/health", () => Response.json({ ok: true }));
  r.webSocket("/ws", echo);
});

export default app satisfies Deno.ServeDefaultExport;
