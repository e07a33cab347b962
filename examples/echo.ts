// Copyright 2026 the wirestream authors. MIT license.
// A WebSocket echo server on wirestream's session: every message comes back with its type
// (text stays text, binary stays binary), on any path. Other requests get 400 (426 for a
// wrong WebSocket version).
//
//   deno run --allow-net examples/echo.ts [--port 8000] [--engine wire|deno]
//
// It prints `listening on http://127.0.0.1:<port>/` when ready; --port 0 picks a free port.
// --engine wire (the default) serves HTTP and WebSockets with wirestream's own HTTP/1.1 engine
// and frame codec. --engine deno uses Deno.serve and Deno's WebSocket (the native engine
// gets wirestream's session with the application layer).

import {
  HttpError,
  httpServer,
  upgradeWebSocket,
  type WebSocketSession,
} from "@wirestream/wirestream";

/** The echo's limits: messages up to 64 MiB, frames up to 16 MiB. */
export const LIMITS = { maxFrameSize: 16 << 20, maxMessageSize: 64 << 20 };

/** Echoes each message of `session` until it ends. */
export async function echo(session: WebSocketSession): Promise<void> {
  try {
    for await (const message of session.incoming) await session.send(message);
  } catch {
    // The session failed; `closed` tells how, and the peer was told.
  }
}

/** The fetch handler of the wire engine: upgrade, then echo. */
export function handler(request: Request): Response {
  try {
    const { response, session } = upgradeWebSocket(request, LIMITS);
    echo(session);
    return response;
  } catch (error) {
    if (error instanceof HttpError) return error.toResponse();
    throw error;
  }
}

/** The fetch handler of the native engine, on Deno's own WebSocket. */
export function nativeHandler(request: Request): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("Cannot upgrade: Upgrade does not hold websocket\n", { status: 400 });
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => socket.send(event.data);
  return response;
}

function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1] ?? "";
}

if (import.meta.main) {
  const value = option(Deno.args, "--port", "8000");
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`Invalid --port: ${JSON.stringify(value)} is not a port number`);
  }
  const engine = option(Deno.args, "--engine", "wire");
  const announce = (addr: Deno.NetAddr) =>
    console.log(`listening on http://127.0.0.1:${addr.port}/`);
  if (engine === "wire") {
    httpServer({ hostname: "127.0.0.1", port, onListen: announce }, handler);
  } else if (engine === "deno") {
    Deno.serve({ hostname: "127.0.0.1", port, onListen: announce }, nativeHandler);
  } else {
    throw new RangeError(`Invalid --engine: ${JSON.stringify(engine)} is not wire or deno`);
  }
}
