/**
 * `deno task compile` for this machine, then the built executables run. Building needs
 * Deno's runtime image for the target, which only DENORT_BIN provides offline, so without
 * it the test is skipped and says why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "./helpers/processes.ts";
import { bounded } from "../tools/harness/wait.ts";

const DENORT_BIN = Deno.env.get("DENORT_BIN");

function hostTarget(): string {
  const { arch, os } = Deno.build;
  if (os === "windows") return `${arch}-pc-windows-msvc`;
  if (os === "darwin") return `${arch}-apple-darwin`;
  return `${arch}-unknown-linux-gnu`;
}

const NAME = "deno task compile builds executables for this machine that answer --help";

Deno.test({
  name: DENORT_BIN ? NAME : `${NAME} (skipped because DENORT_BIN is not set)`,
  ignore: !DENORT_BIN,
  fn: bounded(300_000, async () => {
    const target = hostTarget();
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile", "--target", target],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert.equal(build.code, 0, decoder.decode(build.stderr));
    const suffix = Deno.build.os === "windows" ? ".exe" : "";
    for (
      const [program, usage] of [
        ["server", /^Usage: wirechat-server \[options\]/],
        ["display", /^Usage: wirechat-display \[options\]/],
        ["chat", /^Usage: wirechat-chat /],
      ]
    ) {
      const executable = join(REPO_ROOT, "dist", target, `wirechat-${program}${suffix}`);
      const help = await new Deno.Command(executable, {
        args: ["--help"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(help.code, 0, decoder.decode(help.stderr));
      assert.match(decoder.decode(help.stdout), usage as RegExp);
    }
  }),
});
