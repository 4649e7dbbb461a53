/**
 * `deno task lint-workflows`: checks the GitHub workflows in .github/workflows against the
 * workflow schema (action-validator, a WebAssembly build of the Rust validator), so that a
 * broken workflow fails our own CI rather than the first release. Prints one line per
 * problem, `FILE: PATH: what is wrong`, and exits 1 if there is any.
 *
 * @module
 */

/** The validator, fetched when the tool runs: see {@linkcode loadValidator}. */
const VALIDATOR = "npm:@action-validator/core@0.6.0";

/** The part of the validator's error tree the tool reads. */
interface ValidationError {
  title: string;
  detail?: string;
  path?: string;
  location?: { line: number; column: number };
  states?: { errors: ValidationError[] }[];
}

let validateWorkflow: (source: string) => { errors: ValidationError[] };

/**
 * Loads the validator by a specifier no type check or \`deno task\` sees, so that it lives in
 * its own lock file (tools/lint_workflows.lock): \`deno task\` fetches every npm package of
 * deno.json's imports and deno.lock before any task, and a display must start with nothing
 * to download.
 */
export async function loadValidator(): Promise<void> {
  validateWorkflow ??= (await import(VALIDATOR)).validateWorkflow;
}
import { runTool } from "../lib/cli/args.ts";
import { UsageError } from "../lib/cli/user_errors.ts";

const USAGE = `Usage: deno task lint-workflows [FILE...]

Checks GitHub workflow files (default: every .github/workflows/*.yml) against the workflow
schema; one line per problem, exit status 1 if there is any.

  --help    show this help`;

/** The leaves of a validation error tree: the problems a person can fix, one per line. */
function leaves(errors: ValidationError[], out: string[] = []): string[] {
  for (const error of errors) {
    const nested = "states" in error ? error.states?.flatMap((s) => s.errors) ?? [] : [];
    if (nested.length > 0) leaves(nested, out);
    else {
      const where = "path" in error
        ? error.path || "/"
        : error.location
        ? `line ${error.location.line}, column ${error.location.column}`
        : "/";
      out.push(`${where}: ${error.detail ?? error.title}`);
    }
  }
  return [...new Set(out)];
}

/** Problems in one workflow's text, one line each; none when it is valid. */
export function workflowProblems(source: string): string[] {
  return leaves(validateWorkflow(source).errors);
}

/** Runs the check; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const unknown = args.find((a) => a.startsWith("-"));
  if (unknown) throw new UsageError(`Unknown option '${unknown}'. Try --help.`);
  let files = args;
  if (files.length === 0) {
    files = [];
    for await (const entry of Deno.readDir(".github/workflows")) {
      if (/\.ya?ml$/.test(entry.name)) files.push(`.github/workflows/${entry.name}`);
    }
    files.sort();
  }
  await loadValidator();
  let problems = 0;
  for (const file of files) {
    const found = workflowProblems(await Deno.readTextFile(file));
    for (const line of found) console.error(`${file}: ${line}`);
    problems += found.length;
    if (found.length === 0) console.log(`${file}: ok`);
  }
  return problems === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
