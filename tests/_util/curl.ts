// Copyright 2026 the wirestream authors. MIT license.
// curl as an HTTP client for the engines' tests: run it, and read what `curl -i --raw` printed
// with our own response reader.

import { ResponseReader, textOf, type WireResponse } from "./http.ts";

/** Runs curl with `args` (silent, errors shown, 10 s at most); stdout is bytes, stderr text. */
export async function curl(
  ...args: string[]
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command("curl", {
    args: ["--silent", "--show-error", "--max-time", "10", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout, stderr: textOf(stderr) };
}

/**
 * Parses what `curl -i --raw` printed: the responses as they came over the wire (at most
 * `most` of them), for requests of `method`.
 */
export async function parseCurl(
  stdout: Uint8Array,
  method = "GET",
  most = 4,
): Promise<WireResponse[]> {
  const reader = new ResponseReader(ReadableStream.from([stdout]));
  const responses: WireResponse[] = [];
  for (let i = 0; i < most; i++) {
    const response = await reader.next(method);
    if (response === null) break;
    responses.push(response);
  }
  return responses;
}
