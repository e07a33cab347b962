// Copyright 2026 the wirestream authors. MIT license.
// The handler that bench/http_load.ts puts behind the wire engine and Deno.serve (node_http.mjs
// answers the same requests the node:http way): GET / says hello, POST /echo streams the
// request body back, POST /drain reads the whole body and answers its byte count.

/** Answers the three benchmark routes; anything else is a 404. */
export async function handler(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (request.method === "GET" && path === "/") return new Response("Hello, World!");
  if (request.method === "POST" && path === "/echo") {
    return new Response(request.body, {
      headers: { "content-type": "application/octet-stream" },
    });
  }
  if (request.method === "POST" && path === "/drain") {
    let size = 0;
    if (request.body !== null) {
      for await (const chunk of request.body) size += chunk.length;
    }
    return new Response(String(size));
  }
  return new Response("Not Found", { status: 404 });
}

/** The port from the first argument: 0 (the default) picks a free one. */
export function portArgument(): number {
  const port = Number(Deno.args[0] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port: ${JSON.stringify(Deno.args[0])}`);
  }
  return port;
}
