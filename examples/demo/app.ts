// Copyright 2026 the wirestream authors. MIT license.
// The demo application: a chat (WebSocket broadcast with presence and pings), uploads streamed
// to disk (multipart, with limits), a media file served with ranges, and a live panel of
// sessions and messages per second. The same module runs on both engines (see main.ts).

import {
  type Application,
  HttpError,
  type MessageSession,
  parseMultipart,
  savePart,
  serveFile,
  type WebSocketRouteContext,
  WebSockets,
} from "@wirestream/wirestream";
import { otherOriginBySecFetch } from "../_site.ts";
import { ChatRoom, MAX_PER_ADDRESS } from "./chat.ts";
import { writeTone } from "./media.ts";
import { PAGE, SCRIPT } from "./page.ts";

/** The most files one upload may hold. */
export const MAX_FILES = 16;
/**
 * The most live-panel sessions at once (1013 past it); from one client address, at most
 * `MAX_PER_ADDRESS`, as in the chat.
 */
export const MAX_LIVE = 200;

/**
 * The largest upload body: `MAX_FILES` files of `maxUpload` bytes and 1 MiB for the form's
 * heads. The engines' `maxBodySize` (main.ts) and the upload's parser hold the body to it: a
 * body over it without a Content-Length gets the demo's own JSON 413, one declared over it
 * the engine's 413.
 */
export function uploadLimit(maxUpload: number): number {
  return Math.min(MAX_FILES * maxUpload + 1024 * 1024, Number.MAX_SAFE_INTEGER);
}

/** Options of {@linkcode demo}. */
export interface DemoOptions {
  /** Where uploads and the media file go; created if missing. */
  dataDir: string;
  /** The largest file accepted by the upload page, in bytes. */
  maxUpload: number;
  /**
   * The most bytes the upload directory may hold, over all its files: a file that would pass
   * it is refused with 507 Insufficient Storage, and nothing of it stays on disk. The files
   * there at the start count, and the uploads as they are written (files removed by hand
   * while the demo runs count until it restarts).
   */
  uploadQuota: number;
  /**
   * The most files the upload directory may hold (507 past it): the quota counts bytes, and
   * empty or tiny files would otherwise take inodes and disk blocks without limit.
   *
   * @default {10000}
   */
  maxStoredFiles?: number;
  /**
   * How long an upload may send nothing, in milliseconds, before it is refused with 408 and
   * its file removed: the native engine (`Deno.serve`) has no such timeout of its own, and a
   * stalled upload holds a socket and an open file. (On the native engine only the file is
   * released: Deno keeps the connection to read the rest of the body, see `NativeEngine`.)
   *
   * @default {30000}
   */
  uploadIdle?: number;
  /** The engine's name, shown on the page. */
  engine: string;
}

/** Headers of the page: no sniffing, no framing, nothing from elsewhere. */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "x-content-type-options": "nosniff",
  "content-security-policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** What the live panel shows. */
export interface DemoStats {
  engine: string;
  /** Open WebSocket sessions: chat and live panel. */
  sessions: number;
  /** Who is in the chat. */
  users: string[];
  /** Chat messages in the last second. */
  messagesPerSecond: number;
  /** Chat messages since the start. */
  messages: number;
  /** Files saved, and their bytes. */
  uploads: number;
  uploadedBytes: number;
  /** Media responses by status: 200 (whole file) and 206 (ranges). */
  media: { whole: number; ranges: number };
}

