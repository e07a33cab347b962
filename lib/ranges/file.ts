// Copyright 2026 the wirestream authors. MIT license.
/**
 * Serving a file with ranges: `serveRanges` over one handle of the file, opened on the body's
 * first read and kept until it ends, with a seek per range; and a small table of media types.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import type { RangeSource } from "./byteranges.ts";
import type { ByteRange } from "./range.ts";
import { checkMethod, failure, serveRanges, type ServeRangesOptions } from "./serve.ts";

/**
 * The media type of each file extension {@linkcode serveFile} knows (lower case, without the
 * dot); others are `application/octet-stream`. Text types say `charset=utf-8`. The values
 * are those of `npm:mime-types` (what `npm:send` uses), so the two agree.
 *
 * @example Looking up a media type
 * ```ts
 * import { MEDIA_TYPES } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MEDIA_TYPES["mp4"], "video/mp4");
 * assert.equal(MEDIA_TYPES["html"], "text/html; charset=utf-8");
 * ```
 */
export const MEDIA_TYPES: Readonly<Record<string, string>> = Object.freeze({
  aac: "audio/aac",
  apng: "image/apng",
  avif: "image/avif",
  bin: "application/octet-stream",
  bmp: "image/bmp",
  css: "text/css; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  gif: "image/gif",
  gz: "application/gzip",
  htm: "text/html; charset=utf-8",
  html: "text/html; charset=utf-8",
  ico: "image/vnd.microsoft.icon",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  js: "text/javascript; charset=utf-8",
  json: "application/json; charset=utf-8",
  m4a: "audio/mp4",
  map: "application/json; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
  oga: "audio/ogg",
  ogg: "audio/ogg",
  ogv: "video/ogg",
  opus: "audio/ogg",
  otf: "font/otf",
  pdf: "application/pdf",
  png: "image/png",
  svg: "image/svg+xml",
  tar: "application/x-tar",
  ttf: "font/ttf",
  txt: "text/plain; charset=utf-8",
  vtt: "text/vtt; charset=utf-8",
  wasm: "application/wasm",
  wav: "audio/wav",
  webm: "video/webm",
  webmanifest: "application/manifest+json; charset=utf-8",
  webp: "image/webp",
  woff: "font/woff",
  woff2: "font/woff2",
  xml: "application/xml",
  zip: "application/zip",
});

/** Options of {@linkcode serveFile}. */
export interface ServeFileOptions
  extends Pick<ServeRangesOptions, "maxRanges" | "headers" | "contentType"> {
  /**
   * The file's entity-tag; by default a strong one made of its size and modification time in
   * milliseconds (`"<size hex>-<mtime hex>"`, as nginx does), which changes whenever a write
   * changes either. `null` sends none (`If-Range` then needs a date).
   */
  etag?: string | null;
  /**
   * How many bytes one read of the file takes, and so the largest chunk of the body.
   *
   * @default {65536}
   */
  chunkSize?: number;
  /**
   * The folder to serve from: `path` is then a string relative to it (a route parameter, the
   * rest of a URL path), and the file served is always inside it. Without it, `path` is used
   * as it is, which is safe only for a path the handler chose itself.
   *
   * Refused with 404 before any file is looked at: an absolute `path` (`/etc/passwd`, a
   * drive `C:`), a `..` segment (even one that would stay inside), a backslash (a separator on
   * Windows, refused on every system so that one rule holds) and NUL. Then the folder and the
   * file are resolved with `Deno.realPath`, and a file whose real path is outside the folder's
   * gets 404 too: a symbolic link inside the folder is followed only to a target inside it.
   * Every refusal, and a target that cannot be resolved, is the 404 of a missing file, so the
   * answer never tells whether something outside exists. (This guards against what the URL
   * says, not against someone who can write into the folder while it is served.)
   */
  root?: string | URL;
}

