/** Every program and task answers --version with one line: wirechat's, the protocol's, Deno's. */

import assert from "node:assert/strict";
import { PROTOCOL_VERSION } from "../lib/protocol/version.ts";
import { VERSION } from "../lib/cli/version.ts";
import { run } from "./helpers/processes.ts";
import { REPO_ROOT, taskFor } from "../tools/harness/deno_tasks.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { bounded } from "../tools/harness/wait.ts";

const LINE = new RegExp(
  `^wirechat ${VERSION.replaceAll(".", "\\.")} \\(protocol ${PROTOCOL_VERSION}, Deno ${
    Deno.version.deno.replaceAll(".", "\\.")
  }\\)\\n$`,
);

Deno.test("deno.json's version and PROTOCOL.md's protocol version are where --version reads them", async () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
  const protocol = await Deno.readTextFile(`${REPO_ROOT}/PROTOCOL.md`);
  assert.match(protocol, new RegExp(`\\*\\*Protocol version ${PROTOCOL_VERSION}\\.\\*\\*`));
});

Deno.test(
  "every deno run task's program prints the version line and exits 0",
  bounded(120_000, async () => {
    const config = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
    const scripts = Object.values(config.tasks as Record<string, string | { command: string }>)
      .map((task) => (typeof task === "string" ? task : task.command))
      .map((command) => /\brun\b.*?\s([\w/]+\.ts)\b/.exec(command)?.[1])
      .filter((script): script is string => script !== undefined && taskFor(script) !== undefined);
    assert.ok(scripts.length >= 10, `only ${scripts.length} deno run tasks found`);
    for (const script of scripts) {
      const { code, stdout, stderr } = await run(script, ["--version"]);
      assert.equal(code, 0, `${script}: ${stderr}`);
      assert.match(stdout, LINE, script);
    }
  }),
);

Deno.test(
  "the server logs its version when it starts",
  bounded(20_000, async () => {
    await using server = await ServerProcess.start([]);
    await server.log.waitFor(new RegExp(` info +wirechat ${VERSION.replaceAll(".", "\\.")} `));
  }),
);
