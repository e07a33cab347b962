// Copyright 2026 the wirestream authors. MIT license.
// The demo in a real browser: headless Chromium from Debian's packages (/usr/bin/chromium),
// driven by npm:playwright-core, against examples/demo/main.ts on each engine. Two tabs chat,
// a file upload lands on disk intact, an upload over the limit gets a clear refusal, one past
// the upload quota a 507 and a clear refusal, the media element seeks (with a range request),
// the live panel counts, and a tab keeps only the last 200 chat messages. A screenshot of each
// run goes to .out/demo-<engine>.png.
//
//   deno task test:browser          (CHROMIUM=/path/to/chromium to use another binary)
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { randomBytes, sameBytes, seeded } from "../_util/random.ts";
import { startDemo } from "../_util/serve.ts";

const ROOT = new URL("../../", import.meta.url);
const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const MiB = 1024 * 1024;
const MAX_UPLOAD = 4 * MiB;
// Room for the first upload (3 MiB) and all that the one over MAX_UPLOAD writes before its 413.
const UPLOAD_QUOTA = 8 * MiB;

/** Opens the page as `name` and waits for the chat's welcome. */
async function openAs(page: Page, origin: string, name: string): Promise<void> {
  await page.goto(`${origin}/?name=${name}`);
  await page.waitForSelector("body[data-chat=ready]", { timeout: 10_000 });
  assert.equal(await page.textContent("#me"), name);
}

