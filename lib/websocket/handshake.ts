// Copyright 2026 the wirestream authors. MIT license.
/**
 * The opening handshake of RFC 6455 §4: `Sec-WebSocket-Accept`, validation of an upgrade
 * request (§4.2.1), subprotocol selection and an Origin check.
 *
 * @module
 */

import { HttpError } from "../http/error.ts";
import { hasToken, TCHAR, TOKEN } from "../http/head.ts";

/** The GUID that RFC 6455 §1.3 appends to the key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// 16 bytes in base64: 21 free characters, one whose low 4 bits are zero, and "==".
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): the base64 of
 * the SHA-1 of the key followed by {@linkcode WEBSOCKET_GUID}, with `crypto.subtle`.
 *
 * @param key The client's `Sec-WebSocket-Key`.
 * @returns The value of `Sec-WebSocket-Accept`.
 *
 * @example The example of RFC 6455 §1.3
 * ```ts
 * import { acceptKey } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + WEBSOCKET_GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * Parses a `Sec-WebSocket-Protocol` header into its tokens (RFC 6455 §4.1, §11.3.4).
 *
 * @param value The header's value, or null when absent.
 * @returns The subprotocols, in the client's order of preference.
 * @throws {HttpError} 400 when an item is not a token.
 *
 * @example Parsing offered subprotocols
 * ```ts
 * import { parseProtocols } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseProtocols("chat, superchat"), ["chat", "superchat"]);
 * assert.deepEqual(parseProtocols("chat, , superchat"), ["chat", "superchat"]); // empty items ignored
 * assert.deepEqual(parseProtocols(null), []);
 * ```
 */
export function parseProtocols(value: string | null): string[] {
  if (value === null) return [];
  // Empty list items are ignored (RFC 9110 §5.6.1.2).
  const protocols = value.split(",").map((p) => p.trim()).filter((p) => p !== "");
  for (const protocol of protocols) {
    if (!TOKEN.test(protocol)) {
      throw new HttpError(
        400,
        `Cannot upgrade: subprotocol ${JSON.stringify(protocol.slice(0, 64))} is not a token`,
      );
    }
  }
  return protocols;
}

/** One extension a client offered in `Sec-WebSocket-Extensions` (RFC 6455 §9.1). */
export interface ExtensionOffer {
  /** The extension's token, as sent (`permessage-deflate`, say). */
  name: string;
  /**
   * Its parameters in order, each a name and its value (a quoted value unquoted), or null
   * for a parameter with no value. Duplicates are kept: what they mean is the extension's.
   */
  params: [name: string, value: string | null][];
}

/**
 * Parses a `Sec-WebSocket-Extensions` header by the ABNF of RFC 6455 §9.1: a comma list of
 * extensions, each a token with `;`-separated parameters, a parameter a token with an
 * optional value that is a token or a quoted string whose content is a token. Empty list
 * items are ignored (RFC 9110 §5.6.1.2), and a value with none but empty items (`""`, `","`)
 * gives no offers, as {@linkcode parseProtocols} does, although the ABNF wants at least one.
 * The same extension may be offered several times, with other parameters, in the client's
 * order of preference.
 *
 * @param value The header's value (several fields joined with `", "`), or null when absent.
 * @returns The offers, in the client's order.
 * @throws {HttpError} 400 when the value breaks the ABNF otherwise: RFC 6455 §9.1 says to
 * fail the connection then.
 *
 * @example Reading offers
 * ```ts
 * import { parseExtensions } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * // What Chromium and npm:ws offer.
 * assert.deepEqual(parseExtensions("permessage-deflate; client_max_window_bits"), [
 *   { name: "permessage-deflate", params: [["client_max_window_bits", null]] },
 * ]);
 * assert.deepEqual(parseExtensions('foo; x="10", bar').map((e) => e.name), ["foo", "bar"]);
 * assert.deepEqual(parseExtensions(null), []);
 * ```
 */
