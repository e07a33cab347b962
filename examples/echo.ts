// Copyright 2026 the wirestream authors. MIT license.
// A WebSocket echo server on wirestream's session: every message comes back with its type
// (text stays text, binary stays binary), on any path.
//
//   deno run --allow-net examples/echo.ts --port 8000
//
// It prints `listening on http://127.0.0.1:<port>/` when ready. --port 0 picks a free port.

import { acceptWebSocket, type WebSocketSession } from "@wirestream/wirestream";

/** Echoes each message of `session` until it ends. */
export async function echo(session: WebSocketSession): Promise<void> {
  try {
    for await (const message of session.incoming) await session.send(message);
  } catch {
    // The session failed; `closed` tells how, and the peer was told.
  }
}

/** Serves the echo on `listener` until it is closed. */
export async function serve(
  listener: Deno.Listener,
  options: { maxFrameSize?: number; maxMessageSize?: number } = {},
): Promise<void> {
  for await (const conn of listener) {
    acceptWebSocket(conn, options).then(({ session }) => echo(session), () => {});
  }
}

function parsePort(args: string[]): number {
  const at = args.indexOf("--port");
  const value = at === -1 ? "8000" : args[at + 1];
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Invalid --port: ${JSON.stringify(value)} is not a port number`);
  }
  return port;
}

if (import.meta.main) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: parsePort(Deno.args) });
  console.log(`listening on http://127.0.0.1:${listener.addr.port}/`);
  await serve(listener, { maxFrameSize: 16 << 20, maxMessageSize: 64 << 20 });
}
