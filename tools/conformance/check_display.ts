/**
 * `conformance display`: plays the server for a display client. It starts the client (or
 * waits for one started by hand), checks its identify code, sends a script of messages
 * chosen to catch the usual mistakes, and compares each line the client prints with
 * `<username> YYYY-MM-DD HH:mm:ss <text>`.
 *
 * @module
 */

import { encodeFrame, type Message, type Timestamp } from "../../lib/protocol/frame.ts";
import { neutralizeControls } from "../../lib/protocol/sanitize.ts";
import { formatTimestamp } from "../../lib/protocol/time.ts";
import { type Check, type CheckContext, CheckFailure, runCheck, skipped } from "./check.ts";
import { ClientProcess, substitute } from "./client_process.ts";
import { delay, seconds } from "./deadline.ts";
import { hexBytes } from "./hexdump.ts";
import { displayLineHint, identifyHint } from "./hints.ts";
import {
  acceptClient,
  listenForClient,
  MANUAL_START_MS,
  type PlayedServer,
  STARTUP_MS,
} from "./listener.ts";
import type { ClientModeOptions } from "./options.ts";
import { Peer, ReadFailure } from "./peer.ts";
import type { CheckRecord, Reporter } from "./report.ts";

const GROUP = "display";

/** One scripted message (or two, sent together) and the check that judges its line. */
interface Scripted {
  name: string;
  description: string;
  username: string;
  time: Timestamp;
  texts: string[];
  /** How the frames go out: whole, in pieces with pauses, or all in one write. */
  send: "whole" | "pieces" | "together";
}

const at = (
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): Timestamp => ({ year, month, day, hour, minute, second });

const CONTROL_TEXT = "\x1b[2J\x1b[31mowned\x1b[0m\x07 and a bell";
const LONG_TEXT_BYTES = 60000;

/** The script, in sending order. */
function script(nonce: string): Scripted[] {
  const long = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
  const longText = (long.repeat(Math.ceil(LONG_TEXT_BYTES / long.length)) + "")
    .slice(0, LONG_TEXT_BYTES - nonce.length - 5) + ` ${nonce} END`;
  return [
    {
      name: "plain-message",
      description: "a plain ASCII message prints as <username> YYYY-MM-DD HH:mm:ss <text>",
      username: "Jason",
      time: at(2024, 11, 25, 16, 24, 37),
      texts: ["Hello World"],
      send: "whole",
    },
    {
      name: "zero-padding",
      description: "single-digit month, day, hour, minute and second print zero-padded",
      username: "pad",
      time: at(2025, 3, 7, 4, 5, 6),
      texts: ["single digits"],
      send: "whole",
    },
    {
      name: "midnight",
      description: "midnight prints as 00:00:00",
      username: "midnight",
      time: at(2024, 12, 31, 0, 0, 0),
      texts: ["new year's eve"],
      send: "whole",
    },
    {
      name: "utf8",
      description: "multi-byte UTF-8 username and text print as the characters they are",
      username: "Zoë🚀",
      time: at(2024, 12, 15, 12, 30, 45),
      texts: ["héllo wörld — 日本語 🎉"],
      send: "whole",
    },
    {
      name: "empty-text",
      description: "a message with an empty text prints its username and date",
      username: "quiet",
      time: at(2024, 10, 10, 10, 10, 10),
      texts: [""],
      send: "whole",
    },
    {
      name: "control-characters",
      description: "control characters in a text are neutralised, never printed raw",
      username: "mallory",
      time: at(2024, 11, 11, 11, 11, 11),
      texts: [CONTROL_TEXT],
      send: "whole",
    },
    {
      name: "long-text",
      description: `a ${LONG_TEXT_BYTES}-byte text prints whole`,
      username: "long",
      time: at(2024, 12, 12, 12, 12, 12),
      texts: [longText],
      send: "whole",
    },
    {
      name: "split-frame",
      description: "a frame that arrives in pieces prints once, whole",
      username: "split",
      time: at(2024, 10, 20, 20, 20, 20),
      texts: ["arrived in pieces"],
      send: "pieces",
    },
    {
      name: "coalesced-frames",
      description: "two frames that arrive in one read print as two lines",
      username: "twin",
      time: at(2024, 10, 21, 21, 21, 21),
      texts: ["first", "second"],
      send: "together",
    },
  ];
}

