// Copyright 2026 the wirestream authors. MIT license.
// An upload server: POST a multipart/form-data body (curl -F, a browser form, fetch with a
// FormData body) and each file is streamed to disk as it arrives, whatever its size, while the
// fields are read into memory under limits. The answer is JSON: the fields, and for each file
// its field name, filename, type, size and where it was saved. A failed upload (truncated,
// malformed, over a limit) gets its 400 or 413 and leaves no file behind.
//
//   deno run --allow-net --allow-read --allow-write examples/upload.ts [--port 8000] [--engine wire|native] [--dir ./uploads]
//
// It prints `listening on http://127.0.0.1:<port>/` when ready; --port 0 picks a free port.
//
// For a machine of your own: nothing bounds the directory's size or the number of uploads,
// and the answer says where each file was saved (the path you gave with --dir). A browser's
// upload from a page of another site (Sec-Fetch-Site cross-site or same-site) is refused with
// 403, so a page you visit cannot fill your disk through it. With --engine native a client
// that stops sending mid-upload holds its connection and a temporary file for as long as it
// stays connected (Deno.serve has no body timeout); the wire engine answers 408 after 30 s.
//
//   curl -F title=hello -F file=@photo.jpg http://127.0.0.1:8000/

import {
  HttpError,
  type ParseMultipartOptions,
  readFormData,
  savePart,
} from "@wirestream/wirestream";
import { option, serveFromArgs } from "./_cli.ts";
import { otherOriginBySecFetch } from "./_site.ts";

/** A file the server saved. */
export interface SavedFile {
  field: string;
  filename: string;
  type: string | null;
  size: number;
  path: string;
}

/** What the server answers. */
export interface UploadResult {
  fields: [string, string][];
  files: SavedFile[];
}

/** The limits of the example: files up to 4 GiB each, 8 GiB in all. */
export const LIMITS: ParseMultipartOptions = {
  maxPartSize: 4 * 2 ** 30,
  maxTotalSize: 8 * 2 ** 30,
};

/** A fetch handler that saves uploaded files under `dir` (which must exist). */
export function uploadHandler(
  dir: string,
  limits: ParseMultipartOptions = LIMITS,
): (request: Request) => Promise<Response> {
  return async (request) => {
    if (request.method !== "POST") {
      return new Response("POST a multipart/form-data body\n", {
        status: 405,
        headers: { allow: "POST" },
      });
    }
    if (otherOriginBySecFetch(request) === true) {
      return new Response("uploads from another site are refused\n", {
        status: 403,
        headers: { connection: "close" },
      });
    }
    const files: SavedFile[] = [];
    try {
      const form = await readFormData(request, {
        ...limits,
        async onFile(part) {
          const path = `${dir}/${crypto.randomUUID()}`;
          const size = await savePart(part, path, { createNew: true });
          files.push({
            field: part.name!,
            filename: part.filename!,
            type: part.contentType,
            size,
            path,
          });
          return path;
        },
      });
      const saved = new Set(files.map((file) => file.path));
      const fields: [string, string][] = [];
      for (const [name, value] of form) {
        if (typeof value === "string" && !saved.has(value)) fields.push([name, value]);
      }
      return Response.json({ fields, files } satisfies UploadResult);
    } catch (error) {
      // The upload failed: the files saved before the failure go too.
      await Promise.all(files.map((file) => Deno.remove(file.path).catch(() => {})));
      if (error instanceof HttpError) return error.toResponse();
      if (
        error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset
      ) {
        // The client went away mid-upload (Deno.serve's read fails so): nobody reads this,
        // and the log gets no stack for it.
        return new Response("the upload was cut off\n", { status: 400 });
      }
      throw error;
    }
  };
}

if (import.meta.main) {
  const dir = option(Deno.args, "--dir", "./uploads");
  await Deno.mkdir(dir, { recursive: true });
  // The uploads' own limits (maxTotalSize) bound the body; either engine's default (128 MiB)
  // would not let a large upload reach them.
  serveFromArgs(Deno.args, uploadHandler(dir), { maxBodySize: Infinity });
}