/**
 * Answers a `GET` or `HEAD` with the file at `path` as {@linkcode serveRanges} does (200,
 * 206, multipart 206, 416, 304, 412, `If-Range`), after a `Deno.stat` and a `Deno.open` that
 * is closed before the answer is made:
 *
 * - A missing path (or one through a file) gets 404, and so does anything but a regular
 *   file (a directory or a FIFO among them, which is never opened); one the process may not
 *   open to read gets 403. Other methods get 405 without touching the file system.
 * - `Last-Modified` is the file's modification time; `ETag` is made of its size and that
 *   time unless `etag` says otherwise; `Content-Type` comes from the extension through
 *   {@linkcode MEDIA_TYPES} unless `contentType` says otherwise.
 * - The body opens the file on its first read (so an answer never read holds no handle) and
 *   checks that it is still the file the answer describes (its inode, size and time): a file
 *   replaced or changed after the answer was made fails the body rather than send other
 *   bytes under the answer's `ETag` and length. Every range then reads that one handle,
 *   seeking to it and reading `chunkSize` bytes at a time as the client takes them (a file
 *   is never loaded whole), so a file renamed over or removed while the body is read (as
 *   deploys do) is sent whole as it was, as nginx does. A file rewritten in place fails the
 *   body rather than mixing two versions: each range checks it when it starts and again
 *   before its last chunk.
 * - The handle is closed when the body ends, fails, or is cancelled (the client went away);
 *   every engine reads or cancels the body of the response a handler returns. A body read in
 *   part and then dropped without a cancel keeps its handle until it is garbage-collected.
 *
 * Without `root`, the path is used as it is. A handler that maps URLs to files must give the
 * folder as `root` and the part of the URL as `path`: route parameters are percent-decoded,
 * so `/files/:name` matches `/files/..%2F..%2Fetc%2Fpasswd` with `name` =
 * `"../../etc/passwd"`, and `serveFile(request, dir + "/" + name)` would serve that file.
 *
 * @param request The request.
 * @param path The file; with `root`, a path relative to it.
 * @param options The folder to serve from, the validators, the media type, the range limit
 * and the read size.
 * @returns The answer.
 * @throws {Deno.errors.NotCapable} Without read permission for `path` (or `root`).
 * @throws {RangeError} When `maxRanges` or `chunkSize` is not an integer from 1.
 * @throws {TypeError} When `root` is given and is not a string or URL, or `path` is not a
 * string.
 *
 * @example A route that serves a video with seeking
 * ```ts ignore
 * import { serveFile } from "@wirestream/wirestream";
 *
 * Deno.serve((request) => serveFile(request, "./media/clip.mp4"));
 * ```
 *
 * @example Files of a folder by name, never outside it
 * ```ts
 * import { Application, serveFile } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const app = new Application().routing((r) => {
 *   r.get("/files/:name", (request, { params }) => serveFile(request, params.name!, { root: "./public" }));
 * });
 * const get = (path: string) => app.fetch(new Request(`http://localhost${path}`));
 * // params.name is "../../../etc/passwd", then "/etc/passwd": each refused with the 404 of a
 * // missing file, before any file is looked at.
 * assert.equal((await get("/files/..%2F..%2F..%2Fetc%2Fpasswd")).status, 404);
 * assert.equal((await get("/files/%2Fetc%2Fpasswd")).status, 404);
 * ```
 *
 * @example Methods other than GET and HEAD are refused before the file is looked at
 * ```ts
 * import { serveFile } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const response = await serveFile(new Request("http://localhost/", { method: "PUT" }), "./clip.mp4");
 * assert.equal(response.status, 405);
 * assert.equal(response.headers.get("allow"), "GET, HEAD");
 * ```
 */