/** The demo as an application module, with its live figures. */
export async function demo(options: DemoOptions): Promise<{
  module: (app: Application) => void;
  stats: () => DemoStats;
}> {
  const uploadsDir = `${options.dataDir}/uploads`;
  const mediaPath = `${options.dataDir}/tone.wav`;
  await Deno.mkdir(uploadsDir, { recursive: true });
  await writeTone(mediaPath);
  // The bytes in the upload directory, counted as they are written, so that uploads running
  // at once cannot pass the quota together.
  await removeLeftovers(uploadsDir);
  let { bytes: storedBytes, files: storedFiles } = await directorySize(uploadsDir);
  const maxStoredFiles = options.maxStoredFiles ?? 10_000;
  const uploadIdle = options.uploadIdle ?? 30_000;
  /** Live-panel sessions per client address. */
  const live = new Map<string, number>();
  let liveSessions = 0;
  const room = new ChatRoom();
  let sessions = 0;
  let uploads = 0, uploadedBytes = 0;
  const media = { whole: 0, ranges: 0 };
  // Messages per second: the count a second ago, sampled each second.
  let lastCount = 0, perSecond = 0;
  const sampler = setInterval(() => {
    perSecond = room.messages - lastCount;
    lastCount = room.messages;
  }, 1000);
  Deno.unrefTimer(sampler);

  const stats = (): DemoStats => ({
    engine: options.engine,
    sessions,
    users: room.users,
    messagesPerSecond: perSecond,
    messages: room.messages,
    uploads,
    uploadedBytes,
    media: { ...media },
  });

  /** Counts a WebSocket session while `run` has it. */
  const counted =
    (run: (session: MessageSession, context: WebSocketRouteContext) => Promise<void>) =>
    async (session: MessageSession, context: WebSocketRouteContext) => {
      sessions++;
      try {
        await run(session, context);
      } finally {
        sessions--;
      }
    };

  const module = (app: Application) => {
    // Pings every 20 s: a client that stops answering is closed after 10 s more, with 1011 on
    // the wire engine (on the native one this is Deno's idleTimeout of 30 s: it pings after 15 s
    // of silence and closes with its own 1001 after 15 s more).
    app.install(WebSockets, { pingInterval: 20_000, timeout: 10_000, maxMessageSize: 64 * 1024 });
    app.routing((r) => {
      r.get("/", () => html(PAGE));
      r.get(
        "/app.js",
        () =>
          new Response(SCRIPT, {
            headers: {
              "content-type": "text/javascript; charset=utf-8",
              "x-content-type-options": "nosniff",
            },
          }),
      );
      r.get("/stats", () => Response.json(stats()));
      r.webSocket(
        "/ws/chat",
        counted((session, { url, remoteAddr }) =>
          room.join(session, url.searchParams.get("name"), remoteAddr?.hostname ?? "")
        ),
      );
      r.webSocket(
        "/ws/live",
        counted(async (session, { remoteAddr }) => {
          // Bounded as the chat is: in all, and per client address.
          const address = remoteAddr?.hostname ?? "";
          const from = live.get(address) ?? 0;
          if (liveSessions >= MAX_LIVE || from >= MAX_PER_ADDRESS) {
            await session.close(1013, "too many live panels").catch(() => {});
            return;
          }
          live.set(address, from + 1);
          liveSessions++;
          try {
            await showLive(session);
          } finally {
            liveSessions--;
            const left = live.get(address)! - 1;
            if (left === 0) live.delete(address);
            else live.set(address, left);
          }
        }),
      );
      r.post("/upload", (request) => upload(request, app.signal));
      r.get("/media/tone.wav", async (request) => {
        const response = await serveFile(request, mediaPath, { contentType: "audio/wav" });
        if (response.status === 206) media.ranges++;
        else if (response.status === 200) media.whole++;
        return response;
      });
    });
  };

  /** Sends the live figures to the panel each second until it goes away. */
  async function showLive(session: MessageSession): Promise<void> {
    // What the page sends is read and dropped: a session that never reads its incoming
    // messages would not see the page's close behind them (on the wire engine, whose
    // sessions stop reading once 64 KiB wait unread).
    (async () => {
      for await (const _ of session.incoming);
    })().catch(() => {});
    // A snapshot a second until the page goes away.
    while (!session.signal.aborted) {
      await session.send(JSON.stringify(stats()));
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          session.signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, 1000);
        session.signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /**
   * Streams each file of a multipart upload to disk; answers what was saved, as JSON. `signal`
   * (the application's, which a stop aborts) ends an upload in flight, even a stalled one.
   */
  async function upload(request: Request, signal: AbortSignal): Promise<Response> {
    const saved: { name: string; size: number; stored: string }[] = [];
    // An upload that sends nothing for uploadIdle ms is refused (408): see DemoOptions.
    const idle = new AbortController();
    try {
      signal.throwIfAborted();
      if (crossSite(request)) {
        // A page elsewhere may not write files here through a visitor's browser.
        return Response.json({ error: "Upload refused: from another site", saved }, {
          status: 403,
          headers: { connection: "close" },
        });
      }
      if (request.body === null) throw new HttpError(400, "The upload has no body");
      // Each read of the client's bytes may wait at most uploadIdle: only that wait counts,
      // not the time the parser or the disk take between reads.
      const source = request.body.getReader();
      const watched = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const timer = setTimeout(() =>
            idle.abort(
              new HttpError(408, `Upload refused: it sent nothing for ${uploadIdle / 1000} s`),
            ), uploadIdle);
          try {
            const { done, value } = await source.read();
            if (done) controller.close();
            else controller.enqueue(value);
          } finally {
            clearTimeout(timer);
          }
        },
        cancel: (reason) => source.cancel(reason),
      }, { highWaterMark: 0 });
      // Through a pipe that the signal (or the idle timer) breaks: the parser's pending read
      // ends with its reason, whether it waits for a part or inside one.
      const body = watched.pipeThrough(new TransformStream(), {
        signal: AbortSignal.any([signal, idle.signal]),
      });
      const events = parseMultipart(
        new Request(request.url, {
          method: "POST",
          headers: request.headers,
          body,
          duplex: "half",
        } as RequestInit),
        {
          maxPartSize: options.maxUpload,
          maxTotalSize: uploadLimit(options.maxUpload),
          maxParts: MAX_FILES,
        },
      );
      for await (const event of events) {
        if (event.type !== "part") continue;
        if (event.filename === null) {
          await event.body.cancel(); // the form has no fields worth keeping
          continue;
        }
        if (storedFiles >= maxStoredFiles) {
          throw new HttpError(507, `The upload directory holds ${maxStoredFiles} files`);
        }
        storedFiles++; // taken now, so that uploads at once cannot pass it together
        const stored = `${crypto.randomUUID()}${extension(event.filename)}`;
        let counted = 0;
        const quota = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            if (storedBytes + chunk.length > options.uploadQuota) {
              throw new HttpError(507, "The upload directory is full");
            }
            storedBytes += chunk.length;
            counted += chunk.length;
            controller.enqueue(chunk);
          },
        });
        let size: number;
        try {
          const body = event.body.pipeThrough(quota);
          size = await savePart({ body }, `${uploadsDir}/${stored}`, { createNew: true, signal });
        } catch (error) {
          storedBytes -= counted; // savePart removed the partial file
          storedFiles--;
          throw error;
        }
        uploads++;
        uploadedBytes += size;
        saved.push({ name: event.filename, size, stored });
      }
    } catch (caught) {
      // A stalled upload: its 408, however the read that the idle timer broke reported it.
      const error = idle.signal.aborted && idle.signal.reason instanceof HttpError
        ? idle.signal.reason
        : caught;
      if (signal.aborted) {
        // A stop ended it: what was saved stays, the rest is gone (savePart removed it).
        return Response.json({ error: "The server is stopping", saved }, {
          status: 503,
          headers: { connection: "close" }, // the rest of the body is never read
        });
      }
      if (cutOff(error)) {
        // The client went away mid-upload (Deno.serve's read fails so): nobody reads this.
        return Response.json({ error: "The upload was cut off", saved }, { status: 400 });
      }
      if (!(error instanceof HttpError)) throw error;
      // 507, not 413, past the quota: the request is within the limits, the server cannot
      // store it now (RFC 4918 §11.5), and a smaller file may still fit.
      const message = error.status === 413
        ? tooLarge(error.message, options.maxUpload)
        : error.status === 507
        ? (error.message.includes("files")
          ? `Upload refused: the upload directory holds its most files (${maxStoredFiles})`
          : `Upload refused: the upload quota of ${options.uploadQuota} bytes is full`)
        : error.message;
      // The rest of the body is not wanted: the wire engine closes the connection rather than
      // take it all (the body was piped, so it would count it as read, and drain it whole);
      // Deno reads it to its end first, whatever the response says (see NativeEngine).
      return Response.json({ error: message, saved }, {
        status: error.status,
        headers: { connection: "close" },
      });
    }
    if (saved.length === 0) {
      return Response.json({ error: "No file in the upload", saved }, { status: 400 });
    }
    return Response.json({ saved });
  }

  return { module, stats };
}

