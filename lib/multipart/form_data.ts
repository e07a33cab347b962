// Copyright 2026 the wirestream authors. MIT license.
/**
 * Collecting a `multipart/form-data` body (RFC 7578) into a `FormData`, under limits.
 *
 * @module
 */

import { checkLimit } from "../_options.ts";
import { HttpError } from "../http/error.ts";
import { readLimited } from "./_bytes.ts";
import { quote } from "./_params.ts";
import {
  abortMultipart,
  type MultipartEvent,
  type MultipartPart,
  parseMultipart,
  type ParseMultipartOptions,
} from "./parser.ts";

/** Options of {@linkcode readFormData}: the parser's limits, and what may be kept in memory. */
export interface ReadFormDataOptions extends ParseMultipartOptions {
  /**
   * The largest file kept in memory as a `File`, in bytes (413 above it). Files handed to
   * `onFile` are not counted.
   *
   * @default {1048576}
   */
  maxFileSize?: number;
  /**
   * The most bytes kept in memory over all fields and files together (413 above it): their
   * values, names, file names and types, and the strings `onFile` returns, each character
   * counted as a byte.
   *
   * @default {16777216}
   */
  maxBufferedSize?: number;
  /**
   * Takes each file part (a part with a `filename`) instead of keeping it in memory: stream
   * its body somewhere (see `savePart`) and return the entry's value, such as the path it was
   * saved to; or return null or undefined to leave the file out. A body it does not read is
   * skipped. A body it took a reader on is waited for when it returns, until it was read to
   * its end or cancelled, whatever it returned (it may be saving the
   * file in the background): one that read a file's first bytes to check them and leaves the
   * file out cancels its reader (`reader.cancel()`), or the form waits forever. What it
   * stored stays when a later part fails the read (a limit, a malformed body):
   * `readFormData` then throws without the entries, so keep track of what it saved
   * and remove that in your `catch` (`examples/upload.ts` does).
   */
  onFile?: (
    part: MultipartPart,
  ) => string | Blob | null | undefined | Promise<string | Blob | null | undefined>;
}

const utf8 = new TextDecoder(); // U+FFFD for bad bytes, as Request.formData() does

/**
 * Reads a `multipart/form-data` body into a `FormData`, as `Request.formData()` does, but
 * streaming and bounded: fields become strings (UTF-8), files become `File`s of up to
 * `maxFileSize` bytes (type `application/octet-stream` when the part has none), or whatever
 * `onFile` makes of them; in all, at most `maxBufferedSize` bytes are held, besides the
 * parser's own limits. Names and file names that are not valid UTF-8 keep one character per
 * byte (see `MultipartHead.name`), where `Request.formData()` puts U+FFFD in them. Every part
 * must be `form-data` (RFC 7578 §4.2): a part whose `Content-Disposition` is another type
 * (`attachment`, `inline`) is a 400, as undici has it (busboy leaves such a part out).
 *
 * @param input A request, or the events of {@linkcode parseMultipart}.
 * @param options The limits, and `onFile`.
 * @returns The entries, in the body's order.
 * @throws {HttpError} 400 for a malformed body, or a part that is not `form-data` or has no
 * `name` (RFC 7578 §4.2),
 * 413 over a limit, and as {@linkcode parseMultipart} for the request's headers. An error,
 * one thrown by `onFile` included (even while it holds a reader on the part's body), errors
 * that body, cancels the rest of the body and releases the source.
 *
 * @example Reading a form, with the files kept small
 * ```ts
 * import { readFormData } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const form = new FormData();
 * form.append("title", "Hello");
 * form.append("avatar", new File(["PNG…"], "me.png", { type: "image/png" }));
 * const request = new Request("http://localhost/", { method: "POST", body: form });
 *
 * const data = await readFormData(request, { maxFileSize: 65_536 });
 * assert.equal(data.get("title"), "Hello");
 * const avatar = data.get("avatar") as File;
 * assert.deepEqual([avatar.name, avatar.type, await avatar.text()], ["me.png", "image/png", "PNG…"]);
 * ```
 *
 * @example Handing files to a callback instead of memory
 * ```ts
 * import { readFormData } from "@wirestream/wirestream";
 * import assert from "node:assert/strict";
 *
 * const form = new FormData();
 * form.append("upload", new File([new Uint8Array(5_000_000)], "big.bin"));
 * const request = new Request("http://localhost/", { method: "POST", body: form });
 *
 * const data = await readFormData(request, {
 *   async onFile(part) {
 *     let size = 0;
 *     for await (const chunk of part.body) size += chunk.length; // or savePart(part, path)
 *     return `${part.filename}: ${size} bytes`;
 *   },
 * });
 * assert.equal(data.get("upload"), "big.bin: 5000000 bytes");
 * ```
 */
