/** Connections that come and go leave nothing on the server's heap (tools/soak/heap_check.ts, in process). */

import assert from "node:assert/strict";

import { ROOT } from "./helpers/relay_client.ts";

Deno.test("connections that come and go, plain and TLS, refused or not, leave nothing on the heap", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--expose-gc",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      `${ROOT}tools/soak/heap_check.ts`,
      "--rounds",
      "4",
      "--per-round",
      "250",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const report = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, report);
});
