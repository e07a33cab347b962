// Copyright 2026 the wirestream authors. MIT license.
/**
 * Streaming a part's body to a file: the one multipart helper that touches the file system.
 *
 * @module
 */

/** Options of {@linkcode savePart}. */
export interface SavePartOptions {
  /**
   * Fail with `Deno.errors.AlreadyExists` rather than replace an existing file (a filename
   * taken from the peer should never overwrite one).
   *
   * @default {false}
   */
  createNew?: boolean;
  /** The file's permissions, as `Deno.open`'s `mode` (before the umask). */
  mode?: number;
  /** Aborting it stops the copy; the partial file is removed and the reason thrown. */
  signal?: AbortSignal;
}

/**
 * Streams a part's body to a file, with backpressure: each chunk is written before the next
 * is read, so memory stays flat and a slow disk slows the peer. If the body fails (a
 * truncated or malformed upload, a limit) or the signal aborts, the partial file is removed
 * and the error thrown: a short file is never left looking whole.
 *
 * Needs `--allow-write` for `path`.
 *
 * @param part The part (anything with a `body`), as {@linkcode parseMultipart} gives it.
 * @param path Where to write; created, or truncated if it exists (see `createNew`).
 * @param options `createNew`, `mode` and `signal`.
 * @returns The number of bytes written.
 * @throws {HttpError} As the part's body does (400, 413), after removing the file.
 * @throws {Deno.errors.AlreadyExists} With `createNew`, when the file exists.
 *
 * @example Saving uploaded files (see examples/upload.ts)
 * ```ts ignore
 * import { parseMultipart, savePart } from "@wirestream/wirestream";
 *
 * Deno.serve(async (request) => {
 *   for await (const event of parseMultipart(request, { maxPartSize: 1 << 30 })) {
 *     if (event.type === "part" && event.filename !== null) {
 *       const size = await savePart(event, `./uploads/${crypto.randomUUID()}`, { createNew: true });
 *       console.log(`${event.filename}: ${size} bytes`);
 *     }
 *   }
 *   return new Response("saved\n");
 * });
 * ```
 *
 * @example An aborted signal stops it before any file is created
 * ```ts
 * import { savePart } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const part = { body: ReadableStream.from([new TextEncoder().encode("content")]) };
 * const signal = AbortSignal.abort(new Error("shutting down"));
 * await assert.rejects(savePart(part, "never-written.bin", { signal }), { message: "shutting down" });
 * ```
 */
export async function savePart(
  part: { readonly body: ReadableStream<Uint8Array> },
  path: string | URL,
  options: SavePartOptions = {},
): Promise<number> {
  const { signal } = options;
  signal?.throwIfAborted();
  const reader = part.body.getReader();
  const abort = () => void reader.cancel(signal!.reason).catch(() => {});
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, {
      write: true,
      create: true,
      truncate: true,
      createNew: options.createNew ?? false,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
    });
  } catch (error) {
    await reader.cancel(error).catch(() => {}); // not wanted: a parser skips to the next part
    reader.releaseLock();
    throw error;
  }
  signal?.addEventListener("abort", abort, { once: true });
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      signal?.throwIfAborted(); // a cancelled read ends as if done
      if (done) break;
      for (let at = 0; at < value.length;) at += await file.write(value.subarray(at));
      size += value.length;
    }
    file.close();
    return size;
  } catch (error) {
    file.close();
    await Deno.remove(path).catch(() => {});
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", abort);
    reader.releaseLock();
  }
}