export async function readFormData(
  input: Request | ReadableStream<MultipartEvent>,
  options: ReadFormDataOptions = {},
): Promise<FormData> {
  const maxFileSize = checkLimit("maxFileSize", options.maxFileSize ?? 1_048_576);
  const maxBufferedSize = checkLimit("maxBufferedSize", options.maxBufferedSize ?? 16_777_216);
  const events = input instanceof Request ? parseMultipart(input, options) : input;
  const form = new FormData();
  try {
    await collect(events, form, options, maxFileSize, maxBufferedSize);
  } catch (error) {
    // Not a cancel of the events (which lets a body being read finish, and onFile may hold a
    // reader on it that nobody will release): abort the parse, so the source goes.
    await abortMultipart(events, error);
    throw error;
  }
  return form;
}

/** Reads the events into `form`: the loop of {@linkcode readFormData}. */
async function collect(
  events: ReadableStream<MultipartEvent>,
  form: FormData,
  options: ReadFormDataOptions,
  maxFileSize: number,
  maxBufferedSize: number,
): Promise<void> {
  let buffered = 0;
  const overBuffered = () =>
    `Cannot read form data: fields and files exceed maxBufferedSize of ${maxBufferedSize} bytes`;
  for await (const event of events.values({ preventCancel: true })) { // readFormData aborts
    if (event.type !== "part") continue;
    const { name, filename } = event;
    const type = event.headers.get("content-disposition")?.split(";", 1)[0]?.trim();
    if (type !== undefined && type.toLowerCase() !== "form-data") {
      throw new HttpError(
        400,
        `Cannot read form data: a part's Content-Disposition is not form-data (RFC 7578 §4.2)`,
      );
    }
    if (name === null) {
      throw new HttpError(400, "Cannot read form data: a part has no name (RFC 7578 §4.2)");
    }
    // The form keeps the names too (and a file's name and type): they count, as the values
    // do. Uncounted, 990 fields with long names held 5.6 MB where 990 bytes were counted.
    buffered += name.length + (filename?.length ?? 0) + (event.contentType?.length ?? 0);
    if (buffered > maxBufferedSize) throw new HttpError(413, overBuffered());
    if (filename === null) {
      const value = await readLimited(event.body, maxBufferedSize - buffered, overBuffered);
      buffered += value.length;
      form.append(name, utf8.decode(value));
    } else if (options.onFile !== undefined) {
      const value = await options.onFile(event);
      if (typeof value === "string") {
        if ((buffered += value.length) > maxBufferedSize) throw new HttpError(413, overBuffered());
        form.append(name, value);
      } else if (value !== null && value !== undefined) {
        form.append(name, value, value instanceof File ? value.name : filename);
      }
    } else {
      const budget = maxBufferedSize - buffered;
      const value = await readLimited(
        event.body,
        Math.min(maxFileSize, budget),
        () =>
          maxFileSize <= budget
            ? `Cannot read form data: file ${
              quote(filename)
            } exceeds maxFileSize of ${maxFileSize} bytes`
            : overBuffered(),
      );
      buffered += value.length;
      const type = event.contentType || "application/octet-stream"; // none, or empty
      form.append(name, new File([value as Uint8Array<ArrayBuffer>], filename, { type }));
    }
  }
}