type CheckInfo = Pick<Check, "group" | "name" | "description">;

/** The display checks, for --list and --only. */
export function displayCheckList(): CheckInfo[] {
  return [
    {
      group: GROUP,
      name: "connect",
      description: "the display connects (and completes the TLS handshake)",
    },
    { group: GROUP, name: "identify", description: "the display sends 00 00 00 01 first" },
    ...script("").map(({ name, description }) => ({ group: GROUP, name, description })),
  ];
}

/** The line a display must print for a message. */
export function expectedLine(message: Message): string {
  return `${message.username} ${formatTimestamp(message.time)} ${message.text}`;
}

/** Runs the display checks, adding each result to `reporter`. */
export async function checkDisplay(options: ClientModeOptions, reporter: Reporter): Promise<void> {
  const only = options.only ? new Set(options.only) : undefined;
  const report = (record: CheckRecord) => {
    // A failed prerequisite is always shown: it is why the selected checks were skipped.
    const prerequisite = record.name === "connect" || record.name === "identify";
    if (only === undefined || only.has(record.name) || (prerequisite && record.status === "FAIL")) {
      reporter.add(record);
    }
  };
  const messages = script(crypto.randomUUID().slice(0, 8));
  const server = await listenForClient(options);
  let child: ClientProcess | undefined;
  let peer: Peer | undefined;
  try {
    const command = substitute(options.command, {
      host: "127.0.0.1",
      port: String(server.port),
      ca: server.caPath,
    });
    if (command.length > 0) {
      child = ClientProcess.start(command);
    } else {
      console.error(
        `Waiting for a display to connect to 127.0.0.1:${server.port}` +
          (server.caPath ? ` with TLS (trust ${server.caPath})` : "") + "; start it now.",
      );
    }
    const session = await connectAndIdentify(server, child, options, report);
    peer = session.peer;
    if (peer === undefined) {
      for (const m of messages) report(skipped(asCheck(m), session.reason));
      return;
    }
    await deliver(peer, messages, session.littleEndian);
    if (child === undefined) {
      console.error("The display should have printed:");
      for (const m of messages) {
        for (const text of m.texts) {
          const line = neutralizeControls(expectedLine({ ...m, text }));
          console.error(
            line.length <= 100 ? `  ${line}` : `  ${line.slice(0, 60)}… (${line.length} ` +
              `characters in all, ending ${JSON.stringify(line.slice(-20))})`,
          );
        }
      }
      const reason = "started by hand, so the checker cannot read its output: compare it " +
        "with the lines listed above";
      for (const m of messages) report(skipped(asCheck(m), reason));
      return;
    }
    const output = await collectOutput(child, peer, messages, options.timeoutMs);
    for (const m of messages) {
      report(await runCheck({ ...asCheck(m), run: () => judge(m, output, child!) }, 1000));
    }
  } finally {
    peer?.close();
    await child?.stop();
    await server.close();
  }
}

function asCheck(m: Scripted): Check {
  return { group: GROUP, name: m.name, description: m.description, run: async () => {} };
}

