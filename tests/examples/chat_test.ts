// Copyright 2026 the wirestream authors. MIT license.
// The demo's chat room under hostile members: a full room, one client filling it, a member
// that never reads, a burst of joins and leaves, a sender past its rate.
// The sessions are scripted stand-ins (the browser test drives real ones).
import type { CloseInfo, Message, MessageSession } from "@wirestream/wirestream";
import assert from "node:assert/strict";
import {
  ChatRoom,
  MAX_BACKLOG,
  MAX_DROPPED,
  MAX_MEMBERS,
  MAX_PER_ADDRESS,
  MESSAGE_BURST,
  PRESENCE_INTERVAL,
  utf8Length,
} from "../../examples/demo/chat.ts";
import { within } from "../_util/async.ts";

/**
 * A session whose incoming we push to; `reads` false makes every send hang, as a stuck peer,
 * and "slowly" resolves each send a timer's turn later, as a peer reading over a network.
 */
function scripted(reads: boolean | "slowly" | "gated" = true) {
  const held: (() => void)[] = [];
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
      if (reads === "slowly") return new Promise((resolve) => setTimeout(resolve, 0));
      if (reads === "gated") return new Promise((resolve) => held.push(() => resolve()));
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
  return {
    session,
    sent,
    closes,
    say: (text: string) => push.enqueue(JSON.stringify({ text })),
    /** For "gated": the sends made so far are written. */
    release: () => held.splice(0).forEach((written) => written()),
  };
}

/** A client address of its own for member `i`. */
function address(i: number): string {
  return `10.0.${i >> 8}.${i & 255}`;
}

/**
 * A room where `reader` (named `name`) sits with talkers that each say their burst of a
 * 2000-byte text: just past MAX_BACKLOG in all, each within its rate, so only the backlog
 * limit is at work ("é" is two bytes in UTF-8: the backlog is reached with half the characters
 * a UTF-16 count needs).
 */
function flood(reader: ReturnType<typeof scripted>, name: string) {
  const room = new ChatRoom();
  const text = "é".repeat(1000);
  const talkers = Array.from(
    { length: Math.ceil(MAX_BACKLOG / (2 * text.length * MESSAGE_BURST)) + 1 },
    () => scripted(),
  );
  const running = [
    ...talkers.map((talker, i) => room.join(talker.session, `talker${i}`, address(i))),
    room.join(reader.session, name, address(talkers.length)),
  ];
  for (const talker of talkers) for (let i = 0; i < MESSAGE_BURST; i++) talker.say(text);
  return { room, talkers, text, running };
}

