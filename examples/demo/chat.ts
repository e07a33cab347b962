// Copyright 2026 the wirestream authors. MIT license.
// The demo's chat: a room that broadcasts every message to every session, with presence (who
// is here) and a bound on what a slow client may hold up.

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
/** Bytes one session may have waiting to be written before it is closed (1008) as too slow. */
export const MAX_BACKLOG = 1024 * 1024;
const NAME = /^[\p{L}\p{N}_.-]{1,32}$/u;

interface Member {
  name: string;
  session: MessageSession;
  /** Bytes sent and not yet written. */
  backlog: number;
}

/** A chat room: sessions join it, and what one says goes to all. */
export class ChatRoom {
  readonly #members = new Set<Member>();
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
   * Runs one session in the room until it ends: the first message may be `{ "name": … }`;
   * every other one is `{ "text": … }`.
   */
  async join(session: MessageSession, wanted: string | null): Promise<void> {
    if (this.#members.size >= MAX_MEMBERS) {
      await session.close(1013, "the room is full").catch(() => {});
      return;
    }
    const member: Member = { name: this.#uniqueName(wanted), session, backlog: 0 };
    this.#members.add(member);
    this.#send(member, { type: "welcome", name: member.name });
    this.#broadcastPresence();
    try {
      for await (const message of session.incoming) {
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
      this.#broadcastPresence();
    }
  }

  #uniqueName(wanted: string | null): string {
    const base = wanted !== null && NAME.test(wanted) ? wanted : `guest-${++this.#guests}`;
    const taken = new Set(this.users);
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    return name;
  }

  #broadcastPresence(): void {
    this.#broadcast({ type: "presence", users: this.users });
  }

  #broadcast(event: ChatEvent): void {
    const text = JSON.stringify(event);
    for (const member of this.#members) this.#sendText(member, text);
  }

  #send(member: Member, event: ChatEvent): void {
    this.#sendText(member, JSON.stringify(event));
  }

  /** Sends without waiting; a member whose backlog grows past MAX_BACKLOG is closed. */
  #sendText(member: Member, text: string): void {
    if (member.backlog + text.length > MAX_BACKLOG) {
      member.session.close(CloseCode.PolicyViolation, "too slow to read the room").catch(() => {});
      return;
    }
    member.backlog += text.length; // UTF-16 units: near enough to bytes for a bound
    const written = () => (member.backlog -= text.length);
    member.session.send(text).then(written, written); // an ended session leaves the room
  }
}