export function parseExtensions(value: string | null): ExtensionOffer[] {
  if (value === null) return [];
  const offers: ExtensionOffer[] = [];
  const n = value.length;
  let i = 0;
  const fail = (why: string): never => {
    throw new HttpError(
      400,
      `Cannot upgrade: Sec-WebSocket-Extensions ${
        JSON.stringify(value.slice(0, 128))
      } is malformed: ${why} at offset ${i}`,
    );
  };
  const space = () => {
    while (i < n && (value.charCodeAt(i) === 0x20 || value.charCodeAt(i) === 0x09)) i++;
  };
  const token = (what: string): string => {
    const start = i;
    while (i < n && TCHAR[value.charCodeAt(i)] === 1) i++;
    if (i === start) fail(`${what} is not a token`);
    return value.slice(start, i);
  };
  const quoted = (): string => {
    const start = i;
    let text = "";
    for (i++; i < n; i++) {
      let c = value.charCodeAt(i);
      if (c === 0x22) {
        if (!TOKEN.test(text)) {
          i = start; // the offset names the quoted value
          fail("a quoted value is not a token");
        }
        i++;
        return text;
      }
      if (c === 0x5c) {
        if (++i === n) break;
        c = value.charCodeAt(i);
      }
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) fail("a control character");
      text += value[i];
    }
    return fail("a quoted value is not terminated");
  };
  for (;;) {
    space();
    if (i === n) break;
    if (value.charCodeAt(i) === 0x2c) { // an empty list item
      i++;
      continue;
    }
    const offer: ExtensionOffer = { name: token("an extension name"), params: [] };
    space();
    while (i < n && value.charCodeAt(i) === 0x3b) {
      i++;
      space();
      const name = token("a parameter name");
      space();
      let param: string | null = null;
      if (i < n && value.charCodeAt(i) === 0x3d) {
        i++;
        space();
        param = value.charCodeAt(i) === 0x22 ? quoted() : token("a parameter value");
        space();
      }
      offer.params.push([name, param]);
    }
    offers.push(offer);
    if (i === n) break;
    if (value.charCodeAt(i) !== 0x2c) fail('expected ";" or ","');
    i++;
  }
  return offers;
}

/**
 * Picks the subprotocol to agree on: the first one the client offered that the server
 * supports (the client lists them by preference, RFC 6455 §4.1).
 *
 * @param offered The client's subprotocols, in order.
 * @param supported The server's subprotocols.
 * @returns The agreed subprotocol, or `""` when none matches.
 *
 * @example Selecting a subprotocol
 * ```ts
 * import { selectProtocol } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(selectProtocol(["v2.chat", "v1.chat"], ["v1.chat", "v2.chat"]), "v2.chat");
 * assert.equal(selectProtocol(["mqtt"], ["v1.chat"]), "");
 * ```
 */
export function selectProtocol(offered: readonly string[], supported: readonly string[]): string {
  for (const protocol of offered) if (supported.includes(protocol)) return protocol;
  return "";
}

/**
 * Checks the options' types (a caller's mistake is a TypeError naming the option, before any
 * fault of the request's), as `checkUpgradeRequest` and `upgradeWebSocket` do first
 * (internal: not in `mod.ts`).
 */
export function checkValidationOptions(options: UpgradeValidationOptions): void {
  const { protocols, checkOrigin } = options;
  if (checkOrigin !== undefined && typeof checkOrigin !== "function") {
    throw new TypeError("Invalid checkOrigin: it is not a function");
  }
  if (
    protocols !== undefined &&
    (!Array.isArray(protocols) || !protocols.every((p) => typeof p === "string" && TOKEN.test(p)))
  ) {
    throw new TypeError("Invalid protocols: it is not an array of tokens (RFC 9110 §5.6.2)");
  }
}

/** What {@linkcode validateUpgradeRequest} checks: a `Request` has all of it but the version. */
export interface UpgradeRequestLike {
  /** The request method. */
  readonly method: string;
  /** The request headers. */
  readonly headers: Headers;
  /** The HTTP version (`"HTTP/1.1"`), when the transport tells it; a `Request` does not. */
  readonly httpVersion?: string;
}

