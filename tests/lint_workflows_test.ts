import assert from "node:assert/strict";
import { workflowProblems } from "../tools/lint_workflows.ts";

Deno.test("the repository's workflows pass the GitHub workflow schema", async () => {
  for (const file of ["ci.yml", "release.yml"]) {
    const source = await Deno.readTextFile(
      new URL(`../.github/workflows/${file}`, import.meta.url),
    );
    assert.deepEqual(workflowProblems(source), [], file);
  }
});

Deno.test("a workflow with a misspelt key and a wrong type gets one line per problem", () => {
  const problems = workflowProblems(
    "name: x\non: push\njobs:\n  a:\n    runz-on: ubuntu-latest\n    steps: 5\n",
  );
  assert.ok(problems.some((p) => p.includes("'runz-on' is not allowed")), problems.join("\n"));
  assert.ok(problems.some((p) => p.includes("/jobs/a/steps")), problems.join("\n"));
});
