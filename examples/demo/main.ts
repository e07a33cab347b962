// Copyright 2026 the wirestream authors. MIT license.
// The wirestream demo: one server showing the whole library. A chat (WebSocket broadcast
// between tabs, pings, presence), uploads streamed to disk with a progress bar and a size
// limit, a media file served with ranges (seek in it), and a live panel of sessions and
// messages per second.
//
//   deno run --allow-net --allow-read --allow-write=.demo examples/demo/main.ts \
//     [--engine native|wire] [--port 8000] [--hostname 127.0.0.1] [--data .demo] [--max-upload 67108864]
//     [--upload-quota 1073741824]
//
// (With --data DIR, grant --allow-write=DIR instead of .demo.)
//
// Uploads go to <data>/uploads: each file at most --max-upload bytes (64 MiB), all of them at
// most --upload-quota bytes (1 GiB); past the quota an upload is refused with 507.
//
// The native engine (Deno.serve) by default; --engine wire serves the same application with
// wirestream's own HTTP/1.1 and WebSocket codec. It prints `listening on http://HOST:PORT/`.

import { embeddedServer, NativeEngine, WireEngine } from "@wirestream/wirestream";
import { demo } from "./app.ts";

const args = parseArgs(Deno.args);
const { module } = await demo({
  dataDir: args.data,
  maxUpload: args.maxUpload,
  uploadQuota: args.uploadQuota,
  engine: args.engine === "wire" ? WireEngine.name : NativeEngine.name,
});
const options = {
  hostname: args.hostname,
  port: args.port,
  onListen: (addr: Deno.NetAddr) =>
    console.log(`listening on http://${addr.hostname}:${addr.port}/`),
};
// Both engines limit request bodies themselves (128 MiB by default). The demo's parser bounds
// what it reads (uploadLimit in all, checked against a Content-Length before any byte) and
// answers with its own JSON 413: the engines' limit is lifted so that it always answers.
const maxBodySize = Infinity;
const server = args.engine === "wire"
  ? embeddedServer(WireEngine, {
    ...options,
    configure: (config) => (config.maxBodySize = maxBodySize),
  }, module)
  : embeddedServer(NativeEngine, {
    ...options,
    configure: (config) => (config.maxBodySize = maxBodySize),
  }, module);
await server.start();
// A stop disposes the application first, which aborts the uploads in flight (see app.ts): the
// native engine waits for every response, so a stalled upload would otherwise hold it. A
// second signal exits at once, and so does a stop still running after STOP_LIMIT.
const STOP_LIMIT = 10_000;
let stopping = false;
const stop = () => {
  if (stopping) {
    console.log("stopping at once");
    Deno.exit(130);
  }
  stopping = true;
  console.log("stopping: sessions get 1001, requests in flight finish (again to exit at once)");
  const limit = setTimeout(() => {
    console.error(`the stop did not finish within ${STOP_LIMIT} ms: exiting anyway`);
    Deno.exit(1);
  }, STOP_LIMIT);
  server.stop().then(() => Deno.exit(0), (error) => {
    clearTimeout(limit);
    console.error("the stop failed:", error);
    Deno.exit(1);
  });
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);

function parseArgs(argv: string[]) {
  const options = {
    engine: "native",
    port: 8000,
    hostname: "127.0.0.1",
    data: ".demo",
    maxUpload: 64 * 1024 * 1024,
    uploadQuota: 1024 * 1024 * 1024,
  };
  if (argv[0] === "--") argv = argv.slice(1); // as some task runners pass them
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${name} needs a value`);
    switch (name) {
      case "--engine":
        if (value !== "native" && value !== "wire" && value !== "deno") {
          usage("--engine is native (or deno) or wire");
        }
        options.engine = value === "deno" ? "native" : value;
        break;
      case "--port":
        options.port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
        if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
          usage("--port is 0 to 65535");
        }
        break;
      case "--hostname":
        options.hostname = value;
        break;
      case "--data":
        options.data = value;
        break;
      case "--max-upload":
        options.maxUpload = Number(value);
        if (!Number.isSafeInteger(options.maxUpload) || options.maxUpload < 1) {
          usage("--max-upload is a positive number of bytes");
        }
        break;
      case "--upload-quota":
        options.uploadQuota = Number(value);
        if (!Number.isSafeInteger(options.uploadQuota) || options.uploadQuota < 0) {
          usage("--upload-quota is a number of bytes");
        }
        break;
      default:
        usage(`unknown option ${name}`);
    }
  }
  return options;
}

function usage(problem: string): never {
  console.error(
    `${problem}\nusage: deno run --allow-net --allow-read --allow-write=.demo examples/demo/main.ts ` +
      "[--engine native|wire] [--port N] [--hostname H] [--data DIR] [--max-upload BYTES] " +
      "[--upload-quota BYTES]",
  );
  Deno.exit(2);
}
