/**
 * The packaging step of `deno task compile` and of the release: archives and SHA256SUMS,
 * checked with the system's own tar, unzip (python3's zipfile) and sha256sum. The executables
 * packed here are stand-ins (test doubles for what `deno compile` writes, which needs Deno's
 * runtime image); the real build is tests/compile_e2e_test.ts, run where DENORT_BIN is set.
 */

import assert from "node:assert/strict";
import { packageTarget, writeChecksums } from "../tools/compile.ts";
import { crc32 } from "../tools/release_archive.ts";
import { REPO_ROOT } from "../tools/harness/deno_tasks.ts";

async function output(command: string, args: string[], cwd: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args, cwd }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  return text;
}

/** Writes stand-in executables (not real programs) where `deno compile` would put them. */
async function standIns(out: string, target: string): Promise<Map<string, string>> {
  const suffix = target.includes("windows") ? ".exe" : "";
  const contents = new Map<string, string>();
  await Deno.mkdir(`${out}/${target}`, { recursive: true });
  for (const program of ["server", "display", "keyboard", "conformance"]) {
    const name = `wirechat-${program}${suffix}`;
    const text = `#!/bin/sh\necho stand-in for ${name} on ${target}\n`;
    await Deno.writeTextFile(`${out}/${target}/${name}`, text);
    contents.set(name, text);
  }
  return contents;
}

Deno.test("crc32() matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("a Linux archive holds the executables (mode 755), the README and the license, and its checksum verifies", async () => {
  const out = await Deno.makeTempDir({ prefix: "wirechat_release_" });
  try {
    const target = "x86_64-unknown-linux-gnu";
    const programs = await standIns(out, target);
    const archive = await packageTarget(target, { out, version: "1.2.3" });
    assert.equal(archive, `wirechat-1.2.3-${target}.tar.gz`);
    const listing = await output("tar", ["-tvzf", archive], out);
    const folder = `wirechat-1.2.3-${target}`;
    for (const name of programs.keys()) {
      assert.match(listing, new RegExp(`^-rwxr-xr-x .* ${folder}/${name}$`, "m"));
    }
    assert.match(listing, new RegExp(`^-rw-r--r-- .* ${folder}/README.txt$`, "m"));
    assert.match(listing, new RegExp(`^-rw-r--r-- .* ${folder}/LICENSE$`, "m"));
    await output("tar", ["-xzf", archive], out);
    assert.equal(
      await Deno.readTextFile(`${out}/${folder}/wirechat-server`),
      programs.get("wirechat-server"),
    );
    const readme = await Deno.readTextFile(`${out}/${folder}/README.txt`);
    assert.match(readme, /^wirechat 1\.2\.3 for x86_64-unknown-linux-gnu$/m);
    assert.doesNotMatch(readme, /\{[A-Z]+\}/);
    await writeChecksums(out, [archive]);
    assert.match(await output("sha256sum", ["--check", "SHA256SUMS"], out), /: OK$/m);
    // A changed byte fails the check.
    const bytes = await Deno.readFile(`${out}/${archive}`);
    bytes[bytes.length - 1] ^= 1;
    await Deno.writeFile(`${out}/${archive}`, bytes);
    const bad = await new Deno.Command("sha256sum", { args: ["--check", "SHA256SUMS"], cwd: out })
      .output();
    assert.notEqual(bad.code, 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a Windows archive is a zip that unzips to the .exe files, byte for byte", async () => {
  const out = await Deno.makeTempDir({ prefix: "wirechat_release_" });
  try {
    const target = "x86_64-pc-windows-msvc";
    const programs = await standIns(out, target);
    const archive = await packageTarget(target, { out, version: "1.2.3" });
    assert.equal(archive, `wirechat-1.2.3-${target}.zip`);
    // python3's zipfile checks every entry's CRC-32 in testzip().
    const script = "import sys, zipfile, json\nz = zipfile.ZipFile(sys.argv[1])\n" +
      "assert z.testzip() is None\n" +
      "print(json.dumps({i.filename: z.read(i).decode() for i in z.infolist()}))";
    const files = JSON.parse(await output("python3", ["-c", script, archive], out));
    const folder = `wirechat-1.2.3-${target}`;
    for (const [name, text] of programs) assert.equal(files[`${folder}/${name}`], text);
    assert.match(files[`${folder}/README.txt`], /wirechat-server\.exe/);
    assert.ok(files[`${folder}/LICENSE`].startsWith("MIT License"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("the release's smoke test passes an archive whose executables work, and fails one whose keyboard does not", async () => {
  const out = await Deno.makeTempDir({ prefix: "wirechat_release_" });
  try {
    // Stand-ins again, but working ones: each runs the program from this checkout.
    const target = "x86_64-unknown-linux-gnu";
    await Deno.mkdir(`${out}/${target}`, { recursive: true });
    for (const program of ["server", "display", "keyboard"]) {
      const name = `wirechat-${program}`;
      await Deno.writeTextFile(
        `${out}/${target}/${name}`,
        `#!/bin/sh\nexec "${Deno.execPath()}" run --allow-net --allow-read "${REPO_ROOT}/main_${program}.ts" "$@"\n`,
        { mode: 0o755 },
      );
    }
    const archive = await packageTarget(target, { out, version: "1.2.3" });
    const smoke = (path: string) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-run",
          "--allow-net=127.0.0.1,localhost",
          `${REPO_ROOT}/tools/release_smoke.ts`,
          path,
        ],
        env: { NO_COLOR: "1" },
      }).output();
    const good = await smoke(`${out}/${archive}`);
    const said = new TextDecoder().decode(good.stdout) + new TextDecoder().decode(good.stderr);
    assert.equal(good.code, 0, said);
    assert.match(said, /^TLS: one message from keyboard to display$/m);
    // A keyboard that prints its version and does nothing else.
    await Deno.writeTextFile(
      `${out}/${target}/wirechat-keyboard`,
      `#!/bin/sh\necho "wirechat 1.2.3 (protocol 1, Deno x)"\n`,
      { mode: 0o755 },
    );
    const broken = await smoke(`${out}/${await packageTarget(target, { out, version: "1.2.3" })}`);
    assert.notEqual(broken.code, 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
