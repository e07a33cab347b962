// Copyright 2026 the wirestream authors. MIT license.
// The server of bench/multipart_upload.ts, in its own process so that its RSS is its own:
//
//   deno run -A bench/_multipart/upload_server.ts <wire|deno> <parse|drain> <dir>
//
// parse: examples/upload.ts's handler (readFormData with each file streamed to disk by
// savePart); drain: the raw body streamed to one file, parsing nothing (the floor). Prints
// `listening on <port>` when ready.

import { httpServer } from "../../mod.ts";
import { uploadHandler } from "../../examples/upload.ts";

const [engine, mode, dir] = Deno.args;
if (dir === undefined) throw new Error("usage: upload_server.ts <wire|deno> <parse|drain> <dir>");

async function drain(request: Request): Promise<Response> {
  const file = await Deno.open(`${dir}/${crypto.randomUUID()}`, { write: true, createNew: true });
  let bytes = 0;
  const counted = request.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.length;
        controller.enqueue(chunk);
      },
    }),
  );
  await counted.pipeTo(file.writable);
  return Response.json({ bytes });
}

const handler = mode === "parse" ? uploadHandler(dir) : drain;
const onListen = (addr: Deno.NetAddr) => console.log(`listening on ${addr.port}`);
if (engine === "wire") {
  httpServer({
    hostname: "127.0.0.1",
    port: 0,
    maxBodySize: Infinity,
    bodyTimeout: 120_000,
    onListen,
  }, handler);
} else {
  Deno.serve({ hostname: "127.0.0.1", port: 0, onListen }, handler);
}
