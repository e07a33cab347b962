// Copyright 2026 the wirestream authors. MIT license.
// Gathering bytes under a limit: a preamble, an epilogue, a field's value.

import { HttpError } from "../http/error.ts";

/** Concatenates `chunks`, which hold `size` bytes in all; a single chunk is returned as is. */
export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Reads `body` to its end, failing with a 413 {@linkcode HttpError} with `message` (and
 * cancelling the body) as soon as it holds more than `limit` bytes.
 */
export async function readLimited(
  body: ReadableStream<Uint8Array>,
  limit: number,
  message: () => string,
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return concatBytes(chunks, size);
      if ((size += value.length) > limit) {
        const error = new HttpError(413, message());
        await reader.cancel(error);
        throw error;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}
