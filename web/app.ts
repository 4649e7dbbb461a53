/**
 * The chat page: connects to the gateway (PROTOCOL.md §11), shows every message as text in the
 * one global order, and keeps what the user types while offline. Bundled into app.js
 * (`deno task bundle-web`; tests/web_bundle_test.ts checks the committed bundle is current).
 *
 * @module
 */

import { decodeFrameBody, encodeFrame, type Message } from "../lib/protocol/frame.ts";
import { localTimestamp } from "../lib/protocol/time.ts";
import {
  decodeRecords,
  fingerprint,
  type Hello,
  type ResumePoint,
  type Welcome,
} from "../lib/protocol/web_records.ts";
import {
  backoffMs,
  colourIndex,
  dayOf,
  fullTime,
  oneLine,
  shortTime,
  shownText,
} from "./chat_format.ts";
import type { PageDocument, PageElement } from "./page_dom.ts";

declare const document: PageDocument;

const NAME_KEY = "wirechat.name";
/** Pixels from the bottom that still count as "at the bottom". */
const BOTTOM_SLACK = 24;

const $ = (id: string) => document.getElementById(id) as PageElement;
const log = $("log");
const status = $("status");
const unseenButton = $("unseen");
const nameForm = $("name-form");
const nameInput = $("name");
const sendForm = $("send-form");
const textInput = $("text");
const me = $("me");

let username = localStorage.getItem(NAME_KEY) ?? "";
let socket: WebSocket | undefined;
let welcomed = false;
let attempt = 0;
let maxFrame = 65536;
/** Where this page is in the global order; undefined until the first welcome. */
let resume: ResumePoint | undefined;
/** Frames typed and not yet handed to an open socket, in order. */
const outbox: Uint8Array[] = [];
let lastDay = "";
let unseen = 0;
let unreadWhileHidden = 0;

function setState(state: "connecting" | "connected" | "reconnecting", text: string): void {
  document.body.dataset.state = state;
  status.textContent = text;
}

function connect(): void {
  welcomed = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  socket = ws;
  ws.onopen = () => {
    const hello: Hello = resume ? { type: "hello", resume } : { type: "hello" };
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") return onWelcome(JSON.parse(event.data) as Welcome);
    // Records are numbered in the welcome's epoch: none comes before it (PROTOCOL.md §11).
    if (!welcomed) return;
    for (const record of decodeRecords(new Uint8Array(event.data as ArrayBuffer))) {
      // The gateway sends each record once; a record seen already is skipped all the same.
      if (resume && record.seq <= resume.seq && welcomedEpoch === resume.epoch) continue;
      resume = { epoch: welcomedEpoch, seq: record.seq, tail: fingerprint(record.frame) };
      show(decodeFrameBody(record.frame.subarray(4)));
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = undefined;
    attempt++;
    setState("reconnecting", `Reconnecting... (attempt ${attempt})`);
    setTimeout(connect, backoffMs(attempt, Math.random()));
  };
}

let welcomedEpoch = "";

function onWelcome(welcome: Welcome): void {
  if (welcome.type !== "welcome") return;
  welcomed = true;
  attempt = 0;
  maxFrame = welcome.maxFrame;
  if (resume && resume.epoch !== welcome.epoch) {
    // A restarted server numbers afresh: what follows the welcome is what this page missed.
    resume = { epoch: welcome.epoch, seq: welcome.seq, tail: resume.tail };
  }
  welcomedEpoch = welcome.epoch;
  setState("connected", "Connected");
  flush();
}

/** Sends what was typed while offline, in order. */
function flush(): void {
  while (outbox.length > 0 && welcomed && socket?.readyState === WebSocket.OPEN) {
    socket.send(outbox.shift()!);
  }
  document.body.dataset.outbox = String(outbox.length);
}

function atBottom(): boolean {
  return log.scrollHeight - log.scrollTop - log.clientHeight <= BOTTOM_SLACK;
}

function show(message: Message): void {
  const stick = atBottom();
  const day = dayOf(message.time);
  if (day !== lastDay) {
    lastDay = day;
    const sep = document.createElement("li");
    sep.className = "sep";
    sep.textContent = day;
    log.append(sep);
  }
  const item = document.createElement("li");
  item.className = message.username === username ? "msg own" : "msg";
  const time = document.createElement("time");
  time.className = "time";
  time.textContent = shortTime(message.time);
  time.title = fullTime(message.time);
  const name = document.createElement("span");
  name.className = `name c${colourIndex(message.username)}`;
  name.textContent = shownText(message.username);
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = shownText(message.text);
  item.append(time, name, text);
  log.append(item);
  if (stick) {
    log.scrollTop = log.scrollHeight;
  } else {
    unseen++;
    unseenButton.textContent = `${unseen} new message${unseen === 1 ? "" : "s"}`;
    unseenButton.hidden = false;
  }
  if (document.hidden) {
    unreadWhileHidden++;
    document.title = `(${unreadWhileHidden}) wirechat`;
  }
}

function clearUnseen(): void {
  unseen = 0;
  unseenButton.hidden = true;
}

unseenButton.onclick = () => {
  log.scrollTop = log.scrollHeight;
  clearUnseen();
  textInput.focus();
};
log.onscroll = () => {
  if (atBottom()) clearUnseen();
};
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    unreadWhileHidden = 0;
    document.title = "wirechat";
  }
});

function startChat(): void {
  nameForm.hidden = true;
  sendForm.hidden = false;
  me.textContent = `You are ${shownText(username)}. Enter sends.`;
  textInput.focus();
}

nameForm.onsubmit = (event) => {
  event.preventDefault();
  const name = oneLine(nameInput.value);
  if (!name) return;
  username = name;
  localStorage.setItem(NAME_KEY, name);
  startChat();
};

sendForm.onsubmit = (event) => {
  event.preventDefault();
  const text = oneLine(textInput.value);
  if (!text) return;
  const frame = encodeFrame({ username, time: localTimestamp(), text });
  if (frame.length - 4 > maxFrame) {
    me.textContent = `That message is too long (${frame.length - 4} bytes; at most ${maxFrame}).`;
    return;
  }
  textInput.value = "";
  outbox.push(frame);
  flush();
};

if (username) {
  nameInput.value = username;
  startChat();
} else {
  nameForm.hidden = false;
  nameInput.focus();
}
setState("connecting", "Connecting...");
connect();
