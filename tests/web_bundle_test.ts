/**
 * web/app.js is committed (a fresh clone serves the page with no build step); it must be what
 * `deno task bundle-web` makes of web/app.ts and lib/protocol today.
 *
 * @module
 */

import assert from "node:assert/strict";
import { denoPath, REPO_ROOT } from "../tools/harness/deno_tasks.ts";
import { bounded } from "../tools/harness/wait.ts";

Deno.test(
  "the committed web/app.js is the bundle of web/app.ts as it is now",
  bounded(60_000, async () => {
    const dir = await Deno.makeTempDir({ prefix: "wirechat-bundle-" });
    try {
      const out = `${dir}/app.js`;
      const { code, stderr } = await new Deno.Command(denoPath(), {
        args: ["bundle", "--platform", "browser", "--output", out, "web/app.ts"],
        cwd: REPO_ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const fresh = await Deno.readTextFile(out);
      const committed = await Deno.readTextFile(`${REPO_ROOT}/web/app.js`);
      assert.ok(fresh === committed, "web/app.js is stale: run `deno task bundle-web`");
      // The page runs in a browser: nothing of Deno's may be in it.
      assert.doesNotMatch(committed, /\bDeno\.|from "node:/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }),
);
