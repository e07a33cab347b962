// Copyright 2026 the wirestream authors. MIT license.
// The engines an application runs on, for suites parameterised over them: each serves a fetch
// handler on 127.0.0.1 with a free port.

import { httpServer, type ServeInfo } from "@wirestream/wirestream";
import { within } from "./async.ts";

/** A handler served on 127.0.0.1. */
export interface Served {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  origin: string;
  /** `ws://127.0.0.1:<port>`, without a trailing slash. */
  wsOrigin: string;
  /** Shuts the server down gracefully, within 5 s; again, waits for the same. */
  close(): Promise<void>;
}

/** An engine: a name for the test steps, and a way to serve a handler. */
export interface Engine {
  name: string;
  /** Serves `handler`; `onError` turns a handler's error into the response (default: 500). */
  serve(
    handler: (request: Request, info: ServeInfo) => Response | Promise<Response>,
    options?: { onError?: (error: unknown) => Response },
  ): Served;
}

function served(port: number, shutdown: () => Promise<void>, name: string): Served {
  let closing: Promise<void> | null = null;
  return {
    origin: `http://127.0.0.1:${port}`,
    wsOrigin: `ws://127.0.0.1:${port}`,
    close: () => (closing ??= within(shutdown(), 5000, `${name} to shut down`)),
  };
}

/** The wire engine: httpServer, our HTTP/1.1 and frame codec. */
export const wire: Engine = {
  name: "wire engine (httpServer)",
  serve(handler, options = {}) {
    const server = httpServer({ hostname: "127.0.0.1", port: 0, ...options }, handler);
    return served(server.addr.port, () => server.shutdown(), "httpServer");
  },
};

/** The native engine: Deno.serve. */
export const native: Engine = {
  name: "native engine (Deno.serve)",
  serve(handler, options = {}) {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {}, ...options },
      handler,
    );
    return served(server.addr.port, () => server.shutdown(), "Deno.serve");
  },
};

/** The engines that serve HTTP routes. */
export const engines: readonly Engine[] = [wire, native];

/** The engines that serve WebSocket routes: both, since upgradeWebSocket works on either. */
export const wsEngines: readonly Engine[] = [wire, native];
