/**
 * `deno task install` end to end: the commands installed into a temporary root run, exchange a
 * message, and are gone after `--uninstall`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Child } from "../tools/harness/program.ts";
import { REPO_ROOT } from "../tools/harness/deno_tasks.ts";
import { ServerProcess } from "../tools/harness/server_process.ts";
import { bounded } from "../tools/harness/wait.ts";
import { displayLine } from "./helpers/processes.ts";

async function task(args: string[]): Promise<{ code: number; text: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  return { code, text: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

Deno.test(
  "deno task install puts working commands into --root, and --uninstall takes them away",
  bounded(120_000, async () => {
    const root = await Deno.makeTempDir({ prefix: "wirechat_install_" });
    try {
      const installed = await task(["install", "--root", root]);
      assert.equal(installed.code, 0, installed.text);
      const bin = join(root, "bin");
      for (const name of ["server", "display", "keyboard", "conformance"]) {
        assert.ok((await Deno.stat(join(bin, `wirechat-${name}`))).isFile, name);
      }
      // The commands run the `deno` on PATH, as a user's shell would find it.
      await Deno.symlink(Deno.execPath(), join(bin, "deno"));
      const env = { PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` };
      await using version = new Child("version", [join(bin, "wirechat-keyboard"), "--version"], {
        env,
      });
      assert.match((await version.result()).stdout, /^wirechat \d+\.\d+\.\d+ /);
      await using server = await ServerProcess.start(["--host", "127.0.0.1", "--port", "0"], {
        command: [join(bin, "wirechat-server")],
        env,
      });
      const client = ["--host", "127.0.0.1", "--port", String(server.port)];
      await using display = new Child("display", [join(bin, "wirechat-display"), ...client], {
        env,
      });
      await server.log.waitFor(/ identified as display/);
      await using keyboard = new Child(
        "keyboard",
        [join(bin, "wirechat-keyboard"), ...client, "--user", "installed"],
        { stdin: true, env },
      );
      await keyboard.write("from the installed commands\n");
      await display.stdout.waitFor(displayLine("installed", "from the installed commands"));
      const removed = await task(["install", "--root", root, "--uninstall"]);
      assert.equal(removed.code, 0, removed.text);
      const left = [...Deno.readDirSync(bin)].map((e) => e.name).filter((n) => n !== "deno");
      assert.deepEqual(left, []);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }),
);
