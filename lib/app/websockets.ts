// Copyright 2026 the wirestream authors. MIT license.
/**
 * Ktor's `WebSockets` plugin: the options every WebSocket route of an application uses, and
 * the Origin policy that guards them.
 *
 * @module
 */

import { checkDuration, checkLimit, shown, unknownKey } from "../_options.ts";
import { DEFAULT_MAX_FRAME_SIZE } from "../websocket/decoder.ts";
import { TOKEN } from "../http/head.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "../websocket/message.ts";
import { DEFAULT_MAX_SEND_QUEUE, defaultFrameSize } from "../websocket/_session_core.ts";
import type { Application, Plugin } from "./application.ts";

/**
 * Options of the {@linkcode WebSockets} plugin (Ktor's `WebSocketOptions`), checked when it is
 * installed. Sizes are bytes and durations milliseconds.
 *
 * @example Ktor's `install(WebSockets) { pingPeriod; timeout; maxFrameSize; masking }`
 * ```ts
 * import { Application, WebSockets, type WebSocketsOptions } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const options: WebSocketsOptions = {
 *   pingInterval: 15_000,
 *   timeout: 15_000,
 *   maxFrameSize: 64 * 1024,
 *   masking: false,
 *   maxMessageSize: 1024 * 1024,
 *   protocols: ["chat.v1"],
 *   allowedOrigins: ["https://app.example.com"],
 * };
 * const config = new Application().install(WebSockets, options);
 * assert.equal(config.maxFrameSize, 65_536);
 * assert.throws(() => new Application().install(WebSockets, { pingInterval: -1 }), RangeError);
 * ```
 */
export interface WebSocketsOptions {
  /**
   * Ktor's `pingPeriod`: send a ping this long after the start and after each pong, and close
   * with 1011 (`"ping timeout"`) when its pong does not come within `timeout`. `null` or
   * `Infinity` disables pings (Ktor's `0` is a `RangeError` here: no interval is zero).
   * Routes bound with `webSocketRaw` never ping.
   *
   * @default {null}
   */
  pingInterval?: number | null;
  /**
   * How long a write may take, and how long to wait for the peer's close frame once ours was
   * written (and for the pong of a ping); a close handshake ends within 2 × `timeout` of
   * `close()` however slowly the peer reads. From 1 ms; `Infinity` waits forever.
   *
   * @default {15000}
   */
  timeout?: number;
  /**
   * The largest data frame payload received (1009 above it, at its header; control frames
   * are held to RFC 6455's 125 bytes); messages sent are split into frames of at most this
   * size. At least 1. By default as large as a message:
   * browsers send each message as one frame; on raw routes, which have no message limit, 1 MiB.
   * Porting from Ktor: Ktor's check adds up a fragmented message's frames, so its
   * `maxFrameSize` bounds messages too, and its writer never splits a message; here
   * `maxMessageSize` bounds messages (4 MiB by default): set it as well.
   *
   * @default {maxMessageSize, and at least 125}
   */
  maxFrameSize?: number;
  /**
   * Ktor's `masking`: mask the frames the server sends. RFC 6455 §5.1 forbids it, so standard
   * clients fail such a connection, this library's `connectWebSocket` among them (1002; Ktor's
   * client takes masked frames): leave it off unless the client is one that reads them. Only
   * the wire engine can mask: `embeddedServer` refuses to start an application with it on
   * `NativeEngine`, and on `Deno.serve` or `deno serve` its WebSocket routes answer 501.
   *
   * @default {false}
   */
  masking?: boolean;
  /**
   * The largest message received over all its fragments (1009 above it). Routes bound with
   * `webSocketRaw` see frames, not messages, and ignore it.
   *
   * @default {4194304}
   */
  maxMessageSize?: number;
  /**
   * The most bytes of sent messages that may wait for a peer that reads slower than the
   * handler sends without awaiting its sends: a send made while more waits closes the
   * session with 1011 (`"send queue full"`) and rejects. Awaited sends never reach it. See
   * `WebSocketSessionOptions.maxSendQueue`; on the native engine it bounds the sends waiting
   * for Deno's send buffer.
   *
   * @default {8388608}
   */
  maxSendQueue?: number;
  /**
   * The subprotocols the routes support (`Sec-WebSocket-Protocol`, RFC 6455 §4.2.2); the
   * client's first offer among them is agreed, and none is agreed when nothing matches. A
   * route's own `protocols` replace these.
   *
   * @default {[]}
   */
  protocols?: readonly string[];
  /**
   * The origins, besides the server's own, whose pages may open a WebSocket (the defence
   * against cross-site WebSocket hijacking: a browser sends its cookies with the upgrade, so
   * any page could otherwise act as its user). A request whose `Origin` is neither listed nor
   * the same host as its `Host` gets 403. A request without `Origin` comes from a non-browser
   * client, which could send any `Origin` anyway, and is allowed. Origins are compared
   * normalized (`"https://Example.com:443"` is `"https://example.com"`); `"*"` allows every
   * origin. The default allows only the server's own pages, as browsers do for `fetch`: the
   * same host, and, for a request that came over TLS, an `https:` page (a page served without
   * TLS, which anyone on its path could have changed, is another origin). A request that came
   * without TLS may be one a TLS-terminating proxy forwarded, so its own pages may be `http:`
   * or `https:`.
   *
   * Entries are exact origins: wildcards are not supported, so an entry containing `*` (such
   * as `"https://*.example.com"`, which Ktor's CORS would take for every subdomain) throws a
   * `TypeError`. List each origin, or give `"*"` itself, not in an array, to allow every one.
   *
   * @default {[]}
   */
  allowedOrigins?: readonly string[] | "*";
}