/** Runs the connect and identify checks; returns the connection unless it is unusable. */
async function connectAndIdentify(
  server: PlayedServer,
  child: ClientProcess | undefined,
  options: ClientModeOptions,
  report: (record: CheckRecord) => void,
): Promise<{ peer?: Peer; littleEndian: boolean; reason: string }> {
  let conn: Deno.Conn | undefined;
  const waitMs = Math.max(options.timeoutMs, child ? STARTUP_MS : MANUAL_START_MS);
  const connect: Check = {
    ...displayCheckList()[0],
    run: async (ctx) => {
      const arrival = await acceptClient(server, ctx.deadline, child?.exited);
      if (arrival.kind === "connected") {
        conn = arrival.conn;
        return;
      }
      throw arrivalFailure(arrival, child, ctx, server);
    },
  };
  const connected = await runCheck(connect, waitMs);
  report(connected);
  if (conn === undefined) {
    const reason = "the display never connected";
    report(skipped({ ...connect, ...displayCheckList()[1] }, reason));
    return { littleEndian: false, reason };
  }
  const peer = new Peer(conn, "the display");
  let littleEndian = false;
  let closed = false;
  const identify: Check = {
    ...displayCheckList()[1],
    run: async (ctx) => {
      let code: Uint8Array;
      try {
        code = await peer.readExact(4, ctx.deadline);
      } catch (error) {
        if (!(error instanceof ReadFailure)) throw error;
        closed = error.reason !== "timeout";
        throw new CheckFailure(
          error.partial.length > 0
            ? `only ${hexBytes(error.partial)} (${error.partial.length} bytes)`
            : error.reason === "timeout"
            ? `no identify code: no answer within ${seconds(ctx.timeoutMs)}`
            : "the display closed the connection without sending an identify code",
          {
            expected: "00 00 00 01 (DISPLAY, big-endian)",
            hint: identifyHint(error.partial, 1),
          },
        );
      }
      if (code[0] === 1 && code[1] === 0 && code[2] === 0 && code[3] === 0) {
        littleEndian = true;
        return {
          warning: "the display identified little-endian (01 00 00 00): the brief's protocol is " +
            "big-endian, and a server without PROTOCOL.md's little-endian extension closes this " +
            "display. The messages below are sent little-endian.",
        };
      }
      if (!(code[0] === 0 && code[1] === 0 && code[2] === 0 && code[3] === 1)) {
        throw new CheckFailure(hexBytes(code), {
          expected: "00 00 00 01 (DISPLAY, big-endian)",
          hint: identifyHint(code, 1),
        });
      }
      return undefined;
    },
  };
  report(await runCheck(identify, options.timeoutMs));
  if (closed) {
    peer.close();
    return { littleEndian, reason: "the display closed its connection" };
  }
  return { peer, littleEndian, reason: "" };
}

function arrivalFailure(
  arrival: Exclude<Awaited<ReturnType<typeof acceptClient>>, { kind: "connected" }>,
  child: ClientProcess | undefined,
  ctx: CheckContext,
  server: PlayedServer,
): CheckFailure {
  const expected = `a connection to 127.0.0.1:${server.port}${server.tls ? " with TLS" : ""}`;
  if (arrival.kind === "tls-failed") {
    return new CheckFailure(`the TLS handshake failed: ${arrival.message}`, {
      expected,
      hint: "the client must connect with TLS and trust the CA file given as {ca}" +
        (/corrupt|InvalidContentType|version/i.test(arrival.message)
          ? " (these bytes were not TLS: is the client speaking plain TCP?)"
          : ""),
    });
  }
  const stderr = child?.stderrTail();
  const got = arrival.kind === "exited"
    ? `the client ${child!.describeExit()} before connecting`
    : `no connection: no answer within ${seconds(ctx.timeoutMs)} (the client ${
      child?.describeExit() ?? "was started by hand"
    })`;
  return new CheckFailure(got + (stderr ? `; its stderr ends with:\n${stderr}` : ""), {
    expected,
    hint: "put {host} and {port} in the command where your client takes the server's " +
      "address, e.g. ... -- python3 display.py {host} {port}",
  });
}

/** Sends the script: whole frames, one split into pieces, two in one write. */
async function deliver(peer: Peer, messages: Scripted[], littleEndian: boolean): Promise<void> {
  try {
    for (const m of messages) {
      const frames = m.texts.map((text) =>
        encodeFrame({ username: m.username, time: m.time, text }, { littleEndian })
      );
      if (m.send === "pieces") {
        const frame = frames[0];
        for (const [from, to] of [[0, 2], [2, 10], [10, 25], [25, frame.length]]) {
          await peer.write(frame.subarray(from, to));
          await delay(30);
        }
      } else {
        await peer.write(new Uint8Array(frames.flatMap((f) => [...f])));
      }
    }
  } catch {
    // The display hung up; its output (or the lack of it) tells the rest.
  }
}

