/**
 * `deno task lint-workflows`, run as the task runs it: the validator lives in its own lock
 * file (tools/lint_workflows.lock), not in deno.json or deno.lock, so that no other task has to
 * fetch it (see tools/lint_workflows.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../tools/harness/deno_tasks.ts";
import { bounded } from "../tools/harness/wait.ts";

async function lintWorkflows(...files: string[]): Promise<Deno.CommandOutput & { text: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "lint-workflows", ...files],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { ...output, text: decoder.decode(output.stdout) + decoder.decode(output.stderr) };
}

Deno.test(
  "the repository's workflows pass the GitHub workflow schema",
  bounded(60_000, async () => {
    const result = await lintWorkflows();
    assert.equal(result.code, 0, result.text);
    assert.match(result.text, /^\.github\/workflows\/ci\.yml: ok$/m);
    assert.match(result.text, /^\.github\/workflows\/release\.yml: ok$/m);
  }),
);

Deno.test(
  "a workflow with a misspelt key and a wrong type gets one line per problem",
  bounded(60_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "wirechat_workflow_" });
    try {
      const file = join(dir, "bad.yml");
      await Deno.writeTextFile(
        file,
        "name: x\non: push\njobs:\n  a:\n    runz-on: ubuntu-latest\n    steps: 5\n",
      );
      const result = await lintWorkflows(file);
      assert.equal(result.code, 1, result.text);
      assert.match(result.text, /'runz-on' is not allowed/);
      assert.match(result.text, /\/jobs\/a\/steps/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }),
);
