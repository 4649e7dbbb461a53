/**
 * The web rows of `deno task bench` (issue 13): one sender and 100 or 1,000 WebSocket
 * receivers, flood (deliveries/s) and paced (p99 latency), against wirechat's gateway
 * (`--web`) and a minimal broadcast server on Node's ws package (ws_peer/, installed with
 * `npm ci` when missing), alternated round by round; the median round is reported. The load
 * generator is ws_load.ts, a process of its own. Two more rows flood 100 receivers from a TCP
 * keyboard, as the TCP rows do: WebSocket receivers, and TCP displays (`wirechat-tcp`), from
 * the same generator in the same rounds, to set the WebSocket fan-out beside the TCP one.
 * wirechat runs with `--keyboard-rate 0`, as in the TCP rows: the ws peer has no flood control.
 *
 * @module
 */

import { ServerProcess } from "../harness/server_process.ts";
import { commandWorks, type Environment, wrap } from "./machine.ts";
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
  /** wirechat-tcp: the receivers are TCP displays. */
  server: "wirechat-web" | "node-ws" | "wirechat-tcp";
  /** "flood-tcp": the sender is a TCP keyboard (wirechat only). */
  mode: "flood" | "paced" | "flood-tcp";
  receivers: number;
  deliveriesPerSecond: number;
  p99: number | null;
  rounds: number;
}

const PEER_DIR = new URL("./ws_peer/", import.meta.url);
const LOAD = new URL("./ws_load.ts", import.meta.url).pathname;
const PEER_SCRIPT = new URL("server.mjs", PEER_DIR).pathname;

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

/** Descriptors a server or the generator may need: every receiver, and some to spare. */
const files = (receivers: number) => receivers + 64;

async function generate(
  env: Environment,
  url: string,
  mode: string,
  receivers: number,
  seconds: number,
  gateway: boolean,
  tcp?: { port: number; displays: boolean },
): Promise<WsLoad> {
  // The generator on CPU 1, the server on CPU 0 (where taskset is), as in the TCP rows.
  const command = wrap(env, 1, files(receivers), [denoPath()]);
  const args = [
    ...command.slice(1),
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
    ...(tcp ? ["--tcp-keyboard", String(tcp.port)] : []),
    ...(tcp?.displays ? ["--tcp-displays"] : []),
  ];
  const { code, stdout, stderr } = await new Deno.Command(command[0], {
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
export async function runWebRows(
  quick: boolean,
  env: Environment,
): Promise<WebRow[] | string> {
  const missing = await preparePeer();
  if (missing) return missing;
  const rounds = quick ? 1 : 3;
  // A p99 is the noisiest figure: the paced rows take five rounds, as the TCP ones do.
  const pacedRounds = quick ? 1 : 5;
  const rows: WebRow[] = [];
  const startServer = (receivers: number) =>
    ServerProcess.start(["--web", "127.0.0.1:0", "--keyboard-rate", "0"], {
      listeners: 2,
      keepLog: false,
      wrapper: wrap(env, 0, files(receivers), []),
    });
  const startPeer = (receivers: number) =>
    ServerProcess.start([], {
      command: [...wrap(env, 0, files(receivers), ["node", PEER_SCRIPT, "0"])],
      keepLog: false,
    });
  for (const receivers of [100, 1000]) {
    for (const mode of ["flood", "paced"] as const) {
      const seconds = mode === "flood" ? (quick ? 2 : 3) : (quick ? 3 : 5);
      const results: Record<"wirechat-web" | "node-ws", WsLoad[]> = {
        "wirechat-web": [],
        "node-ws": [],
      };
      for (let round = 0; round < (mode === "paced" ? pacedRounds : rounds); round++) {
        {
          await using server = await startServer(receivers);
          const url = `ws://127.0.0.1:${server.portOf("web chat")}/ws`;
          results["wirechat-web"].push(await generate(env, url, mode, receivers, seconds, true));
        }
        await using peer = await startPeer(receivers);
        const url = `ws://127.0.0.1:${peer.portOf({ tls: false })}/`;
        results["node-ws"].push(await generate(env, url, mode, receivers, seconds, false));
      }
      for (const server of ["wirechat-web", "node-ws"] as const) {
        rows.push(pickRow(server, mode, receivers, results[server]));
      }
    }
  }
  const viaTcp: Record<"wirechat-web" | "wirechat-tcp", WsLoad[]> = {
    "wirechat-web": [],
    "wirechat-tcp": [],
  };
  for (let round = 0; round < rounds; round++) {
    for (const server of ["wirechat-web", "wirechat-tcp"] as const) {
      await using relay = await startServer(100);
      const url = `ws://127.0.0.1:${relay.portOf("web chat")}/ws`;
      const tcp = { port: relay.portOf("full server"), displays: server === "wirechat-tcp" };
      viaTcp[server].push(await generate(env, url, "flood", 100, quick ? 2 : 3, true, tcp));
    }
  }
  rows.push(pickRow("wirechat-web", "flood-tcp", 100, viaTcp["wirechat-web"]));
  rows.push(pickRow("wirechat-tcp", "flood-tcp", 100, viaTcp["wirechat-tcp"]));
  return rows;
}

/** The median round of one server's results, as a row, logged as it is made. */
function pickRow(
  server: WebRow["server"],
  mode: WebRow["mode"],
  receivers: number,
  list: WsLoad[],
): WebRow {
  const paced = mode === "paced";
  const pick = paced ? median(list, (r) => r.p99 ?? 0) : median(list, (r) => r.deliveriesPerSecond);
  const row: WebRow = {
    server,
    mode,
    receivers,
    deliveriesPerSecond: pick.deliveriesPerSecond,
    p99: paced ? pick.p99 : null,
    rounds: list.length,
  };
  console.log(`# web ${mode} 1x${receivers} ${server}: ${describe(row)}`);
  return row;
}

function describe(row: WebRow): string {
  return row.mode !== "paced"
    ? `${Math.round(row.deliveriesPerSecond)} deliveries/s`
    : `p99 ${row.p99?.toFixed(1)} ms`;
}

/** The web rows as a markdown table, and the targets against the ws peer and TCP. */
export function webReport(rows: WebRow[]): string[] {
  const lines = [
    "| scenario | server | deliveries/s | paced p99 (ms) | rounds |",
    "| -------- | ------ | -----------: | -------------: | -----: |",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.mode === "flood-tcp" ? "flood" : r.mode} 1x${r.receivers} ${
        r.server === "wirechat-tcp" ? "TCP displays" : "WebSocket"
      }${r.mode === "flood-tcp" ? ", TCP keyboard" : ""} | ${r.server} | ${
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
  const web100 = find("wirechat-web", "flood-tcp", 100);
  const tcp100 = find("wirechat-tcp", "flood-tcp", 100);
  if (web100 && tcp100) {
    const ratio = web100.deliveriesPerSecond / tcp100.deliveriesPerSecond;
    lines.push(
      `- ${ratio >= 0.5 ? "MET " : "MISS"} flood 1x100 from a TCP keyboard: WebSocket receivers ${
        ratio.toFixed(2)
      }x TCP displays (goal >= 0.5x)`,
    );
  }
  return lines;
}
