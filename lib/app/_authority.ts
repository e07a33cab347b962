// Copyright 2026 the wirestream authors. MIT license.
/**
 * The checks of a request's authority and method that the native engine and
 * `Application.fetch` make: `Deno.serve` (under `deno serve` and Deno Deploy too) builds
 * `request.url` from `Host`, so a `Host` of `a/admin` would route `GET /x` as `/admin/x`; and
 * it hands `CONNECT`, `TRACE` and `TRACK` to the handler, which the wire engine refuses with
 * 501. Internal.
 *
 * @module
 */

import { HttpError } from "../http/error.ts";
import {
  absoluteTargetParts,
  authorityProblem,
  methodCaseProblem,
  UNSUPPORTED_METHODS,
} from "../http/head.ts";
import { madeByPipeline } from "../http/pipeline.ts";

/** Requests whose authority and method the native engine checked (see markChecked). */
const checked = new WeakSet<Request>();

/**
 * Records that an engine checked `request`'s authority and method, so that the application
 * does not.
 */
export function markChecked(request: Request): void {
  checked.add(request);
}

/**
 * refuseAuthority, then refuseMethod, for a request no engine of ours checked: one the wire
 * engine made (its pipeline checks Host, the target and the method), or the native engine
 * marked, passes at once.
 */
export function refuseUnchecked(request: Request): Response | null {
  // (A hand-built Request cannot have those methods: its constructor refuses them.)
  if (madeByPipeline(request) || checked.has(request)) return null;
  return refuseAuthority(request) ?? refuseMethod(request);
}

/**
 * The 400 for a request whose `Host`, or the authority `Deno.serve` put in its URL, is not a
 * host and an optional port (the wire engine's check, `authorityProblem`); null for a valid
 * one. A URL that starts with the valid Host needs no second look: the common case.
 */
export function refuseAuthority(request: Request): Response | null {
  const host = request.headers.get("host");
  const url = request.url;
  if (host !== null) {
    const problem = authorityProblem("Host", host);
    if (problem !== null) return new HttpError(400, problem).toResponse();
    const at = url.indexOf("://") + 3;
    if (url.startsWith(host, at) && url.charCodeAt(at + host.length) === 0x2f) return null;
  }
  const problem = authorityProblem("authority", absoluteTargetParts(url)?.[1] ?? "");
  return problem === null ? null : new HttpError(400, problem).toResponse();
}

/**
 * The 501 the wire engine gives CONNECT, TRACE and TRACK, and a method that differs only in
 * case from one that Fetch upper-cases (see `methodCaseProblem`): without it the two engines
 * answered 501 and 405 (an application's routes answer a method they lack with 405).
 */
export function refuseMethod(request: Request): Response | null {
  const method = request.method, upper = method.toUpperCase();
  if (UNSUPPORTED_METHODS.has(upper)) {
    return new HttpError(501, `Cannot serve request: method ${method} is not supported`)
      .toResponse();
  }
  const problem = methodCaseProblem(method, upper);
  return problem === null ? null : new HttpError(501, problem).toResponse();
}
