/**
 * The release's smoke test, run on each system's own runner against the archive built for it:
 * unpack it, ask every executable for `--version`, then let the server, a display and a
 * keyboard exchange one message over loopback, plain and over TLS (with throwaway
 * certificates). Exit 0 only if all of it worked; otherwise one line says what did not.
 *
 * Usage: `deno run --allow-read --allow-write --allow-run --allow-net=127.0.0.1,localhost
 * tools/release_smoke.ts ARCHIVE`
 *
 * @module
 */

import { join } from "node:path";
import { runTool } from "../lib/cli/args.ts";
import { UsageError } from "../lib/cli/user_errors.ts";
import { Child } from "./harness/program.ts";
import { writeThrowawayCerts } from "./throwaway_certs.ts";

const PROGRAMS = ["server", "display", "keyboard"] as const;

/** Unpacks `archive` into `dir` with the system's tar (bsdtar on Windows reads zip too). */
async function unpack(archive: string, dir: string): Promise<string> {
  const { code, stderr } = await new Deno.Command("tar", {
    args: ["-xf", archive, "-C", dir],
  }).output();
  if (code !== 0) {
    throw new Error(`tar could not unpack ${archive}: ${new TextDecoder().decode(stderr)}`);
  }
  const [folder] = [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name);
  if (!folder) throw new Error(`${archive} holds no folder`);
  return join(dir, folder);
}

/** The executable of `program` in `folder`. */
function executable(folder: string, program: string): string {
  return join(folder, `wirechat-${program}${Deno.build.os === "windows" ? ".exe" : ""}`);
}

/** One message from a keyboard to a display through a fresh server; TLS when `certs` is given. */
async function exchange(folder: string, certs?: string): Promise<void> {
  const tls = certs
    ? ["--cert", join(certs, "server.crt"), "--key", join(certs, "server.key")]
    : [];
  await using server = new Child("server", [
    executable(folder, "server"),
    ...["--host", "127.0.0.1", "--port", "0", ...tls],
  ], { stdout: false });
  const line = await server.stderr.waitFor(/ listening on \S+:(\d+)/, { ms: 20_000 });
  const port = / listening on \S+:(\d+)/.exec(line)![1];
  const client = [
    ...["--host", certs ? "localhost" : "127.0.0.1", "--port", port],
    ...(certs ? ["--tls", "--ca", join(certs, "root_ca.crt")] : []),
  ];
  await using display = new Child("display", [executable(folder, "display"), ...client]);
  await server.stderr.waitFor(/ identified as display/, { ms: 20_000 });
  await using keyboard = new Child(
    "keyboard",
    [executable(folder, "keyboard"), ...client, "--user", "smoke"],
    { stdin: true },
  );
  await keyboard.write("hello from the release\n").catch(() => {});
  // A keyboard or display that exits fails the test at once, with what it said.
  let settled = false;
  const died = (child: Child) =>
    new Promise<never>((_, reject) => {
      child.status.then(async ({ code }) => {
        await child.stderr.done;
        if (settled) return; // Stopped at the end, as it should be.
        reject(
          new Error(`wirechat-${child.name} exited (${code}): ${child.stderr.tail.join(" ")}`),
        );
      });
    });
  await Promise.race([
    display.stdout.waitFor(/^smoke \d{4}-\d\d-\d\d \d\d:\d\d:\d\d hello from the release$/, {
      ms: 20_000,
    }),
    died(display),
    died(keyboard),
  ]).finally(() => settled = true);
  await keyboard.closeStdin();
}

/** Runs the smoke test; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0].startsWith("-")) {
    throw new UsageError("Give the one archive to test: release_smoke.ts ARCHIVE.");
  }
  const dir = await Deno.makeTempDir({ prefix: "wirechat_smoke_" });
  try {
    const folder = await unpack(args[0], dir);
    for (const program of PROGRAMS) {
      await using version = new Child(program, [executable(folder, program), "--version"]);
      const { code, stdout } = await version.result(20_000);
      if (code !== 0 || !/^wirechat \d+\.\d+\.\d+ \(protocol \d+, Deno /.test(stdout)) {
        throw new Error(`wirechat-${program} --version printed "${stdout.trim()}" (exit ${code})`);
      }
      console.log(`${program}: ${stdout.trim()}`);
    }
    await exchange(folder);
    console.log("plain: one message from keyboard to display");
    const certs = join(dir, "certs");
    await writeThrowawayCerts(certs);
    await exchange(folder, certs);
    console.log("TLS: one message from keyboard to display");
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await runTool(main, Deno.args));