Deno.test({
  name: "the demo in Chromium",
  // playwright-core keeps its connection to the browser in timers and pipes of its own.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu"],
    });
    await Deno.mkdir(new URL(".out/", ROOT), { recursive: true });
    try {
      for (const engine of ["native", "wire"]) {
        await t.step(`on the ${engine} engine`, async (t) => {
          const dataDir = await Deno.makeTempDir({ prefix: "wirestream_demo_" });
          const demo = await startDemo(engine, dataDir, {
            maxUpload: MAX_UPLOAD,
            uploadQuota: UPLOAD_QUOTA,
          });
          const context = await browser.newContext();
          const alice = await context.newPage();
          const bob = await context.newPage();
          try {
            await openAs(alice, demo.origin, "alice");
            await openAs(bob, demo.origin, "bob");

            await t.step("two tabs chat, with presence", async () => {
              // Page-side code is given as strings: it runs in the browser, typed by its DOM.
              await alice.waitForFunction(
                `document.querySelector("#users")?.textContent === "alice, bob"`,
              );
              await alice.fill("#text", "hello from alice");
              await alice.click("#send");
              await bob.waitForSelector("#messages li:has-text('hello from alice')");
              await bob.fill("#text", "hi alice");
              await bob.press("#text", "Enter");
              await alice.waitForSelector("#messages li:has-text('hi alice')");
              const seen = await alice.$$eval(
                "#messages li",
                (items) => items.map((li) => li.textContent),
              );
              assert.deepEqual(seen, ["alicehello from alice", "bobhi alice"]);
            });

            await t.step("an upload lands on disk intact", async () => {
              const bytes = randomBytes(seeded(engine.length), 3 * 1024 * 1024 + 123);
              const local = `${dataDir}/to-upload.bin`;
              await Deno.writeFile(local, bytes);
              await alice.setInputFiles("#file", local);
              await alice.click("#upload-button");
              await alice.waitForSelector("#upload-status[data-state=done]", { timeout: 30_000 });
              const status = (await alice.textContent("#upload-status"))!;
              const stored = /as ([0-9a-f-]+\.bin)$/.exec(status)?.[1];
              assert.ok(stored, status);
              assert.match(status, new RegExp(`saved to-upload\\.bin \\(${bytes.length} bytes\\)`));
              assert.ok(sameBytes(await Deno.readFile(`${dataDir}/uploads/${stored}`), bytes));
              assert.equal(await alice.getAttribute("#progress", "value"), "1");
            });

            await t.step("an upload over the limit is refused with a clear message", async () => {
              const local = `${dataDir}/too-big.bin`;
              await Deno.writeFile(local, new Uint8Array(MAX_UPLOAD + 1));
              await alice.setInputFiles("#file", local);
              await alice.click("#upload-button");
              await alice.waitForSelector("#upload-status[data-state=refused]", {
                timeout: 30_000,
              });
              assert.match(
                (await alice.textContent("#upload-status"))!,
                new RegExp(`each file is limited to ${MAX_UPLOAD} bytes`),
              );
              const uploads = [...Deno.readDirSync(`${dataDir}/uploads`)];
              assert.equal(uploads.length, 1, "nothing of the refused file stays on disk");
            });

            await t.step(
              "an upload past the quota is refused with 507; a smaller one fits",
              async () => {
                /** Uploads `size` bytes; gives the answer's status and what the page says. */
                const send = async (name: string, size: number) => {
                  const local = `${dataDir}/${name}`;
                  await Deno.writeFile(local, new Uint8Array(size));
                  await alice.setInputFiles("#file", local);
                  // The page keeps the last upload's state until the next answer: clear it.
                  await alice.evaluate(
                    `document.querySelector("#upload-status").removeAttribute("data-state")`,
                  );
                  const answer = alice.waitForResponse("**/upload", { timeout: 30_000 });
                  await alice.click("#upload-button");
                  const status = (await answer).status();
                  await alice.waitForSelector("#upload-status[data-state]", { timeout: 30_000 });
                  return { status, text: (await alice.textContent("#upload-status"))! };
                };
                const uploads = () => [...Deno.readDirSync(`${dataDir}/uploads`)].length;
                // 3 MiB + 123 bytes are taken: 4 MiB more fit in the 8 MiB, 2 MiB after them not.
                assert.equal((await send("fits.bin", MAX_UPLOAD)).status, 200);
                const refused = await send("past-quota.bin", 2 * MiB);
                assert.equal(refused.status, 507);
                assert.match(
                  refused.text,
                  new RegExp(`upload quota of ${UPLOAD_QUOTA} bytes is full`),
                );
                assert.equal(await alice.getAttribute("#upload-status", "data-state"), "refused");
                assert.equal(uploads(), 2, "nothing of the refused file stays on disk");
                const small = await send("small.bin", MiB / 2);
                assert.equal(small.status, 200, small.text);
                assert.match(small.text, /saved small\.bin \(524288 bytes\)/);
                assert.equal(uploads(), 3);
              },
            );

            await t.step("the media element seeks, with a range request", async () => {
              const stats = async () => (await (await fetch(`${demo.origin}/stats`)).json());
              const before = (await stats()).media.ranges;
              const position: { time: number; duration: number } = await alice.evaluate(
                `(async () => {
                const player = document.querySelector("#player");
                if (player.readyState < 1) {
                  await new Promise((resolve) => (player.onloadedmetadata = resolve));
                }
                const seeked = new Promise((resolve) => (player.onseeked = resolve));
                player.currentTime = 500;
                await seeked;
                return { time: player.currentTime, duration: player.duration };
              })()`,
              );
              assert.ok(Math.abs(position.time - 500) < 1, JSON.stringify(position));
              assert.ok(Math.abs(position.duration - 600) < 1, JSON.stringify(position));
              const after = (await stats()).media.ranges;
              assert.ok(
                after > before,
                `range requests: ${before} before the seek, ${after} after`,
              );
            });

            await t.step("the live panel counts sessions and messages", async () => {
              await alice.waitForFunction(
                `Number(document.querySelector("#live-messages")?.textContent) === 2`,
                undefined,
                { timeout: 5000 },
              );
              // Two chat sessions and two live panels.
              const sessions = Number(await alice.textContent("#live-sessions"));
              assert.equal(sessions, 4);
              assert.match((await alice.textContent("#engine"))!, new RegExp(engine));
              await alice.screenshot({
                path: new URL(`.out/demo-${engine}.png`, ROOT).pathname,
                fullPage: true,
              });
            });

            await t.step("a tab keeps only the last 200 messages", async () => {
              // 11 members each send their burst of 20 (the rate limit's allowance at once):
              // with the 2 above, 222 messages reach alice's tab, which must keep the last 200.
              const wsOrigin = demo.origin.replace(/^http/, "ws");
              for (let s = 0; s < 11; s++) {
                const socket = new WebSocket(`${wsOrigin}/ws/chat?name=s${s}`);
                const welcomed = Promise.withResolvers<void>();
                socket.onmessage = (event) => {
                  if (JSON.parse(event.data).type === "welcome") welcomed.resolve();
                };
                socket.onerror = () => welcomed.reject(new Error(`s${s} failed`));
                await welcomed.promise;
                for (let i = 0; i < 20; i++) socket.send(JSON.stringify({ text: `m${s}.${i}` }));
                const closed = new Promise((resolve) => (socket.onclose = resolve));
                // Sent before the close: the server reads them first.
                socket.close();
                await closed;
              }
              await alice.waitForSelector("#messages li:has-text('m10.19')", { timeout: 10_000 });
              const seen = await alice.$$eval(
                "#messages li",
                (items) => items.map((li) => li.textContent),
              );
              assert.equal(seen.length, 200);
              // 222 sent: the first 22 (the two above and s0's 20) are gone.
              assert.equal(seen[0], "s1m1.0");
              assert.equal(seen[199], "s10m10.19");
            });
          } finally {
            await context.close();
            await demo.stop();
            await Deno.remove(dataDir, { recursive: true });
          }
        });
      }
    } finally {
      await browser.close();
    }
  },
});
