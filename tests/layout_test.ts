/**
 * What each folder of lib/ may import (README.md, "Where things are"): the protocol core knows
 * no I/O, so a browser bundle can import it; nothing in lib/ reaches into tools/ or tests/.
 */

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../lib/", import.meta.url));

/** The folders each folder of lib/ may import from, besides itself. */
const ALLOWED: Record<string, string[]> = {
  protocol: [],
  cli: ["protocol"],
  net: ["protocol", "cli"],
  server: ["protocol", "net", "cli"],
  client: ["protocol", "net", "cli"],
  ".": ["protocol", "net"], // lib/brief_api.ts
};

/** Every .ts file under lib/, with the folder of lib/ it is in ("." for lib/ itself). */
async function libFiles(): Promise<{ path: string; folder: string }[]> {
  const out: { path: string; folder: string }[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        out.push({ path, folder: relative(LIB, dir).split("/")[0] || "." });
      }
    }
  }
  await walk(LIB);
  return out;
}

/** The specifiers a file imports, outside comments. */
function imports(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]);
}

Deno.test("each folder of lib/ imports only from the folders it may", async () => {
  const files = await libFiles();
  assert.ok(files.length > 20, `only ${files.length} files found under lib/`);
  const wrong: string[] = [];
  for (const { path, folder } of files) {
    const allowed = ALLOWED[folder];
    if (!allowed) {
      wrong.push(`${relative(LIB, path)}: lib/${folder}/ has no rule in this test`);
      continue;
    }
    for (const spec of imports(await Deno.readTextFile(path))) {
      if (!spec.startsWith(".")) {
        if (folder === "protocol") wrong.push(`${relative(LIB, path)} imports ${spec}`);
        continue;
      }
      const target = relative(LIB, join(dirname(path), spec));
      // deno.json, for the version: data, not code (lib/cli/version.ts).
      if (target === "../deno.json" && folder === "cli") continue;
      if (target.startsWith("..")) {
        wrong.push(`${relative(LIB, path)} imports ${spec}, outside lib/`);
        continue;
      }
      const into = target.includes("/") ? target.split("/")[0] : ".";
      if (into !== folder && !allowed.includes(into)) {
        wrong.push(`${relative(LIB, path)} (lib/${folder}) imports ${target}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("lib/protocol uses no Deno API and no node: module, so a browser can import it", async () => {
  const files = (await libFiles()).filter((f) => f.folder === "protocol");
  assert.ok(files.length >= 5);
  for (const { path } of files) {
    const code = (await Deno.readTextFile(path)).replace(/\/\*[\s\S]*?\*\//g, "");
    assert.doesNotMatch(code, /\bDeno\./, `${relative(LIB, path)} uses Deno`);
    assert.doesNotMatch(code, /"node:/, `${relative(LIB, path)} imports a node: module`);
  }
});

Deno.test("tools/ never imports tests/: what tests and tools share lives in tools/harness/", async () => {
  const TOOLS = fileURLToPath(new URL("../tools/", import.meta.url));
  const wrong: string[] = [];
  let count = 0;
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        count++;
        for (const spec of imports(await Deno.readTextFile(path))) {
          if (
            spec.startsWith(".") &&
            relative(TOOLS, join(dirname(path), spec)).startsWith("../tests/")
          ) {
            wrong.push(`${relative(TOOLS, path)} imports ${spec}`);
          }
        }
      }
    }
  }
  await walk(TOOLS);
  assert.ok(count > 30, `only ${count} files found under tools/`);
  assert.deepEqual(wrong, []);
});

Deno.test("web/ (the page) imports only web/ and lib/protocol/", async () => {
  const WEB = fileURLToPath(new URL("../web/", import.meta.url));
  const wrong: string[] = [];
  let count = 0;
  for await (const entry of Deno.readDir(WEB)) {
    if (!entry.name.endsWith(".ts")) continue;
    count++;
    for (const spec of imports(await Deno.readTextFile(join(WEB, entry.name)))) {
      const into = relative(WEB, join(WEB, spec));
      if (
        !spec.startsWith(".") || (into.startsWith("..") && !into.startsWith("../lib/protocol/"))
      ) {
        wrong.push(`web/${entry.name} imports ${spec}`);
      }
    }
  }
  assert.ok(count >= 2, `only ${count} files found under web/`);
  assert.deepEqual(wrong, []);
});