/** Options of {@linkcode validateUpgradeRequest}. */
export interface UpgradeValidationOptions {
  /**
   * The subprotocols the server supports; the client's first match is agreed. Anything but an
   * array of tokens is a `TypeError`.
   *
   * @default {[]}
   */
  protocols?: readonly string[];
  /**
   * Decides whether an `Origin` (null when absent: a non-browser client) may connect; false
   * answers 403, the defence against cross-site WebSocket hijacking. Browsers always send
   * `Origin`. By default every origin may. It must return a boolean at once: anything else (a
   * promise) is a `TypeError`.
   */
  checkOrigin?: (origin: string | null) => boolean;
}

/** What a valid upgrade request agreed to. */
export interface UpgradeInfo {
  /** The client's `Sec-WebSocket-Key`. */
  key: string;
  /** The value of `Sec-WebSocket-Accept` to answer with. */
  accept: string;
  /** The agreed subprotocol, or `""`. */
  protocol: string;
  /** The subprotocols the client offered. */
  offeredProtocols: string[];
  /**
   * The extensions the client offered ({@linkcode parseExtensions}). None is agreed: the
   * response carries no `Sec-WebSocket-Extensions`, which RFC 6455 §9.1 allows.
   */
  offeredExtensions: ExtensionOffer[];
  /** The request's `Origin`, or null. */
  origin: string | null;
}

/**
 * Validates a WebSocket upgrade request (RFC 6455 §4.2.1): an HTTP/1.1 or later `GET` with
 * `Host`, an `Upgrade` holding `websocket` and a `Connection` holding `upgrade` (tokens
 * matched case-insensitively), a `Sec-WebSocket-Key` that is the base64 of 16 bytes, and
 * `Sec-WebSocket-Version: 13`. Then the Origin check and the subprotocol choice.
 *
 * @param request The request (a `Request`, or its method, headers and version).
 * @param options The supported subprotocols and the Origin check.
 * @returns The key, the accept value, the agreed subprotocol and the origin.
 * @throws {HttpError} 426 with `Sec-WebSocket-Version: 13` (and `Upgrade: websocket`) for
 * another version, 403 for an
 * origin refused, 400 for anything else.
 * @throws {TypeError} When `checkOrigin` is not a function or `protocols` not an array of
 * tokens, before the request is looked at; or when `checkOrigin` returns anything but a
 * boolean (a promise: it must decide at once).
 *
 * @example Validating a request
 * ```ts
 * import { HttpError, validateUpgradeRequest } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const headers = new Headers({
 *   host: "example.com", upgrade: "websocket", connection: "keep-alive, Upgrade",
 *   "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13",
 *   "sec-websocket-protocol": "chat",
 * });
 * const info = await validateUpgradeRequest({ method: "GET", headers }, { protocols: ["chat"] });
 * assert.equal(info.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * assert.equal(info.protocol, "chat");
 *
 * headers.set("sec-websocket-version", "8");
 * await assert.rejects(validateUpgradeRequest({ method: "GET", headers }), (e) => {
 *   assert(e instanceof HttpError);
 *   assert.equal(e.status, 426);
 *   assert.equal(e.headers.get("sec-websocket-version"), "13");
 *   return true;
 * });
 * ```
 */
export async function validateUpgradeRequest(
  request: UpgradeRequestLike,
  options: UpgradeValidationOptions = {},
): Promise<UpgradeInfo> {
  const checked = checkUpgradeRequest(request, options);
  return { ...checked, accept: await acceptKey(checked.key) };
}

