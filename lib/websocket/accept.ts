// Copyright 2026 the wirestream authors. MIT license.
/**
 * The server side of the opening handshake over a bare byte duplex: read the upgrade request,
 * answer 101 (or the error status), and start a session on the same bytes.
 *
 * @module
 */

import { HttpError } from "../http/error.ts";
import { readHead } from "./_head.ts";
import type { Transport } from "./_session_core.ts";
import { type UpgradeValidationOptions, validateUpgradeRequest } from "./handshake.ts";
import { WebSocketSession, type WebSocketSessionOptions } from "./session.ts";

/** Options of {@linkcode acceptWebSocket}. */
export interface AcceptWebSocketOptions extends WebSocketSessionOptions, UpgradeValidationOptions {
  /**
   * The largest request head accepted, in bytes (431 above it).
   *
   * @default {16384}
   */
  maxHeadSize?: number;
}

/** A session started by {@linkcode acceptWebSocket}, with the request that asked for it. */
export interface AcceptedWebSocket {
  /** The session, role server. */
  session: WebSocketSession;
  /** The upgrade request, with its URL built from `Host` and the request target. */
  request: Request;
}

const encoder = new TextEncoder();

/**
 * Accepts a WebSocket on a bare byte duplex (a `Deno.Conn`, a pipe): reads the HTTP/1.1
 * upgrade request, validates it (see {@linkcode validateUpgradeRequest}), writes
 * `101 Switching Protocols` and returns a server {@linkcode WebSocketSession} that starts
 * with the bytes read past the request head. An invalid request is answered with its status
 * (400, 403, 426, 431), the transport is closed, and the {@linkcode HttpError} is thrown.
 *
 * This is the minimal server for a connection that carries one WebSocket; the HTTP engine
 * (`httpServer`) serves HTTP and upgrades on the same port.
 *
 * @param transport The connection.
 * @param options Session options, the supported subprotocols, the Origin check and the head
 * size limit.
 * @returns The session and the request.
 * @throws {HttpError} For an invalid upgrade request (after answering it).
 *
 * @example An echo server on a TCP listener
 * ```ts ignore
 * import { acceptWebSocket } from "@wirestream/wirestream";
 *
 * for await (const conn of Deno.listen({ port: 8080 })) {
 *   acceptWebSocket(conn).then(async ({ session }) => {
 *     for await (const message of session.incoming) await session.send(message);
 *   }).catch(() => {}); // invalid requests were answered already
 * }
 * ```
 */
export async function acceptWebSocket(
  transport: Transport,
  options: AcceptWebSocketOptions = {},
): Promise<AcceptedWebSocket> {
  let answered = false;
  try {
    const head = await readHead(transport.readable, options.maxHeadSize ?? 16_384, "request");
    const [method, target, httpVersion] = head.start;
    const host = head.headers.get("host") ?? "localhost";
    const url = target.startsWith("/") ? new URL(target, `http://${host}`) : new URL(target);
    const info = await validateUpgradeRequest(
      { method, headers: head.headers, httpVersion },
      options,
    );
    const request = new Request(url, { headers: head.headers });
    const writer = transport.writable.getWriter();
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "upgrade: websocket",
      "connection: Upgrade",
      `sec-websocket-accept: ${info.accept}`,
    ];
    if (info.protocol !== "") lines.push(`sec-websocket-protocol: ${info.protocol}`);
    answered = true;
    await writer.write(encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
    writer.releaseLock();
    const session = new WebSocketSession(transport, {
      ...options,
      role: "server",
      protocol: info.protocol,
      buffered: head.rest,
    });
    return { session, request };
  } catch (error) {
    const failure = error instanceof HttpError
      ? error
      : new HttpError(400, "Cannot upgrade: the request could not be read", { cause: error });
    if (!answered) await answer(transport, failure);
    else transport.close?.();
    throw failure;
  }
}

/** Writes an error response and closes the transport; never throws. */
async function answer(transport: Transport, error: HttpError): Promise<void> {
  try {
    const body = encoder.encode(error.message + "\n");
    let head = `HTTP/1.1 ${error.status} ${STATUS_TEXT[error.status] ?? "Error"}\r\n`;
    error.headers.forEach((value, name) => (head += `${name}: ${value}\r\n`));
    head +=
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    const writer = transport.writable.getWriter();
    await writer.write(encoder.encode(head));
    await writer.write(body);
    await writer.close();
  } catch {
    // The peer is gone; nothing to answer.
  }
  transport.readable.cancel().catch(() => {}); // unlocked: readHead released it
  try {
    transport.close?.();
  } catch {
    // Already closed.
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
};
