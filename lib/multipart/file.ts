// Copyright 2026 the wirestream authors. MIT license.
/**
 * Streaming a part's body to a file: the one multipart helper that touches the file system.
 *
 * @module
 */

/** Options of {@linkcode savePart}. */
export interface SavePartOptions {
  /**
   * Fail with `Deno.errors.AlreadyExists` rather than replace an existing file or symlink (a
   * filename taken from the peer should never overwrite one). It is checked before the copy,
   * and again by the last step, a hard link, which never overwrites. Where the file system has
   * no hard links, the last step is a second check and then a rename: a file created between
   * the two is replaced.
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
 * is read (chunks under 16 KiB are gathered into one 64 KiB buffer and written together), so
 * memory stays flat and a slow disk slows the peer. The body goes to a temporary
 * file in the same directory (`.<random UUID>.savepart`, created new, with `mode`), renamed
 * to `path` only once the body is whole. If the body fails (a truncated or malformed upload,
 * a limit) or the signal aborts, only the temporary file is removed and the error thrown: a
 * short file is never left looking whole, and a file already at `path` keeps its content.
 *
 * An existing `path` is replaced, not written through: a symlink there is replaced by the
 * new file (its target is left as it was), and the new file has `mode` (or the default
 * permissions), not the old file's.
 *
 * Needs `--allow-read` and `--allow-write` for the directory of `path`.
 *
 * @param part The part (anything with a `body`), as {@linkcode parseMultipart} gives it.
 * @param path Where to save it (a `file:` URL or a path); replaced if it exists, unless
 * `createNew`.
 * @param options `createNew`, `mode` and `signal`.
 * @returns The number of bytes written.
 * @throws {HttpError} As the part's body does (400, 413), after removing the temporary file.
 * @throws {Deno.errors.AlreadyExists} With `createNew`, when `path` exists.
 * @throws {TypeError} For a URL that is not a `file:` URL, one that names a host, or one whose
 * percent-encoding is malformed.
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
  const createNew = options.createNew ?? false;
  signal?.throwIfAborted();
  const reader = part.body.getReader();
  const abort = () => void reader.cancel(signal!.reason).catch(() => {});
  let target: string, temp: string, file: Deno.FsFile;
  try {
    target = pathOf(path);
    temp = tempPathFor(target);
    if (createNew && await exists(target)) throw alreadyExists(target);
    file = await Deno.open(temp, {
      write: true,
      createNew: true, // a random name: never someone else's file
      ...(options.mode === undefined ? {} : { mode: options.mode }),
    });
  } catch (error) {
    await reader.cancel(error).catch(() => {}); // not wanted: a parser skips to the next part
    reader.releaseLock();
    throw error;
  }
  signal?.addEventListener("abort", abort, { once: true });
  let size = 0, open = true;
  // Small chunks (a slow client's) are gathered and written together: one write per chunk
  // took 4-5 times as long as Deno.writeFile for 1 KiB chunks.
  let staged: Uint8Array | null = null, held = 0;
  try {
    // It may have aborted while the file was opened, before the listener was there: a body
    // that sends nothing more would otherwise hold the copy (and the temporary file).
    signal?.throwIfAborted();
    while (true) {
      const { done, value } = await reader.read();
      signal?.throwIfAborted(); // a cancelled read ends as if done
      if (done) break;
      if (!(value instanceof Uint8Array)) {
        // Copied into the staging buffer, a string would be zeros and a Uint16Array cut short.
        throw new TypeError("Cannot save part: its body gave a chunk that is not a Uint8Array");
      }
      size += value.length;
      if (value.length < SMALL_CHUNK) {
        staged ??= new Uint8Array(STAGE_SIZE);
        if (held + value.length > STAGE_SIZE) {
          await writeAll(file, staged.subarray(0, held));
          held = 0;
        }
        staged.set(value, held);
        held += value.length;
        continue;
      }
      if (held > 0) {
        await writeAll(file, staged!.subarray(0, held));
        held = 0;
      }
      await writeAll(file, value);
    }
    if (held > 0) await writeAll(file, staged!.subarray(0, held));
    file.close();
    open = false;
    if (createNew) await linkNew(temp, target);
    else await Deno.rename(temp, target); // replaces a file or symlink there, atomically
    return size;
  } catch (error) {
    if (open) file.close();
    await Deno.remove(temp).catch(() => {});
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", abort);
    reader.releaseLock();
  }
}

/** Chunks under this are gathered into a buffer of STAGE_SIZE bytes before they are written. */
const SMALL_CHUNK = 16_384;
const STAGE_SIZE = 65_536;

/** Writes all of `bytes` to `file`. */
async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

/** The file system path of `path`, a path or a `file:` URL. */
function pathOf(path: string | URL): string {
  if (!(path instanceof URL)) return path;
  if (path.protocol !== "file:") {
    throw new TypeError(`Cannot save part: ${JSON.stringify(path.href)} is not a file: URL`);
  }
  let pathname: string;
  try {
    pathname = decodeURIComponent(path.pathname);
  } catch {
    throw new TypeError(
      `Cannot save part: ${JSON.stringify(path.href)} has a malformed percent-encoding`,
    );
  }
  if (Deno.build.os !== "windows") {
    // As Deno.open refuses it: file://host/a/b is not the local /a/b.
    if (path.hostname !== "") {
      throw new TypeError(`Cannot save part: ${JSON.stringify(path.href)} names a host`);
    }
    return pathname;
  }
  const local = path.hostname === "" ? pathname.slice(1) : `//${path.hostname}${pathname}`;
  return local.replaceAll("/", "\\"); // file:///C:/a/b is C:\a\b
}

/** A fresh name in the directory of `target`: a rename within one file system is atomic. */
function tempPathFor(target: string): string {
  const separator = Deno.build.os === "windows" ? /[\\/][^\\/]*$/ : /\/[^/]*$/;
  const last = target.search(separator);
  return `${target.slice(0, last + 1)}.${crypto.randomUUID()}.savepart`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path); // a symlink counts, dangling or not
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

function alreadyExists(path: string): Deno.errors.AlreadyExists {
  return new Deno.errors.AlreadyExists(
    `Cannot save part: ${JSON.stringify(path.slice(-64))} exists and createNew is set`,
  );
}

/** Moves `temp` to `target` unless something is there: a hard link never overwrites. */
async function linkNew(temp: string, target: string): Promise<void> {
  try {
    await Deno.link(temp, target);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw alreadyExists(target);
    // No hard links here (FAT, some network file systems): check again, then rename.
    if (await exists(target)) throw alreadyExists(target);
    await Deno.rename(temp, target);
    return;
  }
  await Deno.remove(temp).catch(() => {}); // the file is saved: a stray name is no failure
}