/**
 * Whether a request comes from a page of another origin. A browser says so itself in
 * `Sec-Fetch-Site` (all current ones send it): only "same-origin" and "none" (typed or
 * bookmarked) may upload, so a page on another port of the same host ("same-site") may not.
 * A client without it but with an `Origin` (an older browser) is judged by host name, and by
 * port when the Host names one: behind a proxy that ends TLS, the Host ("example.com") says
 * nothing of the scheme the page came with, so a default port cannot be compared there (a
 * proxy must pass the Host it was sent: nginx, proxy_set_header Host $host). Clients that send
 * neither (curl) are not browsers carrying a visitor's ambient access.
 */
function crossSite(request: Request): boolean {
  const said = otherOriginBySecFetch(request);
  if (said !== null) return said;
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  try {
    const from = new URL(origin), to = new URL(request.url);
    const hostPort = portInHost(request.headers.get("host") ?? to.host);
    return from.hostname !== to.hostname || (hostPort !== "" && hostPort !== portOf(from));
  } catch {
    return true; // "null" (a sandboxed page), or not a URL
  }
}

/**
 * The port a Host field names, "" when none: as written, a default one too (a URL drops
 * ":80" from "127.0.0.1:80", which then read as "no port" let any local port's page in).
 */
function portInHost(host: string): string {
  const colon = host.lastIndexOf(":");
  return colon === -1 || host.lastIndexOf("]") > colon ? "" : host.slice(colon + 1);
}

