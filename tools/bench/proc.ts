/**
 * A process's CPU time and memory from Linux's /proc, for the benchmark's figures.
 *
 * Deno lets a program read /proc only with --allow-all, so these readers ask `cat` for the
 * files instead (--allow-run=cat): a few milliseconds per sample, taken only at the edges of
 * a measuring window. Every reader returns null where /proc is missing or the process has
 * gone.
 *
 * @module
 */

/** USER_HZ: the unit of /proc/PID/stat times, 100 on every Linux architecture Deno runs on. */
const TICKS_PER_SECOND = 100;

/** The text of some /proc files, concatenated; null if any is missing. */
export async function readProc(...paths: string[]): Promise<string | null> {
  try {
    const { success, stdout } = await new Deno.Command("cat", {
      args: paths,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout) : null;
  } catch {
    return null;
  }
}

/** User plus system CPU seconds of every thread, from the text of /proc/PID/stat. */
export function parseCpuSeconds(stat: string): number | null {
  const line = stat.split("\n").find((l) => l.includes(") "));
  if (!line) return null;
  // The command name may hold spaces and parentheses: count fields from the last ")".
  const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : null;
}

/** Resident memory now and at its peak, in KiB, from the text of /proc/PID/status. */
export function parseMemoryKiB(status: string): { rss: number; peak: number } | null {
  const field = (name: string) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, "m"))?.[1]);
  const rss = field("VmRSS");
  const peak = field("VmHWM");
  return Number.isFinite(rss) && Number.isFinite(peak) ? { rss, peak } : null;
}

/** A process's CPU seconds so far and its memory, or null when it has gone. */
export interface ProcessSample {
  cpuSeconds: number;
  rssKiB: number;
  peakRssKiB: number;
}

/** Samples `pid` from /proc. */
export async function sampleProcess(pid: number): Promise<ProcessSample | null> {
  const text = await readProc(`/proc/${pid}/stat`, `/proc/${pid}/status`);
  if (text === null) return null;
  const cpu = parseCpuSeconds(text);
  const memory = parseMemoryKiB(text);
  if (cpu === null || memory === null) return null;
  return { cpuSeconds: cpu, rssKiB: memory.rss, peakRssKiB: memory.peak };
}

/** Whether a /proc/net/tcp{,6} table shows a socket listening on `port`. */
export function tableListens(table: string, port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return table.split("\n").some((line) => {
    const cols = line.trim().split(/\s+/);
    // cols[1] is the local address:port, cols[3] the state; 0A is LISTEN.
    return cols[3] === "0A" && cols[1]?.endsWith(hexPort) === true;
  });
}

/** Whether something listens on TCP `port` on this machine. */
export async function isListening(port: number): Promise<boolean> {
  const table = await readProc("/proc/net/tcp");
  return table !== null && tableListens(table, port);
}