/**
 * The {@linkcode WebSockets} plugin's state: its options, checked, with their defaults.
 *
 * @example Reading the options in force
 * ```ts
 * import { Application, WebSockets, type WebSocketsConfig } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application();
 * app.install(WebSockets, { allowedOrigins: "*" });
 * const config: WebSocketsConfig = app.plugin(WebSockets);
 * assert.equal(config.pingInterval, null); // pings are off by default
 * assert.equal(config.maxMessageSize, 4_194_304);
 * assert.equal(config.isAllowedOrigin("https://anyone.example", "api.example.com"), true);
 * ```
 */
export interface WebSocketsConfig {
  /** The ping period in milliseconds, or null when pings are off. */
  readonly pingInterval: number | null;
  /** The write and close timeout in milliseconds. */
  readonly timeout: number;
  /** The largest frame payload received, in bytes. */
  readonly maxFrameSize: number;
  /** Whether server frames are masked. */
  readonly masking: boolean;
  /** The largest message received, in bytes. */
  readonly maxMessageSize: number;
  /** The most bytes of unawaited sends that may wait to be written. */
  readonly maxSendQueue: number;
  /** The subprotocols the routes support. */
  readonly protocols: readonly string[];
  /** The origins allowed besides the server's own, normalized, or `"*"`. */
  readonly allowedOrigins: readonly string[] | "*";
  /**
   * Applies the Origin policy of {@linkcode WebSocketsOptions.allowedOrigins}.
   *
   * @param origin The request's `Origin`, or null when it has none.
   * @param host The request's `Host`, or null when it has none.
   * @param secure Whether the request came over TLS (its URL is `https:`).
   * @returns Whether the request may be upgraded.
   */
  isAllowedOrigin(origin: string | null, host: string | null, secure?: boolean): boolean;
}

const OPTION_NAMES = new Set([
  "pingInterval",
  "timeout",
  "maxFrameSize",
  "masking",
  "maxMessageSize",
  "maxSendQueue",
  "protocols",
  "allowedOrigins",
]);

// scheme "://" authority, and at most a "/" after it: no path, query or fragment.
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@]+\/?$/i;

function number(name: string, value: unknown): number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid WebSockets option ${name}: ${shown(value)} is not a number`);
  }
  return value;
}

function list(what: string, value: unknown): readonly string[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`Invalid ${what}: ${shown(value)} is not an array of strings`);
  }
  const at = value.findIndex((item) => typeof item !== "string");
  if (at >= 0) {
    throw new TypeError(`Invalid ${what}: item ${at}, ${shown(value[at])}, is not a string`);
  }
  return value;
}

/**
 * Checks a list of subprotocols: each a token (RFC 6455 §4.1).
 *
 * @param what The option, as error messages name it.
 * @param value The option's value.
 * @returns A frozen copy.
 * @throws {TypeError} When it is not an array of tokens.
 */
export function checkProtocols(what: string, value: unknown): readonly string[] {
  const protocols = Object.freeze([...list(what, value)]);
  for (const protocol of protocols) {
    if (!TOKEN.test(protocol)) {
      throw new TypeError(`Invalid ${what}: ${shown(protocol)} is not a token`);
    }
  }
  return protocols;
}

/**
 * An origin (`scheme://host[:port]`) normalized as a browser sends it: scheme and host in
 * lower case, a default port left out. Null when `value` is not one (`"null"`, a path, a user).
 */
