// Copyright 2026 the wirestream authors. MIT license.
// Gathering bytes under a limit: a field's value, a file kept in memory.

import { HttpError } from "../http/error.ts";

/**
 * Reads `body` to its end, failing with a 413 {@linkcode HttpError} with `message` (and
 * cancelling the body) as soon as it holds more than `limit` bytes.
 *
 * The bytes are copied into one buffer that grows by doubling (a body of one chunk is that
 * chunk): holding the chunks until the end would hold an object per chunk, and the limit,
 * counted in bytes, would not bound them (about 200 bytes per chunk of 1 byte).
 */
export async function readLimited(
  body: ReadableStream<Uint8Array>,
  limit: number,
  message: () => string,
): Promise<Uint8Array> {
  const reader = body.getReader();
  let first: Uint8Array | null = null;
  let bytes = EMPTY;
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return first ?? (size === bytes.length ? bytes : bytes.slice(0, size));
      if (size + value.length > limit) {
        const error = new HttpError(413, message());
        await reader.cancel(error);
        throw error;
      }
      if (value.length === 0) continue;
      if (size === 0) {
        first = value;
        size = value.length;
        continue;
      }
      const end = size + value.length;
      if (end > bytes.length) {
        const grown = new Uint8Array(Math.min(Math.max(end, 2 * size, 1024), limit));
        grown.set(first ?? bytes.subarray(0, size));
        bytes = grown;
        first = null;
      }
      bytes.set(value, size);
      size = end;
    }
  } finally {
    reader.releaseLock();
  }
}

const EMPTY = new Uint8Array(0);
