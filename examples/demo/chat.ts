// Copyright 2026 the wirestream authors. MIT license.
// The demo's chat: a room that broadcasts every message to every session, with presence (who
// is here), a rate limit per sender, a cap per client address, and a bound on what a slow
// client may hold up (past it, what it cannot take is dropped for it).

import { CloseCode, type MessageSession } from "@wirestream/wirestream";

/** What the room sends: JSON text messages of these shapes. */
export type ChatEvent =
  | { type: "welcome"; name: string }
  | { type: "presence"; users: string[] }
  | { type: "message"; from: string; text: string; at: number }
  | { type: "error"; message: string };

/** The longest chat message accepted, in characters. */
export const MAX_TEXT = 2000;
/** The most members at once; a session past it is closed with 1013 (try again later). */
export const MAX_MEMBERS = 500;
/**
 * The most members from one client address (1013 past it): one client opening sessions in a
 * loop would otherwise fill the room for everyone else. Behind a reverse proxy every client
 * has the proxy's address: take the client's from the proxy's header there instead.
 */
export const MAX_PER_ADDRESS = 16;
/**
 * Bytes one session may have waiting to be written. Past it, what the room sends that member
 * is dropped (it is told how much once it caught up), rather than closing it: senders within
 * their rate could otherwise get a reader that reads as fast as it can closed as too slow. A
 * reader that reads nothing at all is ended by its session's write timeout.
 */
export const MAX_BACKLOG = 1024 * 1024;
/**
 * Chat messages a member may send per second, on average (a token bucket refilled at this
 * rate). A message is written once per member, so this bounds what one sender makes the room
 * write; one client address may hold MAX_PER_ADDRESS members, each with a rate of its own.
 */
export const MESSAGE_RATE = 5;
/** Chat messages a member may send at once before {@linkcode MESSAGE_RATE} applies. */
export const MESSAGE_BURST = 20;
/**
 * Messages past the rate that a member may send in a row (each dropped with an `error`)
 * before it is closed with 1008: a person typing never gets there, a loop soon does.
 */
export const MAX_DROPPED = 20;
/**
 * The presence list goes to the members at most once per this many milliseconds: the first
 * change after a quiet spell at once, the changes within it together at its end. Each list
 * goes to every member, so a client joining and leaving in a loop would otherwise make the
 * room write a list per member per change.
 */
export const PRESENCE_INTERVAL = 500;
const NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;
const IDLE = 0, SENDING = 1, STALE = 2;

interface Member {
  name: string;
  session: MessageSession;
  /** The client's address (its host), for MAX_PER_ADDRESS. */
  address: string;
  /**
   * The presence list sent to it: IDLE when none is on its way, SENDING while one is, STALE
   * when the room changed meanwhile (the list goes again once that one was written). So a
   * burst of joins and leaves costs a member one list or two, not one per change: with
   * hundreds of members the lists alone would pass MAX_BACKLOG, and a member who reads as
   * fast as it can would be closed as too slow.
   */
  presence: typeof IDLE | typeof SENDING | typeof STALE;
  /** Bytes sent and not yet written. */
  backlog: number;
  /** Chat messages not sent to it for its backlog, since it was last told. */
  missed: number;
  /** A presence list was not sent to it for its backlog: it goes once it caught up. */
  owesPresence: boolean;
  /** Messages it may send now (the token bucket), and when it was last refilled. */
  tokens: number;
  refilled: number;
  /** Messages dropped in a row for passing the rate. */
  dropped: number;
}

/** A chat room: sessions join it, and what one says goes to all. */
export class ChatRoom {
  readonly #members = new Set<Member>();
  /** Members per client address. */
  readonly #addresses = new Map<string, number>();
  /** A presence list is held back until this timer ends (see PRESENCE_INTERVAL). */
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  /** The room changed while the timer ran. */
  #presenceDue = false;
  /** The presence event of the members now, made once per change (see Member.presence). */
  #presence: { text: string; size: number } | null = null;
  #messages = 0;
  #guests = 0;

  /** Chat messages broadcast since the start. */
  get messages(): number {
    return this.#messages;
  }

