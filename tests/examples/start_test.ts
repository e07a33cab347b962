// Copyright 2026 the wirestream authors. MIT license.
// The README's first command: `deno task start` serves the demo. This runs the task's own
// command line from deno.json (with --port 0), checks the page, the figures and a ranged media
// request, and stops it with SIGTERM as a user would.
import assert from "node:assert/strict";
import { within } from "../_util/async.ts";
import { waitForOrigin } from "../_util/serve.ts";

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
  const listening = waitForOrigin(child.stdout);
  try {
    const { origin } = await listening;
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
    await (await listening.catch(() => null))?.drained;
    assert.ok(status.success, `the demo exited with ${JSON.stringify(status)}`);
  }
});