Deno.test("the demo's ChatRoom", async (t) => {
  await t.step(`a member past ${MAX_MEMBERS} is refused with 1013`, async () => {
    const room = new ChatRoom();
    const members = Array.from({ length: MAX_MEMBERS }, () => scripted());
    const running = members.map((m, i) => room.join(m.session, `u${i}`, address(i)));
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(room.users.length, MAX_MEMBERS);
    const extra = scripted();
    await within(room.join(extra.session, "late", address(MAX_MEMBERS)), 1000, "the refusal");
    assert.deepEqual(extra.closes, [{ code: 1013, reason: "the room is full" }]);
    assert.equal(room.users.length, MAX_MEMBERS);
    for (const m of members) await m.session.close();
    await Promise.all(running);
    assert.equal(room.users.length, 0);
  });

  await t.step(
    "a member that never reads is sent no more past the backlog, and stays",
    async () => {
      const stuck = scripted(false);
      const { talkers, text, running } = flood(stuck, "stuck");
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Its session's write timeout ends such a reader; the room only stops adding to it.
      assert.deepEqual(stuck.closes, [], "the room does not close it");
      const held = stuck.sent.reduce((n, s) => n + utf8Length(s), 0);
      assert.ok(held <= MAX_BACKLOG, `${held} bytes held for the stuck member`);
      assert.ok(held > MAX_BACKLOG - 3 * text.length, `${held} bytes: the limit counts bytes`);
      for (const talker of talkers) {
        assert.deepEqual(talker.closes, [], "the others stay");
        const got = talker.sent.filter((s) => JSON.parse(s).type === "message").length;
        assert.equal(got, talkers.length * MESSAGE_BURST, "and get every message");
      }
      for (const m of [...talkers, stuck]) await m.session.close();
      await Promise.all(running);
    },
  );

  await t.step(
    `a client address past ${MAX_PER_ADDRESS} members is refused with 1013`,
    async () => {
      const room = new ChatRoom();
      const members = Array.from({ length: MAX_PER_ADDRESS }, () => scripted());
      const running = members.map((m, i) => room.join(m.session, `u${i}`, "192.0.2.1"));
      const extra = scripted();
      await within(room.join(extra.session, "one more", "192.0.2.1"), 1000, "the refusal");
      assert.deepEqual(extra.closes, [{
        code: 1013,
        reason: "too many sessions from this address",
      }]);
      const other = scripted(); // another address still gets in
      const joined = room.join(other.session, "other", "192.0.2.2");
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(room.users.length, MAX_PER_ADDRESS + 1);
      await members[0]!.session.close(); // a place from that address frees up
      await running[0];
      const again = scripted();
      const rejoined = room.join(again.session, "again", "192.0.2.1");
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.deepEqual(again.closes, []);
      for (const m of [...members.slice(1), other, again]) await m.session.close();
      await Promise.all([...running, joined, rejoined]);
      assert.equal(room.users.length, 0);
    },
  );

  await t.step("a burst of joins and leaves does not close a member that reads", async () => {
    // Each change sent the whole list to every member: 400 leaves sent an observer reading
    // over a network 400 lists of up to 400 names, past MAX_BACKLOG, and it was closed as
    // too slow. The lists are coalesced: one on its way, and the latest once it was written.
    const room = new ChatRoom();
    const observer = scripted("slowly");
    const watching = room.join(observer.session, "observer", address(1000));
    const name = "n".repeat(29); // and up to 3 digits: names of up to 32 characters
    const crowd = Array.from({ length: 400 }, () => scripted());
    const running = crowd.map((m, i) => room.join(m.session, `${name}${i}`, address(i)));
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (const m of crowd) await m.session.close();
    await Promise.all(running);
    await new Promise((resolve) => setTimeout(resolve, PRESENCE_INTERVAL + 50));
    assert.deepEqual(observer.closes, [], "the observer stays");
    const lists = observer.sent.map((s) => JSON.parse(s)).filter((e) => e.type === "presence");
    assert.ok(lists.length <= 4, `${lists.length} presence lists for 800 changes`);
    assert.deepEqual(lists.at(-1).users, ["observer"], "the last list is the room now");
    await observer.session.close();
    await watching;
  });

  await t.step(
    `presence lists go at most once per ${PRESENCE_INTERVAL} ms, the latest at the end`,
    async () => {
      // A fast reader: each list is written at once, so only the interval coalesces them.
      const room = new ChatRoom();
      const observer = scripted();
      const watching = room.join(observer.session, "observer", address(1000));
      const started = performance.now();
      for (let i = 0; i < 50; i++) {
        const churner = scripted();
        const joined = room.join(churner.session, `churn${i}`, "192.0.2.9");
        await new Promise((resolve) => setTimeout(resolve, 0));
        await churner.session.close();
        await joined;
      }
      const elapsed = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, PRESENCE_INTERVAL + 50));
      const lists = observer.sent.map((s) => JSON.parse(s)).filter((e) => e.type === "presence");
      const allowed = Math.ceil(elapsed / PRESENCE_INTERVAL) + 2;
      assert.ok(lists.length <= allowed, `${lists.length} lists for 100 changes in ${elapsed} ms`);
      assert.deepEqual(lists.at(-1).users, ["observer"], "the last list is the room now");
      await observer.session.close();
      await watching;
    },
  );

  await t.step(
    "a member that reads too slowly misses what passes its backlog, is told so, and stays",
    async () => {
      const slow = scripted("gated"); // its sends are written when the test says
      const { talkers, running } = flood(slow, "slow");
      await new Promise((resolve) => setTimeout(resolve, 10));
      slow.release(); // it catches up
      await new Promise((resolve) => setTimeout(resolve, 10));
      slow.release(); // and reads what came then
      assert.deepEqual(slow.closes, []);
      const events = slow.sent.map((s) => JSON.parse(s));
      const got = events.filter((e) => e.type === "message").length;
      const told = events.filter((e) => e.type === "error");
      assert.ok(got < talkers.length * MESSAGE_BURST, `${got} messages: some were dropped`);
      assert.equal(told.length, 1, JSON.stringify(told));
      const missed = Number(/^(\d+) messages were not sent to you/.exec(told[0].message)?.[1]);
      assert.equal(got + missed, talkers.length * MESSAGE_BURST, "what it got and what it missed");
      for (const m of [...talkers, slow]) await m.session.close();
      await Promise.all(running);
    },
  );

  await t.step(
    "a presence list that did not fit a member's backlog goes once it caught up, and is no missed message",
    async () => {
      const room = new ChatRoom();
      const slow = scripted("gated");
      const running = [room.join(slow.session, "slow", address(0))];
      const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
      let released = 0; // bytes written: the backlog is what was sent since
      const held = () => slow.sent.reduce((n, s) => n + utf8Length(s), 0) - released;
      // Talkers first, and the presence lists of their joins sent: then fill its backlog to
      // the byte, with full messages and one of the size that is left.
      const all = Array.from({ length: 12 }, () => scripted());
      all.forEach((m, i) => running.push(room.join(m.session, `t${i}`, address(i + 1))));
      await new Promise((resolve) => setTimeout(resolve, PRESENCE_INTERVAL + 50));
      // Those lists are written (twice: a list that went stale is sent again once the one on
      // its way was written), so that none is on its way when the next one is due.
      for (let i = 0; i < 2; i++) {
        slow.release();
        await tick();
      }
      released = slow.sent.reduce((n, s) => n + utf8Length(s), 0);
      let next = 0, said = 0;
      const say = async (text: string) => {
        all[next]!.say(text);
        if (++said % MESSAGE_BURST === 0) next++;
        await tick();
      };
      while (MAX_BACKLOG - held() > 8000) await say("€".repeat(2000));
      const overhead = () =>
        utf8Length(JSON.stringify({ type: "message", from: `t${next}`, text: "", at: Date.now() }));
      while (MAX_BACKLOG - held() - overhead() > 2000) await say("x".repeat(2000));
      await say("x".repeat(MAX_BACKLOG - held() - overhead()));
      assert.equal(held(), MAX_BACKLOG, "its backlog is full");
      const late = scripted(); // a presence change
      running.push(room.join(late.session, "late", address(100)));
      await tick();
      late.say("hi"); // and a message it misses
      // The list of that change went (or failed to go) within an interval: all while full.
      await new Promise((resolve) => setTimeout(resolve, 2 * PRESENCE_INTERVAL + 50));
      slow.release();
      await tick();
      slow.release();
      const events = slow.sent.map((s) => JSON.parse(s));
      const lists = events.filter((e) => e.type === "presence");
      assert.ok(lists.at(-1).users.includes("late"), "the list came once it caught up");
      const told = events.filter((e) => e.type === "error").map((e) => e.message);
      assert.deepEqual(told, ["1 messages were not sent to you: this connection reads too slowly"]);
      for (const m of [...all, late, slow]) await m.session.close();
      await Promise.all(running);
    },
  );

  await t.step("malformed messages take from the rate too: a loop of them is closed", async () => {
    const room = new ChatRoom();
    const sender = scripted();
    const running = room.join(sender.session, "sender", address(0));
    for (let i = 0; i < MESSAGE_BURST + MAX_DROPPED + 10; i++) sender.say(""); // not 1 to 2000
    await within(sender.session.closed, 5000, "the sender to be closed");
    assert.deepEqual(sender.closes, [{ code: 1008, reason: "sending too fast" }]);
    await running;
  });

  await t.step(`a sender past its burst gets errors, then 1008 after ${MAX_DROPPED}`, async () => {
    const room = new ChatRoom();
    const sender = scripted(), reader = scripted();
    const running = [
      room.join(sender.session, "sender", address(0)),
      room.join(reader.session, "reader", address(1)),
    ];
    for (let i = 0; i < MESSAGE_BURST + MAX_DROPPED + 10; i++) sender.say(`m${i}`);
    await within(sender.session.closed, 5000, "the sender to be closed");
    assert.deepEqual(sender.closes, [{ code: 1008, reason: "sending too fast" }]);
    const errors = sender.sent.filter((s) => JSON.parse(s).type === "error");
    assert.equal(errors.length, MAX_DROPPED - 1);
    const got = reader.sent.filter((s) => JSON.parse(s).type === "message");
    assert.equal(got.length, MESSAGE_BURST, "only the burst reaches the room");
    assert.deepEqual(reader.closes, []);
    await reader.session.close();
    await Promise.all(running);
  });
});

Deno.test("utf8Length", () => {
  for (const text of ["", "abc", "é", "€uro", "😀", "a\ud800b", "\udc00", "\ud800", "x😀é€"]) {
    assert.equal(utf8Length(text), new TextEncoder().encode(text).length, JSON.stringify(text));
  }
});
