// Copyright 2026 the wirestream authors. MIT license.
// Text messages: MessageDecoder's single-frame path (a replacing TextDecoder, then a U+FFFD
// check) against the straightforward fatal TextDecoder, and a fragmented message.
//
//   deno bench -A bench/websocket_message_bench.ts

import { encodeMessage, Frame, MessageDecoder } from "@wirestream/wirestream";

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const sink = { enqueue(_: unknown) {} };

for (const size of [16, 1024, 65_536]) {
  const text = "wirestream ".repeat(Math.ceil(size / 11)).slice(0, size - 3) + "€";
  const whole = Frame.text(text);
  const fragments: Frame[] = [];
  encodeMessage(text, { enqueue: (f) => fragments.push(f) }, {
    maxFrameSize: Math.ceil(whole.payload.length / 4),
  });
  const decoder = new MessageDecoder();
  const group = `text message of ${whole.payload.length} B`;
  Deno.bench({
    group,
    name: "fatal TextDecoder",
    baseline: true,
    fn: () => void fatal.decode(whole.payload),
  });
  Deno.bench({ group, name: "MessageDecoder, one frame", fn: () => decoder.push(whole, sink) });
  Deno.bench({
    group,
    name: "MessageDecoder, 4 fragments",
    fn() {
      for (const fragment of fragments) decoder.push(fragment, sink);
    },
  });
}
