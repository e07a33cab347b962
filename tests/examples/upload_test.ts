// Copyright 2026 the wirestream authors. MIT license.
// Runs examples/upload.ts as its own process with exactly the permissions its header gives, on
// each engine, and uploads a form to it with fetch. tests/multipart/upload_test.ts runs the
// handler in process with every permission, which hid that the header's flags had become too
// few when savePart began to check for an existing path.
import assert from "node:assert/strict";
import { waitForOrigin } from "../_util/serve.ts";

const ROOT = new URL("../../", import.meta.url);

/** The permission flags of the `deno run` command in the example's header. */
async function headerFlags(): Promise<string[]> {
  const source = await Deno.readTextFile(new URL("examples/upload.ts", ROOT));
  const match = /^\/\/ +deno run (.*?) examples\/upload\.ts/m.exec(source);
  assert.ok(match, "the header has a deno run command");
  const flags = match[1]!.split(/\s+/);
  assert.ok(flags.every((flag) => flag.startsWith("--allow-")), flags.join(" "));
  return flags;
}

Deno.test("examples/upload.ts with its header's permissions", async (t) => {
  const flags = await headerFlags();
  for (const engine of ["wire", "deno"]) {
    await t.step(`saves an uploaded file on the ${engine} engine`, async () => {
      const dir = await Deno.makeTempDir();
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          ...flags,
          "examples/upload.ts",
          "--port",
          "0",
          "--engine",
          engine,
          "--dir",
          dir,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      let stdoutDrained: Promise<void> | undefined;
      try {
        const { origin, drained } = await waitForOrigin(child.stdout);
        stdoutDrained = drained;
        const form = new FormData();
        form.append("title", "hello");
        const content = "x".repeat(100_000);
        form.append("file", new File([content], "notes.txt", { type: "text/plain" }));
        const response = await fetch(`${origin}/`, { method: "POST", body: form });
        const body = await response.text();
        assert.equal(response.status, 200, body);
        const result = JSON.parse(body);
        assert.deepEqual(result.fields, [["title", "hello"]]);
        assert.equal(result.files.length, 1);
        const [file] = result.files;
        assert.deepEqual([file.field, file.filename, file.size], ["file", "notes.txt", 100_000]);
        assert.equal(await Deno.readTextFile(file.path), content);
        assert.deepEqual(
          [...Deno.readDirSync(dir)].map((entry) => entry.name),
          [file.path.slice(dir.length + 1)],
          "the saved file alone: no temporary file left",
        );
        // A browser's upload from a page of another site writes nothing.
        for (const site of ["cross-site", "same-site"]) {
          const refused = await fetch(`${origin}/`, {
            method: "POST",
            body: form,
            headers: { "sec-fetch-site": site },
          });
          await refused.body?.cancel();
          assert.equal(refused.status, 403, site);
        }
        assert.equal([...Deno.readDirSync(dir)].length, 1, "nothing more was saved");
      } finally {
        child.kill("SIGTERM");
        await child.status;
        await (stdoutDrained ?? child.stdout.cancel().catch(() => {}));
        const errors = await stderr;
        assert.doesNotMatch(errors, /NotCapable|Requires .* access/, errors);
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});
