// Copyright 2026 the wirestream authors. MIT license.
// How upgradeWebSocket and the connection pipeline find each other: the pipeline registers
// each Request it creates; upgradeWebSocket marks the Response it returns with a ticket that
// the pipeline redeems by writing 101 and handing the connection (with the bytes already
// read) to the session waiting for it.

import type { TransportReady } from "../websocket/_session_core.ts";

/** What a pending upgrade needs from the pipeline. */
export interface UpgradeTicket {
  /** The request the upgrade answers. */
  request: Request;
  /** The client's Sec-WebSocket-Key. */
  key: string;
  /** The agreed subprotocol, or "". */
  protocol: string;
  /** Gives the session its transport once 101 is written. */
  settle(transport: TransportReady): void;
  /** Tells the session that the upgrade will not happen. */
  fail(reason: unknown): void;
}

/** What the pipeline knows of a request it created. */
export interface WireContext {
  /** The request line's version. */
  httpVersion: string;
  /** Whether the request carries a body (then it cannot be upgraded: the bytes after it
   * would be the body's, not the first frames). */
  hasBody: boolean;
  /** The upgrade asked for on this request, if any. */
  ticket: UpgradeTicket | null;
  /**
   * The pipeline is done with the request: its response was written, or never will be (the
   * pipeline was aborted, the client left, the connection closed). An upgrade asked for now
   * gets no connection, and its session ends at once.
   */
  ended: boolean;
  /** Called with each session created on this connection (for graceful shutdown). */
  onSession: ((session: { close(code?: number, reason?: string): unknown }) => void) | undefined;
}

/** Requests created by a pipeline. */
export const wireContexts: WeakMap<Request, WireContext> = new WeakMap();
/** Responses returned by upgradeWebSocket. */
export const upgradeTickets: WeakMap<Response, UpgradeTicket> = new WeakMap();

/**
 * Responses made by `Deno.upgradeWebSocket` for upgradeWebSocket's native path, with a way
 * to end their session at once: only Deno.serve can complete them, so the wire engine, handed
 * one (the handler upgraded a copy of its request), answers 500 and ends the session.
 */
export const nativeUpgrades = new WeakMap<Response, (reason: Error) => void>();
