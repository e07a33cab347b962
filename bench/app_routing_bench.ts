// Copyright 2026 the wirestream authors. MIT license.
// Routing cost per request: an application with eleven parameterised GET routes, asked for the
// first, the last, and a path none matches (404, which also looks for other methods: 405).
//
//   deno bench -A bench/app_routing_bench.ts

import { Application } from "../mod.ts";

const app = new Application().routing((r) => {
  for (let i = 0; i < 11; i++) r.get(`/r${i}/:id`, () => new Response(null));
});
const first = new Request("http://127.0.0.1:8000/r0/7");
const last = new Request("http://127.0.0.1:8000/r10/7");
const missing = new Request("http://127.0.0.1:8000/nowhere/7");

Deno.bench({
  group: "route",
  name: "first of 11 routes",
  baseline: true,
  fn: () => void app.fetch(first),
});
Deno.bench({ group: "route", name: "11th of 11 routes", fn: () => void app.fetch(last) });
Deno.bench({ group: "route", name: "no route (404)", fn: () => void app.fetch(missing) });
