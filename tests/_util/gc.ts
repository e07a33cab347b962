// Copyright 2026 the wirestream authors. MIT license.
// A full garbage collection on demand, so a test can measure what is retained rather than
// what happens not to be collected yet: V8's gc(), exposed through node:v8's flags.
import v8 from "node:v8";
import vm from "node:vm";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** The heap and external bytes still reachable, after a full collection. */
export function retainedBytes(): number {
  gc();
  const { heapUsed, external } = Deno.memoryUsage();
  return heapUsed + external;
}