export async function serveFile(
  request: Request,
  path: string | URL,
  options: ServeFileOptions = {},
): Promise<Response> {
  const chunkSize = checkLimit("chunkSize", options.chunkSize ?? 65_536, 1);
  if (chunkSize === Infinity) throw new RangeError("Invalid chunkSize: Infinity is not a size");
  const root = options.root;
  if (root !== undefined) {
    if (typeof root !== "string" && !(root instanceof URL)) {
      throw new TypeError("Invalid root: it is not a path or a file URL");
    }
    if (typeof path !== "string") {
      throw new TypeError("Cannot serve file: with root, the path is a string relative to it");
    }
  }
  const notAllowed = checkMethod(request);
  if (notAllowed !== null) return notAllowed;
  const notFound = () =>
    failure(request, 404, "Cannot serve file: not found", new Headers(options.headers));
  const name = path; // the media type follows the name asked for, not a link's target
  let info: Deno.FileInfo;
  try {
    if (root !== undefined) {
      const inside = await confine(root, path as string);
      if (inside === null) return notFound();
      path = inside;
    }
    // Stat first: opening a FIFO to read waits for a writer, so only a regular file is opened.
    if (!(await Deno.stat(path)).isFile) return notFound();
    // Then open it before answering: a stat passes for a file the process may not read, which
    // would get 200 and a body that fails. This handle only gives the info: the body opens
    // its own on its first read (see FileSource), so an answer never read holds nothing.
    using file = await Deno.open(path, { read: true });
    info = await file.stat();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return notFound();
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      return failure(request, 403, "Cannot serve file: no access", new Headers(options.headers));
    }
    throw error;
  }
  if (!info.isFile) return notFound(); // replaced by something else between the stat and the open
  const mtime = info.mtime?.getTime();
  const etag = options.etag === undefined
    ? mtime === undefined ? undefined : `"${info.size.toString(16)}-${mtime.toString(16)}"`
    : options.etag ?? undefined;
  const source = new FileSource(path, info);
  const response = serveRanges(request, {
    size: info.size,
    open: (range) => readRange(source, range, chunkSize),
    contentType: options.contentType ?? mediaTypeOf(name),
    etag,
    lastModified: info.mtime ?? undefined,
    ...(options.maxRanges === undefined ? {} : { maxRanges: options.maxRanges }),
    ...(options.headers === undefined ? {} : { headers: options.headers }),
  });
  // Only a 200 or 206 body reads the file: a 416's body is its message.
  const body = response.body;
  if (body === null || (response.status !== 200 && response.status !== 206)) return response;
  return new Response(closeWhenDone(body, source), response);
}

/**
 * The file of one answer's body: opened on the body's first read, checked to be the file the
 * answer describes (its inode, size and time), and then read by every range, so that a file
 * renamed over or removed midway does not cut the body. Closed once, by closeWhenDone.
 */
class FileSource {
  readonly path: string | URL;
  readonly info: Deno.FileInfo;
  #file: Deno.FsFile | null = null;
  #closed = false;

  constructor(path: string | URL, info: Deno.FileInfo) {
    this.path = path;
    this.info = info;
  }

  /**
   * The open file, checked now against the answer's (a file rewritten in place since moved
   * its size or time); the first call opens it. Ranges call it one after another.
   */
  async file(): Promise<Deno.FsFile> {
    if (this.#file !== null) {
      await checkSame(this.#file, this.info);
      return this.#file;
    }
    // Stat first, as serveFile does: a FIFO put in its place would hold the open (and a
    // cancel, which waits for it) until a writer came. (One swapped in between the stat and
    // the open still would, as in serveFile: Deno cannot open without blocking. Only someone
    // who may write into the served folder can do that.)
    const before = await Deno.stat(this.path);
    if (!before.isFile || changed(before, this.info)) throw changedError(this.info, before);
    const file = await Deno.open(this.path, { read: true });
    try {
      if (this.#closed) throw new Error("Cannot read file: the body was closed");
      await checkSame(file, this.info);
      if (this.#closed) throw new Error("Cannot read file: the body was closed");
    } catch (error) {
      file.close();
      throw error;
    }
    return this.#file = file;
  }

  /** Closes the file if it was opened; later calls do nothing. */
  close(): void {
    this.#closed = true;
    const file = this.#file;
    this.#file = null;
    file?.close();
  }
}

/**
 * Closes the files of bodies garbage-collected without being read to their end or cancelled (a
 * handler or middleware that read some of a response, then dropped it): a Deno.FsFile is not
 * closed by the collector.
 */
const dropped = new FinalizationRegistry<FileSource>((source) => source.close());

/**
 * `body`, which reads `source`, as a stream that closes `source` once `body` ended or failed,
 * once a cancel of `body` finished (so after any read under way), or when it was dropped.
 */
function closeWhenDone(
  body: ReadableStream<Uint8Array>,
  source: FileSource,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const token = {};
  let cancelling = false;
  const close = () => {
    dropped.unregister(token);
    source.close();
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        close();
        throw error;
      }
      if (result.done) {
        // A cancel settles the read under way as done at once, before the range's own read
        // of the file settled: the cancel closes the file when it finished.
        if (!cancelling) close();
        controller.close();
      } else {
        controller.enqueue(result.value);
      }
    },
    async cancel(reason) {
      cancelling = true;
      try {
        await reader.cancel(reason);
      } finally {
        close();
      }
    },
  }, { highWaterMark: 0 });
  dropped.register(stream, source, token);
  return stream;
}

