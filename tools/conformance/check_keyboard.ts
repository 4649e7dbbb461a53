/**
 * `conformance keyboard`: plays the server for a keyboard client. It starts the client, types
 * a username line and then lines of text into its stdin (plain, multi-byte, about 1000
 * bytes), closes stdin, and checks the identify code and every frame that arrives: byte
 * order, lengths, username, text and timestamp.
 *
 * @module
 */

import { formatTimestamp, localTimestamp } from "../../lib/protocol/time.ts";
import { type Check, CheckFailure, runCheck, skipped } from "./check.ts";
import { ClientProcess, substitute } from "./client_process.ts";
import { delay, seconds } from "./deadline.ts";
import { dumpBytes, dumpFrame, hexBytes } from "./hexdump.ts";
import {
  BIG_ENDIAN_ADVICE,
  characterCountHint,
  identifyHint,
  overallLengthHint,
  timestampHint,
} from "./hints.ts";
import {
  analyzeKeyboardStream,
  type FoundFrame,
  type KeyboardAnalysis,
} from "./keyboard_analysis.ts";
import { acceptClient, listenForClient, STARTUP_MS } from "./listener.ts";
import type { ClientModeOptions } from "./options.ts";
import { Peer } from "./peer.ts";
import type { CheckRecord, Reporter } from "./report.ts";

const GROUP = "keyboard";
const lenient = new TextDecoder("utf-8", { fatal: false });

/** The lines typed after the username, in order. */
export function typedLines(): string[] {
  const fox = "The quick brown fox jumps over the lazy dog. ";
  return [
    "Hello World",
    "héllo wörld — 日本語 🎉",
    (fox.repeat(23)).slice(0, 996) + " END",
    "last line",
  ];
}

/** Slack around the typing window for the timestamp check. */
const CLOCK_SLACK_MS = 3000;

type CheckInfo = Pick<Check, "group" | "name" | "description">;

const CHECKS: CheckInfo[] = [
  ["connect", "the keyboard connects (and completes the TLS handshake)"],
  ["identify", "the keyboard sends 00 00 00 02 first"],
  ["byte-order", "every int32 of every frame is in the identify code's byte order"],
  ["overall-length", "overall_length is 32 + ulen + tlen"],
  ["byte-lengths", "ulen and tlen count UTF-8 bytes, not characters"],
  ["username", "every frame carries the username, exactly"],
  ["text", "each typed line is one frame whose text is the line, exactly, in order"],
  ["timestamp", "the time is the local wall-clock time the line was sent"],
].map(([name, description]) => ({ group: GROUP, name, description }));

/** The keyboard checks, for --list and --only. */
export function keyboardCheckList(): CheckInfo[] {
  return CHECKS;
}

/** What one session with the keyboard produced. */
interface Session {
  analysis: KeyboardAnalysis;
  username: string;
  lines: string[];
  startedAt: number;
  endedAt: number;
  child: ClientProcess;
}

/** Runs the keyboard checks, adding each result to `reporter`. */
export async function checkKeyboard(options: ClientModeOptions, reporter: Reporter): Promise<void> {
  const only = options.only ? new Set(options.only) : undefined;
  const report = (record: CheckRecord) => {
    const prerequisite = record.name === "connect";
    if (only === undefined || only.has(record.name) || (prerequisite && record.status === "FAIL")) {
      reporter.add(record);
    }
  };
  const server = await listenForClient(options);
  let child: ClientProcess | undefined;
  let peer: Peer | undefined;
  try {
    const command = substitute(options.command, {
      host: "127.0.0.1",
      port: String(server.port),
      ca: server.caPath,
      user: options.user,
    });
    child = ClientProcess.start(command, { stdin: true });
    await child.type(`${options.user}\n`);
    let conn: Deno.Conn | undefined;
    const connect: Check = {
      ...CHECKS[0],
      run: async (ctx) => {
        const arrival = await acceptClient(server, ctx.deadline, child!.exited);
        if (arrival.kind === "connected") {
          conn = arrival.conn;
          return;
        }
        const stderr = child!.stderrTail();
        throw new CheckFailure(
          arrival.kind === "tls-failed"
            ? `the TLS handshake failed: ${arrival.message}`
            : arrival.kind === "exited"
            ? `the client ${child!.describeExit()} before connecting` +
              (stderr ? `; its stderr ends with:\n${stderr}` : "")
            : `no connection: no answer within ${seconds(ctx.timeoutMs)} (the client ${
              child!.describeExit()
            })` +
              (stderr ? `; its stderr ends with:\n${stderr}` : ""),
          {
            expected: `a connection to 127.0.0.1:${server.port}${server.tls ? " with TLS" : ""}`,
            hint: arrival.kind === "tls-failed"
              ? "the client must connect with TLS and trust the CA file given as {ca}"
              : "put {host} and {port} in the command where your client takes the server's " +
                "address; the checker types the username as the first line of input",
          },
        );
      },
    };
    report(await runCheck(connect, Math.max(options.timeoutMs, STARTUP_MS)));
    if (conn === undefined) {
      for (const info of CHECKS.slice(1)) {
        report(skipped({ ...connect, ...info }, "the keyboard never connected"));
      }
      return;
    }
    peer = new Peer(conn, "the keyboard");
    const session = await type(child, peer, options);
    for (const info of CHECKS.slice(1)) {
      const judge = JUDGES[info.name];
      report(await runCheck({ ...info, run: () => Promise.resolve(judge(session)) }, 1000));
    }
  } finally {
    peer?.close();
    await child?.stop();
    await server.close();
  }
}