function normalizeOrigin(value: string): string | null {
  if (!ORIGIN.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  // url.origin would be "null" for schemes such as chrome-extension:, whose pages send theirs.
  return url.host === "" ? null : `${url.protocol}//${url.host}`;
}

/**
 * Whether `host` (a `Host` value) names the host and port of `origin` (normalized): the
 * same-origin rule of Gorilla's `checkSameOrigin`, with the origin's default port implied.
 */
function sameHost(origin: string, host: string | null): boolean {
  if (host === null || !/^https?:/.test(origin)) return false;
  return normalizeOrigin(`${origin.slice(0, origin.indexOf(":"))}://${host}`) === origin;
}

/** `value`, or `fallback` when it is undefined (null is a value, of the wrong type). */
function or<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/** Checks the options, applies the defaults. */
function configure(options: WebSocketsOptions | undefined): WebSocketsConfig {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Invalid WebSockets options: ${shown(options)} is not an object`);
  }
  const unknown = unknownKey(options, OPTION_NAMES);
  if (unknown !== null) {
    throw new TypeError(
      `Invalid WebSockets option ${JSON.stringify(unknown)}: it is not one of ${
        [...OPTION_NAMES].join(", ")
      }`,
    );
  }
  let pingInterval: number | null = null;
  if (options.pingInterval !== undefined && options.pingInterval !== null) {
    const period = checkDuration("pingInterval", number("pingInterval", options.pingInterval), 1);
    pingInterval = period === Infinity ? null : period;
  }
  const timeout = checkDuration("timeout", number("timeout", or(options.timeout, 15_000)), 1);
  const maxMessageSize = checkLimit(
    "maxMessageSize",
    number("maxMessageSize", or(options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE)),
  );
  const frameSize = or(options.maxFrameSize, undefined);
  const maxFrameSize = checkLimit(
    "maxFrameSize",
    number("maxFrameSize", frameSize ?? defaultFrameSize(maxMessageSize)),
    1,
  );
  const maxSendQueue = checkLimit(
    "maxSendQueue",
    number("maxSendQueue", or(options.maxSendQueue, DEFAULT_MAX_SEND_QUEUE)),
  );
  const masking = or(options.masking, false);
  if (typeof masking !== "boolean") {
    throw new TypeError(`Invalid WebSockets option masking: ${shown(masking)} is not a boolean`);
  }
  const protocols = checkProtocols("WebSockets option protocols", or(options.protocols, []));
  const allowed = or(options.allowedOrigins, []);
  let allowedOrigins: readonly string[] | "*";
  if (allowed === "*") {
    allowedOrigins = "*";
  } else {
    allowedOrigins = Object.freeze(
      list("WebSockets option allowedOrigins", allowed).map((value) => {
        // A "*" would otherwise pass as a literal host ("https://*.example.com" is a valid
        // URL) that no browser ever sends: the route would refuse what its author meant to allow.
        if (value.includes("*")) {
          throw new TypeError(
            `Invalid WebSockets option allowedOrigins: ${
              shown(value)
            } has a wildcard, which is not supported; list each origin, or give "*" (not in an array) to allow every origin`,
          );
        }
        const origin = normalizeOrigin(value);
        if (origin === null) {
          throw new TypeError(
            `Invalid WebSockets option allowedOrigins: ${shown(value)} is not an origin`,
          );
        }
        return origin;
      }),
    );
  }
  const isAllowedOrigin = (origin: string | null, host: string | null, secure = false) => {
    if (origin === null || allowedOrigins === "*") return true;
    const normalized = normalizeOrigin(origin); // null for "null": a sandboxed or file: page
    if (normalized === null) return false;
    if (allowedOrigins.includes(normalized)) return true;
    return sameHost(normalized, host) && !(secure && normalized.startsWith("http:"));
  };
  const config = Object.freeze({
    pingInterval,
    timeout,
    maxFrameSize,
    masking,
    maxMessageSize,
    maxSendQueue,
    protocols,
    allowedOrigins,
    isAllowedOrigin,
  });
  // maxMessageSize does not apply to raw routes, nor does the frame default drawn from it.
  rawFrameSizes.set(config, frameSize === undefined ? DEFAULT_MAX_FRAME_SIZE : maxFrameSize);
  return config;
}

/** The maxFrameSize of raw routes, per installed config (see rawMaxFrameSize). */
const rawFrameSizes = new WeakMap<WebSocketsConfig, number>();

/**
 * The largest frame a raw route takes: the plugin's `maxFrameSize` when it was given, else
 * 1 MiB (a message route's default follows `maxMessageSize`, which raw routes do not have).
 * Internal.
 */
export function rawMaxFrameSize(config: WebSocketsConfig): number {
  return rawFrameSizes.get(config) ?? config.maxFrameSize;
}

/**
 * Ktor's `WebSockets` plugin: install it before binding WebSocket routes
 * (`Routing.webSocket`, `Routing.webSocketRaw`), which use its options. Every option is checked
 * at install time; see {@linkcode WebSocketsOptions} for their meaning and defaults.
 *
 * @example Installing it and reading its state
 * ```ts
 * import { Application, WebSockets } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application();
 * app.install(WebSockets, { pingInterval: 20_000, allowedOrigins: ["https://app.example.com"] });
 * const config = app.plugin(WebSockets);
 * assert.equal(config.timeout, 15_000); // the default
 * assert.equal(config.isAllowedOrigin("https://app.example.com", "api.example.com"), true);
 * assert.equal(config.isAllowedOrigin("https://api.example.com", "api.example.com"), true);
 * assert.equal(config.isAllowedOrigin("https://evil.example", "api.example.com"), false);
 * assert.equal(config.isAllowedOrigin(null, "api.example.com"), true); // not a browser
 * // Over TLS, a page served without it is another origin.
 * assert.equal(config.isAllowedOrigin("http://api.example.com", "api.example.com", true), false);
 *
 * assert.throws(() => new Application().install(WebSockets, { timeout: -1 }), RangeError);
 * assert.throws(() => new Application().install(WebSockets, { masking: "yes" as never }), TypeError);
 * ```
 */
export const WebSockets: Plugin<WebSocketsOptions, WebSocketsConfig> = {
  key: "WebSockets",
  install: (_application: Application, options: WebSocketsOptions | undefined) =>
    configure(options),
};