/** The port of an http(s) URL, its scheme's default when none is written. */
function portOf(url: URL): string {
  return url.port !== "" ? url.port : url.protocol === "https:" ? "443" : "80";
}

/** Whether `error` is a read of a request body whose client went away (on `Deno.serve`). */
function cutOff(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset;
}

/** What a 413 says, by the limit the parser names in `why`. */
function tooLarge(why: string, maxUpload: number): string {
  if (why.includes("maxParts")) return `Upload refused: at most ${MAX_FILES} files at once`;
  if (why.includes("maxTotalSize")) {
    return `Upload refused: an upload is limited to ${uploadLimit(maxUpload)} bytes in all`;
  }
  return `Upload refused: each file is limited to ${maxUpload} bytes`;
}

function html(text: string): Response {
  return new Response(text, { headers: PAGE_HEADERS });
}

/**
 * Removes the temporary files (`.<UUID>.savepart`) of saves that never finished, as when the
 * demo was killed during an upload: they would count against the quota forever.
 */
async function removeLeftovers(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^\..+\.savepart$/.test(entry.name)) {
      await Deno.remove(`${dir}/${entry.name}`);
    }
  }
}

/** The files in `dir` and their bytes (not its subdirectories, which the demo never makes). */
async function directorySize(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    files++;
    bytes += (await Deno.stat(`${dir}/${entry.name}`)).size;
  }
  return { files, bytes };
}

/** A short, safe extension from an uploaded file's name (the name itself is not trusted). */
function extension(filename: string): string {
  const match = /\.([A-Za-z0-9]{1,8})$/.exec(filename);
  return match ? `.${match[1]!.toLowerCase()}` : "";
}