/** Types the lines, closes stdin, and collects what arrives until the keyboard is done. */
async function type(
  child: ClientProcess,
  peer: Peer,
  options: ClientModeOptions,
): Promise<Session> {
  const lines = typedLines();
  const startedAt = Date.now();
  for (const line of lines) {
    await child.type(`${line}\n`);
    await delay(20);
  }
  await child.closeStdin();
  const deadline = Date.now() + options.timeoutMs;
  let seen = -1;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    if (await peer.closedBy(Math.min(deadline, Date.now() + 200))) break;
    if (peer.received !== seen) {
      seen = peer.received;
      quietSince = Date.now();
    } else if (Date.now() - quietSince > 1000 && (seen > 0 || child.status !== undefined)) {
      break;
    }
  }
  const endedAt = Date.now();
  const stream = peer.unread();
  const analysis = analyzeKeyboardStream(stream, { username: options.user, lines });
  return { analysis, username: options.user, lines, startedAt, endedAt, child };
}

type Judge = (session: Session) => void | { warning: string };

const JUDGES: Record<string, Judge> = {
  identify: judgeIdentify,
  "byte-order": judgeByteOrder,
  "overall-length": (s) => forEachFrame(s, judgeOverall),
  "byte-lengths": (s) => forEachFrame(s, judgeLengths),
  username: (s) => forEachFrame(s, judgeUsername),
  text: judgeText,
  timestamp: (s) => forEachFrame(s, judgeTimestamp),
};

function judgeIdentify(s: Session): void | { warning: string } {
  const { status, bytes } = s.analysis.identify;
  const expected = "00 00 00 02 (KEYBOARD, big-endian) before anything else";
  if (status === "ok") return;
  if (status === "little-endian") {
    return {
      warning: "the keyboard identified little-endian (02 00 00 00): the brief's protocol is " +
        "big-endian, and a server without PROTOCOL.md's little-endian extension closes this " +
        "keyboard. Its frames are checked as little-endian.",
    };
  }
  const frameStart = { usernameBytes: new TextEncoder().encode(s.username).length };
  if (bytes.length === 0) {
    throw new CheckFailure(
      `nothing arrived: no answer within ${seconds(s.endedAt - s.startedAt)}`,
      {
        expected,
        hint: identifyHint(bytes, 2),
      },
    );
  }
  if (status === "missing") {
    throw new CheckFailure(`no identify code: the stream starts with ${hexBytes(bytes)}`, {
      expected,
      hint: identifyHint(bytes, 2, frameStart),
      dump: s.analysis.frames.length > 0 ? dumpOf(s, s.analysis.frames[0]) : undefined,
    });
  }
  throw new CheckFailure(hexBytes(bytes), { expected, hint: identifyHint(bytes, 2, frameStart) });
}

function judgeByteOrder(s: Session): void {
  const first = needFrames(s)[0];
  const declaredLittle = s.analysis.identify.status === "little-endian";
  if (s.analysis.littleEndian === declaredLittle) return;
  const head = first.bytes.subarray(0, 4);
  const asLittle = new DataView(head.buffer, head.byteOffset, 4).getInt32(0, true);
  const asBig = new DataView(head.buffer, head.byteOffset, 4).getInt32(0, false);
  if (s.analysis.littleEndian) {
    throw new CheckFailure(
      `little-endian int32s: overall_length arrived as ${hexBytes(head)}, ` +
        `${asLittle} little-endian but ${asBig} big-endian`,
      {
        expected: `big-endian int32s${
          s.analysis.identify.status === "ok" ? ", like the identify code" : ""
        }`,
        hint: BIG_ENDIAN_ADVICE +
          (s.analysis.identify.status === "ok"
            ? " (the identify code was big-endian, so every int32 after it must be too)"
            : ""),
        dump: dumpOf(s, first, { overall_length: `${asBig} if read big-endian` }),
      },
    );
  }
  throw new CheckFailure(
    `big-endian int32s after a little-endian identify code: overall_length arrived as ${
      hexBytes(head)
    }`,
    {
      expected: "little-endian int32s throughout, like the identify code 02 00 00 00",
      hint: "a connection keeps one byte order: the one its identify code was sent in",
      dump: dumpOf(s, first, {}),
    },
  );
}