/** What the display printed, in lines, and how it ended. */
interface Output {
  lines: string[];
  /** How the display ended, when it exited before the checker closed the connection. */
  earlyExit?: string;
}

/**
 * Waits until a line for every message has appeared (or the time is up), then closes the
 * connection, as the server going away, and lets the client exit.
 */
async function collectOutput(
  child: ClientProcess,
  peer: Peer,
  messages: Scripted[],
  timeoutMs: number,
): Promise<Output> {
  const last = messages[messages.length - 1];
  const wanted = messages.reduce((n, m) => n + m.texts.length, 0);
  await child.waitForOutput((stdout) => {
    const lines = stdout.split("\n");
    const lastLines = lines.filter((l) => l.startsWith(`${last.username} `)).length;
    return lastLines >= last.texts.length || lines.length > wanted + 20;
  }, Date.now() + timeoutMs);
  await delay(100);
  const earlyExit = child.status ? child.describeExit() : undefined;
  peer.close();
  await child.waitForOutput(() => false, Date.now() + 1000);
  await child.stop();
  const lines = child.stdoutText().split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  if (lines[lines.length - 1] === "") lines.pop();
  return { lines, earlyExit };
}

/** Matches the script to the printed lines: by username, else by position. */
function findLines(m: Scripted, output: Output): (string | undefined)[] {
  const all = script("");
  const knownStart = (line: string) => all.some((s) => line.startsWith(`${s.username} `));
  const order = all.findIndex((s) => s.name === m.name);
  const found: (string | undefined)[] = [];
  let cursor = 0;
  // Walk the script up to this message so that positions line up with earlier matches.
  for (const s of all.slice(0, order + 1)) {
    for (let i = 0; i < s.texts.length; i++) {
      let index = output.lines.findIndex((l, j) => j >= cursor && l.startsWith(`${s.username} `));
      if (index < 0) {
        index = output.lines.findIndex((l, j) => j >= cursor && !knownStart(l) && l.trim() !== "");
      }
      if (index >= 0) cursor = index + 1;
      if (s.name === m.name) found.push(index >= 0 ? output.lines[index] : undefined);
    }
  }
  return found;
}

// deno-lint-ignore no-control-regex -- finding raw control characters is the point
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/;

/** Judges the line(s) printed for one scripted message. */
function judge(m: Scripted, output: Output, child: ClientProcess): Promise<void> {
  const lines = findLines(m, output);
  for (const [i, text] of m.texts.entries()) {
    const message: Message = { username: m.username, time: m.time, text };
    const want = expectedLine(message);
    const got = lines[i];
    if (got === undefined) throw missingLine(m, want, output, child);
    if (m.name === "control-characters") {
      judgeControls(message, got);
      continue;
    }
    if (got === want || (text === "" && got === want.trimEnd())) continue;
    throw new CheckFailure(show(got), {
      expected: show(want),
      hint: displayLineHint(message, got) ?? diffHint(want, got),
    });
  }
  return Promise.resolve();
}