/**
 * The synchronous part of {@linkcode validateUpgradeRequest}: every check and the
 * subprotocol choice, without computing the accept value (which needs `crypto.subtle`).
 *
 * @param request The request (a `Request`, or its method, headers and version).
 * @param options The supported subprotocols and the Origin check.
 * @returns The key, the agreed subprotocol and the origin.
 * @throws {HttpError} 426, 403 or 400 as {@linkcode validateUpgradeRequest} does.
 * @throws {TypeError} For options of the wrong type, as {@linkcode validateUpgradeRequest}.
 *
 * @example Checking a request synchronously
 * ```ts
 * import { checkUpgradeRequest } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const headers = new Headers({
 *   host: "example.com", upgrade: "websocket", connection: "Upgrade",
 *   "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13",
 * });
 * assert.equal(checkUpgradeRequest({ method: "GET", headers }).key, "dGhlIHNhbXBsZSBub25jZQ==");
 * ```
 */
export function checkUpgradeRequest(
  request: UpgradeRequestLike,
  options: UpgradeValidationOptions = {},
): Omit<UpgradeInfo, "accept"> {
  checkValidationOptions(options);
  return checkRequestOnly(request, options);
}

/**
 * {@linkcode checkUpgradeRequest} with options already checked by
 * {@linkcode checkValidationOptions} (internal: not in `mod.ts`).
 */
export function checkRequestOnly(
  request: UpgradeRequestLike,
  options: UpgradeValidationOptions,
): Omit<UpgradeInfo, "accept"> {
  const headers = request.headers;
  const version = request.httpVersion;
  // "HTTP/1.1" and later: HTTP/2 and HTTP/3 are named with or without a minor version.
  if (version !== undefined && !/^HTTP\/(1\.[1-9]|[2-9](\.\d)?)$/.test(version)) {
    throw new HttpError(
      400,
      `Cannot upgrade: ${JSON.stringify(version.slice(0, 64))} is not HTTP/1.1 or later`,
    );
  }
  const notGet = () =>
    new HttpError(
      400,
      `Cannot upgrade: method ${JSON.stringify(request.method.slice(0, 64))} is not GET`,
    );
  // A HEAD is refused after the checks a GET goes through, so that it gets what the same GET
  // would get (426 for another version, 403 for an origin refused): RFC 9110 §9.3.2.
  const head = request.method === "HEAD";
  if (request.method !== "GET" && !head) throw notGet();
  if (!headers.has("host")) throw new HttpError(400, "Cannot upgrade: the request has no Host");
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    throw new HttpError(400, "Cannot upgrade: Upgrade does not hold websocket");
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    throw new HttpError(400, "Cannot upgrade: Connection does not hold upgrade");
  }
  const key = headers.get("sec-websocket-key")?.trim() ?? "";
  if (!KEY.test(key)) {
    throw new HttpError(400, "Cannot upgrade: Sec-WebSocket-Key is not the base64 of 16 bytes");
  }
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    // A 426 names the protocol to upgrade to (RFC 9110 §15.5.22), with the connection option
    // that goes with it (§7.8).
    throw new HttpError(426, "Cannot upgrade: Sec-WebSocket-Version is not 13", {
      headers: { "sec-websocket-version": "13", upgrade: "websocket", connection: "upgrade" },
    });
  }
  const origin = headers.get("origin");
  if (options.checkOrigin !== undefined) {
    const allowed: unknown = options.checkOrigin(origin);
    if (typeof allowed !== "boolean") {
      // A promise (an async check) is truthy: taken as a yes, it let every origin in.
      throw new TypeError(
        "Invalid checkOrigin: it did not return a boolean (it must decide at once, not async)",
      );
    }
    if (!allowed) {
      throw new HttpError(
        403,
        `Cannot upgrade: origin ${JSON.stringify((origin ?? "null").slice(0, 64))} is not allowed`,
      );
    }
  }
  if (head) throw notGet();
  const offeredProtocols = parseProtocols(headers.get("sec-websocket-protocol"));
  const offeredExtensions = parseExtensions(headers.get("sec-websocket-extensions"));
  return {
    key,
    protocol: selectProtocol(offeredProtocols, options.protocols ?? []),
    offeredProtocols,
    offeredExtensions,
    origin,
  };
}