/**
 * overall_length against the bytes that follow it, not against ulen and tlen: a keyboard that
 * counts characters sends all three too short, consistently, and each is wrong on its own.
 */
function judgeOverall(s: Session, frame: FoundFrame, n: number): void {
  const ulen = frame.username.length;
  const tlen = frame.text.length;
  const sum = 32 + ulen + tlen;
  if (frame.overall === sum) return;
  const lengthsRight = frame.ulen === ulen && frame.tlen === tlen;
  throw new CheckFailure(`overall_length ${frame.overall} in ${frameName(n)}`, {
    expected: lengthsRight
      ? `overall_length = 32 + ulen ${ulen} + tlen ${tlen} = ${sum}`
      : `overall_length = 32 + ${ulen} username bytes + ${tlen} text bytes = ${sum}`,
    hint: lengthsRight || frame.overall !== 32 + frame.ulen + frame.tlen
      ? overallLengthHint(frame.overall, ulen, tlen)
      : `overall_length says ${frame.overall}, 32 + the ulen ${frame.ulen} and tlen ${frame.tlen} ` +
        `sent, but ${sum - 32} bytes of username and text follow: count UTF-8 bytes, not ` +
        "characters, here as in ulen and tlen",
    dump: dumpOf(s, frame, { overall_length: `expected ${sum}` }),
  });
}

function judgeLengths(s: Session, frame: FoundFrame, n: number): void {
  for (
    const [field, declared, bytes] of [
      ["ulen", frame.ulen, frame.username],
      ["tlen", frame.tlen, frame.text],
    ] as const
  ) {
    if (declared === bytes.length) continue;
    const text = lenient.decode(bytes);
    throw new CheckFailure(
      `${field} ${declared} in ${frameName(n)}, for ${JSON.stringify(short(text))}`,
      {
        expected: `${field} ${bytes.length}, the number of UTF-8 bytes`,
        hint: characterCountHint(field, declared, text) ??
          `${field} must be the number of bytes that follow it`,
        dump: dumpOf(s, frame, { [field]: `expected ${bytes.length}` }),
      },
    );
  }
}

function judgeUsername(s: Session, frame: FoundFrame, n: number): void {
  const got = lenient.decode(frame.username);
  if (got === s.username) return;
  let hint: string | undefined;
  if (got.trimEnd() === s.username) {
    hint = "the username ends with a line ending: strip the line you read (rstrip('\\n'))";
  } else if (got.replace(/\0+$/, "") === s.username) {
    hint = "the username ends with NUL: send its bytes only, not a C string terminator";
  } else if (got === "") {
    hint = "the username is empty: the checker typed it as the first line of input " +
      "(or pass it with {user} in the command)";
  }
  throw new CheckFailure(`${JSON.stringify(got)} in ${frameName(n)}`, {
    expected: JSON.stringify(s.username),
    hint,
    dump: dumpOf(s, frame, { username: `expected ${JSON.stringify(s.username)}` }),
  });
}

