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
import { ChatRoom } from "./chat.ts";
import { writeTone } from "./media.ts";
import { PAGE, SCRIPT } from "./page.ts";

/** Options of {@linkcode demo}. */
/** The most files one upload may hold. */
export const MAX_FILES = 16;

/**
 * The largest upload body: `MAX_FILES` files of `maxUpload` bytes and 1 MiB for the form's
 * heads. The upload's parser holds the body to it (from its Content-Length, before reading
 * a byte, when it has one) with the demo's own JSON 413; the engines' `maxBodySize` is lifted
 * so that they leave that answer to it.
 */
export function uploadLimit(maxUpload: number): number {
  return Math.min(MAX_FILES * maxUpload + 1024 * 1024, Number.MAX_SAFE_INTEGER);
}

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
  /** The engine's name, shown on the page. */
  engine: string;
}

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
  let storedBytes = await directorySize(uploadsDir);
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
          new Response(SCRIPT, { headers: { "content-type": "text/javascript; charset=utf-8" } }),
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
        counted(async (session) => {
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

  /**
   * Streams each file of a multipart upload to disk; answers what was saved, as JSON. `signal`
   * (the application's, which a stop aborts) ends an upload in flight, even a stalled one.
   */
  async function upload(request: Request, signal: AbortSignal): Promise<Response> {
    const saved: { name: string; size: number; stored: string }[] = [];
    try {
      signal.throwIfAborted();
      if (request.body === null) throw new HttpError(400, "The upload has no body");
      // The body through a pipe that the signal breaks: the parser's pending read ends with
      // the signal's reason, whether it waits for a part or inside one.
      const body = request.body.pipeThrough(new TransformStream(), { signal });
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
          throw error;
        }
        uploads++;
        uploadedBytes += size;
        saved.push({ name: event.filename, size, stored });
      }
    } catch (error) {
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
        ? `Upload refused: the upload quota of ${options.uploadQuota} bytes is full`
        : error.message;
      // The rest of the body is never read: the connection closes rather than take it all
      // (the body was piped, so the engine would count it as read, and drain it whole).
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
  return new Response(text, { headers: { "content-type": "text/html; charset=utf-8" } });
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

/** The bytes of the files in `dir` (not its subdirectories, which the demo never makes). */
async function directorySize(dir: string): Promise<number> {
  let size = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) size += (await Deno.stat(`${dir}/${entry.name}`)).size;
  }
  return size;
}

/** A short, safe extension from an uploaded file's name (the name itself is not trusted). */
function extension(filename: string): string {
  const match = /\.([A-Za-z0-9]{1,8})$/.exec(filename);
  return match ? `.${match[1]!.toLowerCase()}` : "";
}
