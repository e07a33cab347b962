// Copyright 2026 the wirestream authors. MIT license.
// maskWith against npm:bufferutil's native unmask, ws's unmask as its Receiver runs it
// (bufferutil from 32 bytes) and ws's pure-JS loop (WS_NO_BUFFER_UTIL=1), with a plain copy of
// the same bytes as the ceiling. Masking in place twice restores the bytes, so each row runs
// on one buffer and needs no reset.

import { Buffer } from "node:buffer";
import { keyWord, maskWith } from "../lib/websocket/mask.ts";
import { bufferutilUnmask, wsUnmask, wsUnmaskJs, wsUsesBufferutil } from "./_ws.ts";

if (!wsUsesBufferutil()) {
  throw new Error(
    "Cannot compare with ws: its Receiver does not unmask with native bufferutil (run with -A; the addon needs --allow-ffi)",
  );
}

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const WORD = keyWord(KEY);

function bytes(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
  return data;
}

// The implementations agree on a payload longer than every threshold, at an odd offset.
{
  const want = bytes(5000);
  for (let i = 0; i < want.length; i++) want[i]! ^= KEY[i & 3]!;
  for (const unmask of [bufferutilUnmask, wsUnmask, wsUnmaskJs]) {
    const data = bytes(5001).subarray(1);
    data.set(bytes(5000));
    unmask(data, KEY);
    if (!data.equals(want)) throw new Error(`${unmask.name} disagrees with the reference`);
  }
  const data = bytes(5001).subarray(1);
  data.set(bytes(5000));
  maskWith(data, WORD, 0);
  if (!data.equals(want)) throw new Error("maskWith disagrees with the reference");
}

const SIZES = [
  ["16 B", 16],
  ["32 B", 32],
  ["48 B", 48],
  ["125 B", 125],
  ["1 KiB", 1024],
  ["64 KiB", 65_536],
  ["1 MiB", 1_048_576],
] as const;

// Up to 64 KiB, a row makes as many calls as fill 64 KiB, so that the harness's own cost per
// iteration (about 25 ns) does not swamp a 16-byte call.
for (const [name, size] of SIZES) {
  const calls = Math.max(1, 65_536 / size | 0);
  const group = `mask ${name}${calls > 1 ? ` (${calls} calls per iteration)` : ""}`;
  const data = bytes(size);
  const target = Buffer.alloc(size);
  const repeat = (fn: () => void) => () => {
    for (let i = 0; i < calls; i++) fn();
  };
  Deno.bench({
    group,
    name: "memcpy (ceiling)",
    baseline: true,
    fn: repeat(() => target.set(data)),
  });
  Deno.bench({ group, name: "maskWith", fn: repeat(() => maskWith(data, WORD, 0)) });
  Deno.bench({
    group,
    name: "bufferutil.unmask (native)",
    fn: repeat(() => bufferutilUnmask(data, KEY)),
  });
  Deno.bench({
    group,
    name: "ws unmask (bufferutil ≥ 32 B)",
    fn: repeat(() => wsUnmask(data, KEY)),
  });
  Deno.bench({ group, name: "ws unmask (pure JS)", fn: repeat(() => wsUnmaskJs(data, KEY)) });
}
