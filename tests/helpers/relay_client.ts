/**
 * What the reliability tests share: the real server as a process, frames to send, and the
 * two connection paths. Their protocol client is the tests' one (RawClient.open in raw_client.ts).
 *
 * @module
 */

import { readUntilClosed, type Target } from "../../tools/soak/net.ts";
import { ServerProcess } from "../../tools/harness/server_process.ts";
import { frameOf } from "./raw_client.ts";

/** The repository. */
export const ROOT = new URL("../../", import.meta.url).pathname;
export const LINUX = Deno.build.os === "linux";

/** A frame stamped with the tests' fixed time (raw_client.ts). */
export const frame = frameOf;

export function frames(count: number, username: string, size = 10): Uint8Array {
  const one = (i: number) => frame(username, `${i}:${"x".repeat(size)}`);
  const all = Array.from({ length: count }, (_, i) => one(i));
  const out = new Uint8Array(all.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const f of all) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** Reads whatever comes until the server closes the connection; says how and when. */
export async function closedBy(conn: Deno.Conn, ms: number): Promise<{ how: string; ms: number }> {
  const ending = await readUntilClosed(conn, ms);
  return { how: ending.how, ms: ending.ms };
}

export async function startServer(args: string[], endpoints = 1): Promise<ServerProcess> {
  return await ServerProcess.start(args, { listeners: endpoints });
}

export const plainOf = (server: ServerProcess): Target => ({
  port: server.endpoints[0].port,
  tls: false,
});

/** The two ways the server can hold a connection; tests of the connection code try both. */
export const PATHS = [
  { label: "native sockets", args: [] as string[] },
  { label: "--no-native-sockets", args: ["--no-native-sockets"] },
];
