// Copyright 2026 the wirestream authors. MIT license.
// The README's first command: `deno task start` serves the demo. This runs the task's own
// command line from deno.json (with --port 0), checks the page, the figures and a ranged media
// request, and stops it with SIGTERM as a user would.
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task start serves the demo", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  assert.match(readme, /^npx -y deno@[0-9.]+ task start$/m, "the README's first command");
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const [deno, ...args] = (config.tasks.start as string).split(" ");
  assert.equal(deno, "deno");
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args, "--port", "0"],
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    const origin = await within(
      (async () => {
        while (true) {
          const { done, value } = await lines.read();
          if (done) throw new Error(`The demo exited before listening: ${JSON.stringify(text)}`);
          text += value;
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(text);
          if (match) return match[1]!;
        }
      })(),
      30_000,
      "the demo to listen",
    );
    const page = await fetch(`${origin}/`);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(await page.text(), /<title>wirestream demo<\/title>/);
    const stats = await (await fetch(`${origin}/stats`)).json();
    assert.match(stats.engine, /native/, "the native engine by default");
    const media = await fetch(`${origin}/media/tone.wav`, { headers: { range: "bytes=0-43" } });
    assert.equal(media.status, 206);
    assert.equal(new TextDecoder().decode((await media.bytes()).subarray(0, 4)), "RIFF");
  } finally {
    child.kill("SIGTERM");
    const status = await within(child.status, 10_000, "the demo to stop");
    await lines.cancel().catch(() => {});
    assert.ok(status.success, `the demo exited with ${JSON.stringify(status)}`);
  }
});
