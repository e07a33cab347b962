// Copyright 2026 the wirestream authors. MIT license.
// A WebSocket echo server on wirestream's session: every message comes back with its type
// (text stays text, binary stays binary), on any path. Other requests get 400 (426 for a
// wrong WebSocket version).
//
//   deno run --allow-net examples/echo.ts [--port 8000] [--engine wire|native]
//
// It prints `listening on http://127.0.0.1:<port>/` when ready; --port 0 picks a free port.
// --engine wire (the default) serves HTTP and WebSockets with wirestream's own HTTP/1.1 engine
// and frame codec. --engine native (or deno) serves the same handler with Deno.serve, where
// upgradeWebSocket gives a session over Deno's own WebSocket (the native engine).

import { HttpError, type MessageSession, upgradeWebSocket } from "@wirestream/wirestream";
import { serveFromArgs } from "./_cli.ts";

/**
 * The echo's limits: messages up to 64 MiB, frames up to 16 MiB (on the native engine, which
 * sees whole messages, messages up to 16 MiB). Generous, for interop tests: each such message
 * costs the server about twice its size while it is echoed, so a server for the open internet
 * takes 1 MiB, as examples/deploy.ts does.
 */
export const LIMITS = { maxFrameSize: 16 << 20, maxMessageSize: 64 << 20 };

/** Echoes each message of `session` until it ends. */
export async function echo(session: MessageSession): Promise<void> {
  try {
    for await (const message of session.incoming) await session.send(message);
  } catch {
    // The session failed; `closed` tells how, and the peer was told.
  }
}

/**
 * The fetch handler, on either engine: upgrade, then echo. It takes upgrades from pages of any
 * origin, which an echo may: a server whose sessions act for a signed-in user must refuse other
 * sites' pages (`checkOrigin` in the options, or the WebSockets plugin's `allowedOrigins`).
 */
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

if (import.meta.main) serveFromArgs(Deno.args, handler);
