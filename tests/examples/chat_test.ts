// Copyright 2026 the wirestream authors. MIT license.
// The demo's chat room under hostile members: a full room, and a member that never reads.
// The sessions are scripted stand-ins (the browser test drives real ones).
import type { CloseInfo, Message, MessageSession } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import { ChatRoom, MAX_BACKLOG, MAX_MEMBERS } from "../../examples/demo/chat.ts";
import { within } from "../_util/async.ts";

/** A session whose incoming we push to; `reads` false makes every send hang, as a stuck peer. */
function scripted(reads = true) {
  let push!: ReadableStreamDefaultController<Message>;
  let resolveClosed!: (info: CloseInfo) => void;
  const closed = new Promise<CloseInfo>((resolve) => (resolveClosed = resolve));
  const sent: string[] = [];
  const closes: { code: number; reason: string }[] = [];
  const controller = new AbortController();
  const session = {
    incoming: new ReadableStream<Message>({ start: (c) => void (push = c) }),
    outgoing: new WritableStream<Message>(),
    protocol: "",
    role: "server",
    closed,
    signal: controller.signal,
    send(message: Message): Promise<void> {
      sent.push(String(message));
      return reads ? Promise.resolve() : new Promise(() => {});
    },
    close(code = 1000, reason = ""): Promise<CloseInfo> {
      if (closes.length === 0) {
        closes.push({ code, reason });
        try {
          push.close();
        } catch {
          // Closed already.
        }
        controller.abort();
        resolveClosed({ code, reason, wasClean: true });
      }
      return closed;
    },
  } as unknown as MessageSession;
  return { session, sent, closes, say: (text: string) => push.enqueue(JSON.stringify({ text })) };
}

Deno.test("the demo's ChatRoom", async (t) => {
  await t.step(`a member past ${MAX_MEMBERS} is refused with 1013`, async () => {
    const room = new ChatRoom();
    const members = Array.from({ length: MAX_MEMBERS }, () => scripted());
    const running = members.map((m, i) => room.join(m.session, `u${i}`));
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(room.users.length, MAX_MEMBERS);
    const extra = scripted();
    await within(room.join(extra.session, "late"), 1000, "the refusal");
    assert.deepEqual(extra.closes, [{ code: 1013, reason: "the room is full" }]);
    assert.equal(room.users.length, MAX_MEMBERS);
    for (const m of members) await m.session.close();
    await Promise.all(running);
    assert.equal(room.users.length, 0);
  });

  await t.step("a member that never reads is closed with 1008 past the backlog", async () => {
    const room = new ChatRoom();
    const talker = scripted(), stuck = scripted(false);
    const running = [room.join(talker.session, "talker"), room.join(stuck.session, "stuck")];
    const text = "x".repeat(1000);
    const needed = Math.ceil(MAX_BACKLOG / text.length) + 2; // each broadcast is a bit longer
    for (let i = 0; i < needed; i++) talker.say(text);
    await within(stuck.session.closed, 5000, "the stuck member to be closed");
    assert.deepEqual(stuck.closes, [{ code: 1008, reason: "too slow to read the room" }]);
    const held = stuck.sent.reduce((n, s) => n + s.length, 0);
    assert.ok(held <= MAX_BACKLOG, `${held} bytes held for the stuck member`);
    assert.deepEqual(talker.closes, [], "the others stay");
    await talker.session.close();
    await Promise.all(running);
  });
});
