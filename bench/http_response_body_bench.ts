// Copyright 2026 the wirestream authors. MIT license.
// What it costs an engine written against the public API to get the bytes of a hello-world
// `Response`: Deno 2.9 keeps a string body unmaterialised inside the Response until something
// asks for it, and `Deno.serve` writes it from there, with no stream. The wire engine can only
// ask for `response.body` (a stream) and read it; `bytes()` would do for a body known to be
// small, which an engine cannot know without reading it.
//
//   deno run -A bench/ratios.ts --runs 5 bench/http_response_body_bench.ts

const TEXT = "Hello, World!";

Deno.bench({
  group: "hello-world body",
  name: "new Response(text), body not read",
  baseline: true,
  fn: () => void new Response(TEXT),
});

Deno.bench({
  group: "hello-world body",
  name: "new Response(text), its body stream read to the end",
  fn: async () => {
    const reader = new Response(TEXT).body!.getReader();
    while (!(await reader.read()).done);
  },
});

Deno.bench({
  group: "hello-world body",
  name: "new Response(text).bytes()",
  fn: async () => void await new Response(TEXT).bytes(),
});