function judgeControls(message: Message, got: string): void {
  const prefix = `${message.username} ${formatTimestamp(message.time)} `;
  const want = `${prefix}${neutralizeControls(message.text)}`;
  if (got.includes("\x1b")) {
    const at = got.indexOf("\x1b") + 1;
    throw new CheckFailure(`a raw ESC (0x1b) reached stdout, at character ${at}: ${show(got)}`, {
      expected: `control characters neutralised, e.g. ${show(want)}`,
      hint: "printing a raw ESC lets any user drive everyone's terminal (clear it, recolour " +
        "it, retitle it, worse): escape control characters before printing, as \\x1b " +
        "(PROTOCOL.md §8)",
    });
  }
  if (RAW_CONTROL.test(got)) {
    const c = RAW_CONTROL.exec(got)![0].charCodeAt(0);
    throw new CheckFailure(
      `a raw control character 0x${c.toString(16).padStart(2, "0")} reached stdout, at ` +
        `character ${got.search(RAW_CONTROL) + 1}: ${show(got)}`,
      {
        expected: `control characters neutralised, e.g. ${show(want)}`,
        hint: "escape every control character before printing (PROTOCOL.md §8)",
      },
    );
  }
  if (!got.startsWith(prefix) || !got.includes("owned")) {
    throw new CheckFailure(show(got), {
      expected: `${show(want)} (or the controls neutralised some other visible way)`,
      hint: displayLineHint(message, got),
    });
  }
}

function missingLine(
  m: Scripted,
  want: string,
  output: Output,
  child: ClientProcess,
): CheckFailure {
  const printed = output.lines.length;
  const stderr = child.stderrTail(4);
  const tail = stderr ? `; its stderr ends with:\n${stderr}` : "";
  if (output.earlyExit !== undefined) {
    // The cause comes first: the process is gone, whichever line is missing.
    const got = `the display ${output.earlyExit} while the checker was still sending, before ` +
      `printing this line (it printed ${printed} line(s) in all)${tail}`;
    return new CheckFailure(got, { expected: show(want), hint: crashHint(m) });
  }
  const exit = child.describeExit();
  const got =
    `no line for this message (the display printed ${printed} line(s) in all and ${
      exit === "is still running" ? "was still running" : exit
    })` + tail;
  let hint: string;
  if (printed === 0) {
    hint = "nothing reached stdout: print one line per message as it arrives, and flush " +
      "(print(..., flush=True), fflush(stdout)); output to a pipe is block-buffered";
  } else if (m.name === "long-text") {
    hint = `a ${
      LONG_TEXT_BYTES + 36 + m.username.length
    }-byte frame takes several recv() calls: loop until all overall_length bytes are there`;
  } else if (m.name === "split-frame") {
    hint = "this frame arrived in four pieces: keep the bytes of an incomplete frame and wait " +
      "for the rest, never assume one recv() is one frame";
  } else if (m.name === "coalesced-frames") {
    hint = "both frames arrived in one read: after a frame, handle the bytes left in the " +
      "buffer as the start of the next one";
  } else {
    hint = child.status && !child.status.success
      ? "the display stopped early: did it crash on this message?"
      : "every message must print one line";
  }
  return new CheckFailure(got, { expected: show(want), hint });
}

/** The hint for a line missing because the display had ended: its stderr says why. */
function crashHint(m: Scripted): string {
  const specific: Record<string, string> = {
    "long-text": "this was a 60000-byte frame, which takes several recv() calls",
    "split-frame": "this frame arrived in four pieces: a recv() may return part of a frame",
    "coalesced-frames": "these two frames arrived in one read",
  };
  return "the display ended before it had printed every message: its exit status and stderr " +
    "above tell why (a crash on a message shows a traceback or an error there)" +
    (specific[m.name] ? `; ${specific[m.name]}` : "");
}

function diffHint(want: string, got: string): string {
  let i = 0;
  while (i < want.length && want[i] === got[i]) i++;
  return `the line differs from character ${i + 1} on: expected ${
    show(want.slice(i, i + 20))
  }, got ${show(got.slice(i, i + 20))}`;
}

/**
 * A line for a report, quoted, in the notation a display must print: control characters as
 * `\x1b`-style escapes and nothing else escaped, so that expected and got read alike (JSON
 * quoting would double the expected line's backslashes and write a raw ESC as \u001b).
 * Long lines are shortened.
 */
function show(line: string): string {
  const short = line.length > 120 ? `${line.slice(0, 80)}…${line.slice(-30)}` : line;
  return `"${neutralizeControls(short)}"${line.length > 120 ? ` (${line.length} characters)` : ""}`;
}
