// Copyright 2026 the wirestream authors. MIT license.
// The wirestream demo: one server showing the whole library. A chat (WebSocket broadcast
// between tabs, pings, presence), uploads streamed to disk with a progress bar and a size
// limit, a media file served with ranges (seek in it), and a live panel of sessions and
// messages per second.
//
//   deno run --allow-net --allow-read --allow-write=.demo examples/demo/main.ts \
//     [--engine native|wire] [--port 8000] [--hostname 127.0.0.1] [--data .demo] [--max-upload 67108864]
//     [--upload-quota 1073741824] [--max-files 10000] [--upload-idle 30000]
//
// (With --data DIR, grant --allow-write=DIR instead of .demo.)
//
// Uploads go to <data>/uploads: each file at most --max-upload bytes (64 MiB), all of them at
// most --upload-quota bytes (1 GiB) and --max-files files; past either an upload is refused
// with 507. An upload that sends nothing for --upload-idle ms is refused with 408. Files stay
// until removed by hand: one client may fill the quota for everyone.
//
// It is a demo for a machine of your own (examples/deploy.ts is the one for Deno Deploy). On
// the open internet, know that: every client behind one proxy or NAT shares the chat's cap per
// address, and an IPv6 client has many addresses; any Host is served, so a page that rebinds
// its DNS name to 127.0.0.1 reaches a demo on your machine as a same-origin page would (it may
// chat and upload within the limits above); the native engine has no timeouts or connection
// limit of its own (put a proxy in front of it, or use --engine wire). The task grants read
// access to the whole file system; --allow-read=. --allow-net=127.0.0.1 is enough.
//
// The native engine (Deno.serve) by default; --engine wire serves the same application with
// wirestream's own HTTP/1.1 and WebSocket codec. It prints `listening on http://HOST:PORT/`.

import { embeddedServer, NativeEngine, WireEngine } from "@wirestream/wirestream";
import { demo, uploadLimit } from "./app.ts";

const args = parseArgs(Deno.args);
const { module } = await demo({
  dataDir: args.data,
  maxUpload: args.maxUpload,
  uploadQuota: args.uploadQuota,
  maxStoredFiles: args.maxFiles,
  uploadIdle: args.uploadIdle,
  engine: args.engine === "wire" ? WireEngine.name : NativeEngine.name,
});
const options = {
  hostname: args.hostname,
  port: args.port,
  onListen: (addr: Deno.NetAddr) =>
    console.log(`listening on http://${addr.hostname}:${addr.port}/`),
};
// Both engines limit request bodies themselves (128 MiB by default): here to the largest
// upload. Past it (from a Content-Length) the engine answers 413 before the application sees
// the request (plain text: the page says "too large" for a 413 it cannot read). Lifted, the
// native engine read a body sent to any other route whole to keep its connection.
const maxBodySize = uploadLimit(args.maxUpload);
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
    maxFiles: 10_000,
    uploadIdle: 30_000,
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
        options.maxUpload = integer(value, 1, "--max-upload is a positive number of bytes");
        break;
      case "--upload-quota":
        options.uploadQuota = integer(value, 0, "--upload-quota is a number of bytes");
        break;
      case "--max-files":
        options.maxFiles = integer(value, 0, "--max-files is a number of files");
        break;
      case "--upload-idle":
        options.uploadIdle = integer(
          value,
          1,
          "--upload-idle is a number of milliseconds from 1",
          2 ** 31 - 1,
        );
        break;
      default:
        usage(`unknown option ${name}`);
    }
  }
  return options;
}

/** `value` as an integer from `min` to `max`, or the usage with `problem`. */
function integer(value: string, min: number, problem: string, max = Number.MAX_SAFE_INTEGER) {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < min || number > max) usage(problem);
  return number;
}

function usage(problem: string): never {
  console.error(
    `${problem}\nusage: deno run --allow-net --allow-read --allow-write=.demo examples/demo/main.ts ` +
      "[--engine native|wire] [--port N] [--hostname H] [--data DIR] [--max-upload BYTES] " +
      "[--upload-quota BYTES] [--max-files N] [--upload-idle MS]",
  );
  Deno.exit(2);
}
