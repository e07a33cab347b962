// Copyright 2026 the wirestream authors. MIT license.
// What the examples that store uploads share: whether a browser says a request comes from a
// page of another origin.

/**
 * What the browser says of where a request comes from, in `Sec-Fetch-Site` (every current
 * browser sends it): true from another site or another port of this host ("cross-site",
 * "same-site"), false from a page of this origin or typed in ("same-origin", "none"), null
 * when it says nothing (curl, an older browser).
 */
export function otherOriginBySecFetch(request: Request): boolean | null {
  const site = request.headers.get("sec-fetch-site");
  return site === null ? null : site !== "same-origin" && site !== "none";
}
