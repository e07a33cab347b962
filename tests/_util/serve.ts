// Copyright 2026 the wirestream authors. MIT license.
// `deno serve` as a child process: where it listens, and what it printed.

/**
 * Reads `deno serve`'s stderr to its end: `port` resolves once it announces the address (or
 * rejects when it ends first), `text` with all it printed.
 */
export function watchServe(
  stderr: ReadableStream<Uint8Array>,
): { port: Promise<number>; text: Promise<string> } {
  let found!: (port: number) => void;
  let failed!: (error: Error) => void;
  const port = new Promise<number>((resolve, reject) => {
    found = resolve;
    failed = reject;
  });
  const text = (async () => {
    let text = "";
    for await (const chunk of stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const match = /Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (match) found(Number(match[1]));
    }
    failed(new Error(`deno serve exited before listening: ${JSON.stringify(text)}`));
    return text;
  })();
  return { port, text };
}
