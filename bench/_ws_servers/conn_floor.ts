// Copyright 2026 the wirestream authors. MIT license.
// The floor for an engine that does its I/O through Deno's ops, as the wire engine does: a bare
// Deno.listen echo that reads a connection straight into one buffer, decodes with our
// FrameDecoder, encodes with our FrameEncoder and writes, one read and one write per message,
// with no HTTP engine, no session and no streams: two ops and two awaits per message. Each
// message is copied out of the read buffer, as a session hands it to the application, and the
// encoder builds frames of 2 to 16 KiB (header and payload together, up to 16380 payload
// bytes when a block is free) in pooled buffers given back once written, as the wire engine's
// sessions do (lib/_slab.ts). Not a server
// to use (no limits, no timeouts, no close handshake beyond answering one); a measure of what
// Deno's op-based sockets cost, which no engine written in JavaScript on them can undercut.
// Usage: deno run --allow-net=127.0.0.1 bench/_ws_servers/conn_floor.ts [port]; prints
// `listening <port>` once bound to 127.0.0.1.

import { acceptKey, Frame, FrameDecoder, FrameEncoder, Opcode } from "../../mod.ts";
import { encoderSlab } from "../../lib/websocket/encoder.ts";
import { portArgument } from "../_http_servers/_handler.ts";

const listener = Deno.listen({ hostname: "127.0.0.1", port: portArgument() });
console.log(`listening ${listener.addr.port}`);
for await (const conn of listener) serve(conn).catch(() => conn.close());

async function serve(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buffer = new Uint8Array(65_536);
  let have = 0;
  let end = -1;
  const latin1 = new TextDecoder("latin1"); // one character per byte: indexes are offsets
  while (end === -1) {
    if (have === buffer.length) return conn.close(); // a head of 64 KiB: not a client of ours
    const n = await conn.read(buffer.subarray(have));
    if (n === null) return conn.close();
    have += n;
    end = latin1.decode(buffer.subarray(0, have)).indexOf("\r\n\r\n");
  }
  const head = latin1.decode(buffer.subarray(0, end));
  const key = /\r\nsec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)/i.exec(head)?.[1] ?? "";
  await writeAll(
    conn,
    new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
        `sec-websocket-accept: ${await acceptKey(key)}\r\n\r\n`,
    ),
  );
  const decoder = new FrameDecoder({ role: "server", maxFrameSize: 16 << 20 });
  const encoder = new FrameEncoder({ role: "server" });
  const slab = encoderSlab(encoder);
  slab.lending = true; // each chunk is given back once written (below)
  const frames: Frame[] = [];
  const out: Uint8Array[] = [];
  const frameSink = { enqueue: (frame: Frame) => frames.push(frame) };
  const byteSink = { enqueue: (chunk: Uint8Array) => out.push(chunk) };
  let chunk: Uint8Array | null = buffer.slice(end + 4, have);
  for (;;) {
    if (chunk === null) {
      const n = await conn.read(buffer);
      if (n === null) return conn.close();
      chunk = buffer.subarray(0, n);
    }
    decoder.push(chunk, frameSink);
    chunk = null;
    let closing = false;
    for (const frame of frames) {
      if (frame.opcode === Opcode.Close) closing = true;
      // A copy: the payload may be a view of the read buffer, which the next read reuses.
      const payload = frame.payload.slice();
      if (frame.opcode === Opcode.Ping) encoder.encode(Frame.pong(payload), byteSink);
      else if (frame.opcode !== Opcode.Pong) {
        encoder.encode(new Frame(frame.opcode, payload, frame.fin), byteSink);
      }
    }
    frames.length = 0;
    for (const bytes of out) {
      await writeAll(conn, bytes);
      slab.giveBack(bytes);
    }
    out.length = 0;
    if (closing) return conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}