/**
 * The real path of `path` inside `root`, or null when it is not a relative path that stays
 * there (an absolute one, a `..` segment, a backslash, NUL), cannot be resolved, or resolves
 * (through a symbolic link) outside the real path of `root`. Checked on the text first, so a
 * refused path touches nothing; only `root` itself failing to resolve throws.
 */
async function confine(root: string | URL, path: string): Promise<string | null> {
  if (
    path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\\") ||
    path.includes("\0") || path.split("/").includes("..")
  ) {
    return null;
  }
  const base = await Deno.realPath(root); // NotFound for a missing root: the caller's 404
  const separator = Deno.build.os === "windows" ? "\\" : "/";
  const prefix = base.endsWith(separator) ? base : base + separator;
  let real: string;
  try {
    real = await Deno.realPath(prefix + path);
  } catch (error) {
    // A target that cannot be resolved is missing, whatever the reason: a link to a folder
    // outside that the process may not read must not answer otherwise than a link to nothing.
    if (
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.FilesystemLoop
    ) {
      return null;
    }
    throw error;
  }
  return real.startsWith(prefix) ? real : null;
}

/** The media type of `path`'s extension. */
function mediaTypeOf(path: string | URL): string {
  const name = typeof path === "string" ? path : path.pathname;
  const match = /\.([^./\\]+)$/.exec(name);
  return (match && MEDIA_TYPES[match[1]!.toLowerCase()]) ?? "application/octet-stream";
}

/**
 * The bytes of `range` of `source`'s file, read from a seek: the file is checked against the
 * answer's when the range starts (by `source.file()`) and again before its last chunk. The
 * file stays open for the next range (see closeWhenDone); cancel waits for a read under way.
 */
function readRange(source: FileSource, range: ByteRange, chunkSize: number): RangeSource {
  let file: Deno.FsFile | null = null;
  let left = range.last - range.first + 1;
  let cancelled = false;
  let pending: Promise<void> | null = null;
  const step = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    if (file === null) {
      const opened = await source.file(); // checked: not rewritten since the answer
      await opened.seek(range.first, Deno.SeekMode.Start);
      file = opened;
      if (cancelled) return;
    }
    const buffer = new Uint8Array(Math.min(chunkSize, left));
    const read = await file.read(buffer); // a fresh buffer: the reader keeps each chunk
    if (cancelled) return;
    if (read === null) return controller.close(); // shorter: the body's count check reports it
    left -= read;
    if (left === 0) {
      // A file rewritten in place keeps its size, and reads after the first give the new
      // bytes: check it again before the last chunk goes out, so that a body that mixes two
      // versions fails instead of ending.
      await checkSame(file, source.info);
      if (cancelled) return;
      controller.enqueue(buffer.subarray(0, read));
      return controller.close();
    }
    controller.enqueue(buffer.subarray(0, read));
  };
  return new ReadableStream<Uint8Array>({
    pull: (controller) => (pending = step(controller)),
    async cancel() {
      cancelled = true;
      await pending?.catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** Fails when `file` is no longer the file `info` describes (see changed). */
async function checkSame(file: Deno.FsFile, info: Deno.FileInfo): Promise<void> {
  const now = await file.stat();
  if (changed(now, info)) throw changedError(info, now);
}

/** Whether the file is no longer the one `info` describes: its size, time or inode differ. */
function changed(now: Deno.FileInfo, info: Deno.FileInfo): boolean {
  return now.size !== info.size || now.mtime?.getTime() !== info.mtime?.getTime() ||
    now.ino !== info.ino || now.dev !== info.dev;
}

/** The error that fails a body whose file changed. */
function changedError(info: Deno.FileInfo, now: Deno.FileInfo): Error {
  return new Error(
    `Cannot read file: it changed while being served (${info.size} bytes, then ${now.size})`,
  );
}
