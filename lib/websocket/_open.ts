// Copyright 2026 the wirestream authors. MIT license.
// Whether a session of ours may still send data, kept off the public interface: the router
// asks it to tell a session's own failure, seen again by its handler, from an error that
// comes from elsewhere (another session's send, say), which is the handler's to report.

const OPEN = new WeakMap<object, () => boolean>();

/** Records how to tell whether `session` is open (no close sent or received, not ended). */
export function registerOpen(session: object, open: () => boolean): void {
  OPEN.set(session, open);
}

/** Whether `session` is open; undefined for a session this library did not make. */
export function isOpen(session: object): boolean | undefined {
  return OPEN.get(session)?.();
}
