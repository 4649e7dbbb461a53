/**
 * A process's memory, descriptors and CPU time, read from /proc where there is one (on Linux a
 * failed read is an error, never a skipped check).
 *
 * Deno asks for --allow-all to read another process's /proc files, so they are read through
 * `cat` and `ls` instead, which only need --allow-run=cat,ls.
 *
 * @module
 */

const decoder = new TextDecoder();

/** A process's memory, descriptors and CPU time, from /proc. */
export interface ProcStats {
  /** Peak resident set size (VmHWM), KiB. */
  peakRssKiB: number;
  /** Current resident set size (VmRSS), KiB. */
  rssKiB: number;
  /** Open file descriptors. */
  fds: number;
  /** User + system CPU time, seconds. */
  cpuSeconds: number;
}

/** Whether this system has /proc with per-process status files (Linux). */
export function hasProc(): boolean {
  return Deno.build.os === "linux";
}

/**
 * Reads a process's /proc entries through `cat` and `ls`. Undefined where there is no /proc
 * (not Linux); on Linux a read that fails (the process is gone, `cat` cannot run) throws, so
 * that a check which needs the figures fails rather than being skipped.
 */
export async function procStats(pid: number): Promise<ProcStats | undefined> {
  if (!hasProc()) return undefined;
  const run = async (program: string, args: string[]) => {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(program, {
        args,
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new Error(`cannot read /proc/${pid}: running ${program} failed: ${error}`);
    }
    if (output.code !== 0) {
      const why = decoder.decode(output.stderr).trim().split("\n")[0];
      throw new Error(`cannot read /proc/${pid}: ${program} ${args.join(" ")}: ${why}`);
    }
    return decoder.decode(output.stdout);
  };
  const [status, fds, stat] = await Promise.all([
    run("cat", [`/proc/${pid}/status`]),
    run("ls", [`/proc/${pid}/fd`]),
    run("cat", [`/proc/${pid}/stat`]),
  ]);
  const kib = (name: string) => {
    const value = Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    if (!Number.isFinite(value)) throw new Error(`/proc/${pid}/status has no ${name} line`);
    return value;
  };
  // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`/proc/${pid}/stat has no CPU times`);
  return {
    peakRssKiB: kib("VmHWM"),
    rssKiB: kib("VmRSS"),
    fds: fds.split("\n").filter((name) => name !== "").length,
    cpuSeconds: ticks / 100,
  };
}