function judgeText(s: Session): void {
  const frames = needFrames(s).filter((f) => f.line !== "echo");
  const trailing = frames.find((f) => f.trailer !== undefined);
  if (trailing) {
    const n = s.analysis.frames.indexOf(trailing);
    const what = trailing.trailer === "\0" ? "a NUL byte" : "the line's newline";
    throw new CheckFailure(
      `the text of ${frameName(n)} is ${JSON.stringify(short(lenient.decode(trailing.text)))}`,
      {
        expected: JSON.stringify(short(s.lines[trailing.line as number])),
        hint: `${what} was sent as part of the text: ` +
          (trailing.trailer === "\0"
            ? "send the text's bytes only, not a C string terminator"
            : "strip it (line.rstrip('\\n') / line.trimEnd() / remove the '\\n' fgets keeps)"),
        dump: dumpOf(s, trailing, { text: "ends with " + JSON.stringify(trailing.trailer) }),
      },
    );
  }
  for (const [i, line] of s.lines.entries()) {
    const mine = frames.filter((f) => f.line === i);
    const bytes = new TextEncoder().encode(line).length;
    if (mine.length === 0) {
      const arrived = frames.filter((f) => typeof f.line === "number").length;
      throw new CheckFailure(
        `line ${
          i + 1
        } of ${s.lines.length} never arrived (${arrived} frame(s) in all; the client ${s.child.describeExit()})`,
        {
          expected: JSON.stringify(short(line)),
          hint: "send one frame per line as soon as it is read, and make sure everything is " +
            "sent (sendall) before exiting at the end of input",
        },
      );
    }
    if (mine.length > 1) {
      throw new CheckFailure(
        `the ${bytes}-byte line ${i + 1} arrived as ${mine.length} frames of ${
          mine.map((f) => f.text.length).join(" + ")
        } bytes`,
        {
          expected: "one frame for the whole line",
          hint: "read whole lines: a fixed-size line buffer (e.g. fgets(buf, 256, stdin) or " +
            "read(0, buf, 512)) cuts long lines into pieces",
        },
      );
    }
    const got = lenient.decode(mine[0].text);
    if (got !== line) {
      throw new CheckFailure(JSON.stringify(short(got)), {
        expected: JSON.stringify(short(line)),
        hint: got.length < line.length && line.startsWith(got)
          ? `only ${mine[0].text.length} of ${bytes} bytes of the line were sent`
          : undefined,
        dump: dumpOf(s, mine[0], { text: "not the line typed" }),
      });
    }
  }
  const extra = frames.find((f) => f.line === undefined);
  if (extra) {
    throw new CheckFailure(
      `an extra frame with the text ${JSON.stringify(short(lenient.decode(extra.text)))}`,
      { expected: `${s.lines.length} frames, one per line typed`, dump: dumpOf(s, extra) },
    );
  }
  const leftover = s.analysis.leftover;
  if (leftover) {
    throw new CheckFailure(
      `${leftover.bytes.length} byte(s) at stream offset ${leftover.offset} do not form a frame`,
      { expected: "nothing after the last frame", dump: dumpBytes(leftover.bytes, 64) },
    );
  }
}

const RANGES: [keyof FoundFrame["time"], number, number][] = [
  ["month", 1, 12],
  ["day", 1, 31],
  ["hour", 0, 23],
  ["minute", 0, 59],
  ["second", 0, 60],
];

function judgeTimestamp(s: Session, frame: FoundFrame, n: number): void {
  const t = frame.time;
  const now = new Date(s.startedAt);
  const expected = `the local time the line was sent, about ${
    formatTimestamp(localTimestamp(now))
  }`;
  for (const [field, min, max] of RANGES) {
    if (t[field] < min || t[field] > max) {
      throw new CheckFailure(`${field} ${t[field]} in ${frameName(n)}`, {
        expected,
        hint: timestampHint(t, now) ?? `${field} must be within ${min}-${max}`,
        dump: dumpOf(s, frame, { [field]: `out of range ${min}-${max}` }),
      });
    }
  }
  const sent = new Date(t.year, t.month - 1, t.day, t.hour, t.minute, t.second).getTime();
  if (sent >= s.startedAt - CLOCK_SLACK_MS && sent <= s.endedAt + CLOCK_SLACK_MS) return;
  throw new CheckFailure(`${formatTimestamp(t)} in ${frameName(n)}`, {
    expected,
    hint: timestampHint(t, now) ??
      "stamp each message with the current local time when it is sent",
    dump: dumpOf(s, frame),
  });
}

/** Runs `judge` on every frame but the username echo. */
function forEachFrame(s: Session, judge: (s: Session, frame: FoundFrame, n: number) => void): void {
  for (const [n, frame] of needFrames(s).entries()) judge(s, frame, n);
}

function needFrames(s: Session): FoundFrame[] {
  if (s.analysis.frames.length === 0) {
    throw new CheckFailure("no frame arrived", {
      expected: `${s.lines.length} frames, one per line typed`,
      hint: s.analysis.leftover
        ? "the bytes that arrived could not be read as frames"
        : "send one frame per line of input",
      dump: s.analysis.leftover ? dumpBytes(s.analysis.leftover.bytes, 64) : undefined,
    });
  }
  return s.analysis.frames;
}

function dumpOf(s: Session, frame: FoundFrame, marks: Record<string, string> = {}): string[] {
  return dumpFrame(frame.bytes, {
    littleEndian: s.analysis.littleEndian,
    ulen: frame.username.length,
    tlen: frame.text.length,
    marks,
  });
}

function frameName(n: number): string {
  const names = ["the first", "the second", "the third", "the fourth", "the fifth"];
  return n < names.length ? `${names[n]} frame` : `frame ${n + 1}`;
}

function short(text: string): string {
  return text.length > 60 ? `${text.slice(0, 40)}…${text.slice(-12)}` : text;
}