  /** The names present, in order of arrival. */
  get users(): string[] {
    return [...this.#members].map((m) => m.name);
  }

  /**
   * Runs one session in the room until it ends: every message is `{ "text": … }`. `wanted` is
   * the name asked for, `address` the client's (the host of its address).
   */
  async join(session: MessageSession, wanted: string | null, address = ""): Promise<void> {
    if (this.#members.size >= MAX_MEMBERS) {
      await session.close(1013, "the room is full").catch(() => {});
      return;
    }
    const from = this.#addresses.get(address) ?? 0;
    if (from >= MAX_PER_ADDRESS) {
      await session.close(1013, "too many sessions from this address").catch(() => {});
      return;
    }
    this.#addresses.set(address, from + 1);
    const member: Member = {
      name: this.#uniqueName(wanted),
      session,
      address,
      presence: IDLE,
      backlog: 0,
      missed: 0,
      owesPresence: false,
      tokens: MESSAGE_BURST,
      refilled: performance.now(),
      dropped: 0,
    };
    this.#members.add(member);
    this.#send(member, { type: "welcome", name: member.name });
    this.#broadcastPresence();
    try {
      for await (const message of session.incoming) {
        // Every message takes from the rate, a malformed one too: each is answered.
        if (!this.#take(member)) {
          if (++member.dropped >= MAX_DROPPED) {
            await session.close(CloseCode.PolicyViolation, "sending too fast").catch(() => {});
            break;
          }
          this.#send(member, {
            type: "error",
            message: `slow down: at most ${MESSAGE_RATE} messages a second; this one was dropped`,
          });
          continue;
        }
        member.dropped = 0;
        if (typeof message !== "string") {
          this.#send(member, { type: "error", message: "messages are JSON text" });
          continue;
        }
        let text: unknown;
        try {
          text = (JSON.parse(message) as { text?: unknown }).text;
        } catch {
          text = undefined;
        }
        if (typeof text !== "string" || text.length === 0 || text.length > MAX_TEXT) {
          this.#send(member, {
            type: "error",
            message: `a message is {"text": "…"} with 1 to ${MAX_TEXT} characters`,
          });
          continue;
        }
        this.#messages++;
        this.#broadcast({ type: "message", from: member.name, text, at: Date.now() });
      }
    } finally {
      this.#members.delete(member);
      const left = this.#addresses.get(address)! - 1;
      if (left === 0) this.#addresses.delete(address);
      else this.#addresses.set(address, left);
      this.#broadcastPresence();
    }
  }

  /** Takes a token from the member's bucket, refilled for the time since the last one. */
  #take(member: Member): boolean {
    const now = performance.now();
    member.tokens = Math.min(
      MESSAGE_BURST,
      member.tokens + (now - member.refilled) * MESSAGE_RATE / 1000,
    );
    member.refilled = now;
    if (member.tokens < 1) return false;
    member.tokens--;
    return true;
  }

  #uniqueName(wanted: string | null): string {
    const base = wanted !== null && NAME.test(wanted) ? wanted : `guest-${++this.#guests}`;
    const taken = new Set(this.users);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    return name;
  }

  /** The room changed: the list goes to every member now, or at the interval's end. */
  #broadcastPresence(): void {
    if (this.#members.size === 0) {
      // Nobody to tell: no timer left behind an empty room.
      clearTimeout(this.#presenceTimer);
      this.#presenceTimer = undefined;
      this.#presenceDue = false;
      return;
    }
    if (this.#presenceTimer !== undefined) {
      this.#presenceDue = true;
      return;
    }
    this.#presence = null; // made again for the next list sent
    for (const member of this.#members) this.#sendPresence(member);
    this.#presenceTimer = setTimeout(this.#presenceTick, PRESENCE_INTERVAL);
  }

  #presenceTick = (): void => {
    this.#presenceTimer = undefined;
    if (this.#presenceDue) {
      this.#presenceDue = false;
      this.#broadcastPresence();
    }
  };

  /** Sends the members now to `member`, unless a list is on its way (see Member.presence). */
  #sendPresence(member: Member): void {
    if (member.presence !== IDLE) {
      member.presence = STALE;
      return;
    }
    if (this.#presence === null) {
      const text = JSON.stringify({ type: "presence", users: this.users } satisfies ChatEvent);
      this.#presence = { text, size: utf8Length(text) };
    }
    const sent = this.#sendText(member, this.#presence.text, this.#presence.size);
    if (sent === null) {
      member.owesPresence = true; // sent by #caughtUp
      return;
    }
    member.owesPresence = false;
    member.presence = SENDING;
    sent.then(() => {
      const stale = member.presence === STALE;
      member.presence = IDLE;
      if (stale && this.#members.has(member)) this.#sendPresence(member);
    });
  }

  /** Sends a chat message to every member; one that cannot take it now misses it. */
  #broadcast(event: ChatEvent): void {
    const text = JSON.stringify(event);
    const size = utf8Length(text); // once per broadcast, not per member
    for (const member of this.#members) {
      if (this.#sendText(member, text, size) === null) member.missed++;
    }
  }

  #send(member: Member, event: ChatEvent): void {
    const text = JSON.stringify(event);
    this.#sendText(member, text, utf8Length(text));
  }

  /**
   * Sends `text` (`size` bytes as UTF-8, as it goes on the wire) without waiting; to a member
   * whose backlog would grow past MAX_BACKLOG it is not sent: null then (see
   * {@linkcode #caughtUp}). Otherwise resolves once it was written, or will not be (it never
   * rejects).
   */
  #sendText(member: Member, text: string, size: number): Promise<void> | null {
    if (member.backlog + size > MAX_BACKLOG) return null;
    member.backlog += size;
    const written = () => {
      member.backlog -= size;
      if (member.missed > 0 || member.owesPresence) this.#caughtUp(member);
    };
    return member.session.send(text).then(written, written); // an ended session leaves the room
  }

  /**
   * Once a member's backlog is half empty: the presence list it was not sent, and how many
   * chat messages it missed.
   */
  #caughtUp(member: Member): void {
    if (member.backlog > MAX_BACKLOG / 2 || !this.#members.has(member)) return;
    if (member.owesPresence && member.presence === IDLE) this.#sendPresence(member);
    if (member.missed === 0) return;
    const missed = member.missed;
    member.missed = 0;
    this.#send(member, {
      type: "error",
      message: `${missed} messages were not sent to you: this connection reads too slowly`,
    });
  }
}

/** The length of `text` in UTF-8, without encoding it (a lone surrogate counts as U+FFFD). */
export function utf8Length(text: string): number {
  let size = text.length; // one byte per UTF-16 unit, plus what the wider ones add
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) size += 1;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        size += 2; // a pair: 4 bytes for 2 units
        i++;
        continue;
      }
      size += 2; // lone high surrogate: U+FFFD, 3 bytes
    } else size += 2; // 3 bytes (lone low surrogates included)
  }
  return size;
}
