// Copyright 2026 the wirestream authors. MIT license.
// Entity tags (RFC 9110 §8.8.3) and their comparisons (§8.8.3.2), for ETag, If-Match,
// If-None-Match and If-Range.

import { trimOws } from "../http/head.ts";

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
const ENTITY_TAG = /^(?:W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;
// One list member with the OWS and comma after it; members may be empty (§5.6.1.2). The OWS
// after a tag sits inside the optional group: two `[ \t]*` side by side would retry each other
// at every space of a long run (quadratic time on a peer's header).
const MEMBER = /[ \t]*(?:((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")[ \t]*)?(?:,|$)/y;

/** Whether `text` is an entity-tag, weak (`W/"…"`) or strong (`"…"`). */
export function isEntityTag(text: string): boolean {
  return ENTITY_TAG.test(text);
}

/**
 * The members of an `If-Match` or `If-None-Match` value: `"*"`, or the entity-tags it lists
 * (commas may stand inside a tag), or null when it is neither.
 */
export function parseEntityTags(value: string): "*" | string[] | null {
  if (trimOws(value) === "*") return "*";
  const tags: string[] = [];
  MEMBER.lastIndex = 0;
  while (MEMBER.lastIndex < value.length) {
    const at = MEMBER.lastIndex;
    const match = MEMBER.exec(value);
    if (match === null || MEMBER.lastIndex === at) return null; // not a tag, or no progress
    if (match[1] !== undefined) tags.push(match[1]);
  }
  return tags;
}

/** The strong comparison: both tags strong, and the same. */
export function strongMatch(a: string, b: string | undefined): boolean {
  return b !== undefined && a === b && !a.startsWith("W/");
}

/** The weak comparison: the same opaque tag, either weak or not. */
export function weakMatch(a: string, b: string | undefined): boolean {
  return b !== undefined && opaque(a) === opaque(b);
}

function opaque(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}
