/**
 * The web rows of `deno task bench` (issue 13): one sender and 100 or 1,000 WebSocket
 * receivers, flood (deliveries/s) and paced (p99 latency), against wirechat's gateway
 * (`--web`) and a minimal broadcast server on Node's ws package (ws_peer/, installed with
 * `npm ci` when missing), alternated round by round; the median round is reported. The load
 * generator is ws_load.ts, a process of its own.
 *
 * @module
 */

import { ServerProcess } from "../harness/server_process.ts";
import { commandWorks } from "./machine.ts";
import { denoPath } from "../harness/deno_tasks.ts";

/** What one generator run reports. */
interface WsLoad {
  delivered: number;
  seconds: number;
  deliveriesPerSecond: number;
  p50: number | null;
  p99: number | null;
}

/** One web row: a peer, a mode, a receiver count, the median round. */
export interface WebRow {
  server: "wirechat-web" | "node-ws";
  mode: "flood" | "paced";
  receivers: number;
  deliveriesPerSecond: number;
  p99: number | null;
  rounds: number;
}

const PEER_DIR = new URL("./ws_peer/", import.meta.url);
const LOAD = new URL("./ws_load.ts", import.meta.url).pathname;

/** Installs the ws peer's pinned package when missing; a reason when it cannot. */
async function preparePeer(): Promise<string | undefined> {
  if (!(await commandWorks("node", ["--version"]))) return "node not installed; skipped";
  try {
    await Deno.stat(new URL("node_modules/ws/package.json", PEER_DIR));
    return undefined;
  } catch {
    // Not installed yet.
  }
  const { code } = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund"],
    cwd: PEER_DIR,
    stdout: "null",
    stderr: "inherit",
  }).output();
  return code === 0 ? undefined : "npm ci failed in tools/bench/ws_peer; skipped";
}

/** Starts the Node peer; resolves with its port and a stop function. */
async function startPeer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const child = new Deno.Command("node", {
    args: ["server.mjs", "0"],
    cwd: PEER_DIR,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/listening on \S+:(\d+)/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the ws peer exited before listening");
    seen += value;
  }
  const port = Number(/listening on \S+:(\d+)/.exec(seen)![1]);
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

async function generate(
  url: string,
  mode: string,
  receivers: number,
  seconds: number,
  gateway: boolean,
): Promise<WsLoad> {
  const args = [
    "run",
    "--allow-net=127.0.0.1",
    LOAD,
    "--url",
    url,
    "--receivers",
    String(receivers),
    "--seconds",
    String(seconds),
    "--mode",
    mode,
    ...(gateway ? ["--gateway"] : []),
  ];
  const { code, stdout, stderr } = await new Deno.Command(denoPath(), {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`ws_load failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
}

function median<T>(values: T[], key: (v: T) => number): T {
  const sorted = [...values].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Runs the web rows; returns them, or a reason they were skipped. `quick`: one round of
 * shorter runs.
 */
export async function runWebRows(quick: boolean): Promise<WebRow[] | string> {
  const missing = await preparePeer();
  if (missing) return missing;
  const rounds = quick ? 1 : 3;
  const rows: WebRow[] = [];
  for (const receivers of [100, 1000]) {
    for (const mode of ["flood", "paced"] as const) {
      const seconds = mode === "flood" ? (quick ? 2 : 3) : (quick ? 3 : 5);
      const results: Record<WebRow["server"], WsLoad[]> = { "wirechat-web": [], "node-ws": [] };
      for (let round = 0; round < rounds; round++) {
        {
          await using server = await ServerProcess.start(["--web", "127.0.0.1:0"], {
            listeners: 2,
            keepLog: false,
          });
          const url = `ws://127.0.0.1:${server.portOf("web chat")}/ws`;
          results["wirechat-web"].push(await generate(url, mode, receivers, seconds, true));
        }
        const peer = await startPeer();
        try {
          const url = `ws://127.0.0.1:${peer.port}/`;
          results["node-ws"].push(await generate(url, mode, receivers, seconds, false));
        } finally {
          await peer.stop();
        }
      }
      for (const server of ["wirechat-web", "node-ws"] as const) {
        const list = results[server];
        const pick = mode === "flood"
          ? median(list, (r) => r.deliveriesPerSecond)
          : median(list, (r) => r.p99 ?? 0);
        rows.push({
          server,
          mode,
          receivers,
          deliveriesPerSecond: pick.deliveriesPerSecond,
          p99: mode === "paced" ? pick.p99 : null,
          rounds,
        });
        console.log(`# web ${mode} 1x${receivers} ${server}: ${describe(rows.at(-1)!)}`);
      }
    }
  }
  return rows;
}

function describe(row: WebRow): string {
  return row.mode === "flood"
    ? `${Math.round(row.deliveriesPerSecond)} deliveries/s`
    : `p99 ${row.p99?.toFixed(1)} ms`;
}

/** The web rows as a markdown table, and the targets against the ws peer and TCP. */
export function webReport(rows: WebRow[], tcpFlood100?: number): string[] {
  const lines = [
    "| scenario | server | deliveries/s | paced p99 (ms) | rounds |",
    "| -------- | ------ | -----------: | -------------: | -----: |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.mode} 1x${r.receivers} WebSocket | ${r.server} | ${
        Math.round(r.deliveriesPerSecond)
      } | ${r.p99 === null ? "" : r.p99.toFixed(1)} | ${r.rounds} |`,
    );
  }
  lines.push("");
  const find = (server: string, mode: string, n: number) =>
    rows.find((r) => r.server === server && r.mode === mode && r.receivers === n);
  for (const n of [100, 1000]) {
    const ours = find("wirechat-web", "flood", n);
    const theirs = find("node-ws", "flood", n);
    if (ours && theirs) {
      const ratio = ours.deliveriesPerSecond / theirs.deliveriesPerSecond;
      lines.push(
        `- ${ratio >= 1 ? "MET " : "MISS"} flood 1x${n}: wirechat-web ${
          ratio.toFixed(2)
        }x node-ws deliveries/s (goal >= 1.0x)`,
      );
    }
    const oursP = find("wirechat-web", "paced", n);
    const theirsP = find("node-ws", "paced", n);
    if (oursP?.p99 && theirsP?.p99) {
      const ratio = oursP.p99 / theirsP.p99;
      lines.push(
        `- ${ratio <= 1.2 ? "MET " : "MISS"} paced 1x${n}: wirechat-web p99 ${
          ratio.toFixed(2)
        }x node-ws (goal <= 1.2x)`,
      );
    }
  }
  const web100 = find("wirechat-web", "flood", 100);
  if (web100 && tcpFlood100) {
    const ratio = web100.deliveriesPerSecond / tcpFlood100;
    lines.push(
      `- ${ratio >= 0.5 ? "MET " : "MISS"} flood 1x100: WebSocket ${
        ratio.toFixed(2)
      }x wirechat's TCP fan-out (${Math.round(tcpFlood100)}/s; goal >= 0.5x)`,
    );
  }
  return lines;
}
