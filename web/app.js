// lib/protocol/errors.ts
var ProtocolError = class extends SyntaxError {
  /** Which rule was broken. */
  kind;
  /** The field that held the bad value, e.g. `overall_length`. */
  field;
  /** Offset of that field from the start of the frame (or identify code). */
  offset;
  /**
   * Complete, valid frames that arrived in the same chunk before the broken one. A relay
   * still delivers them, so what a client sent correctly is not lost.
   */
  precedingFrames = new Uint8Array(0);
  constructor(kind, field, offset, message) {
    super(message);
    this.name = "ProtocolError";
    this.kind = kind;
    this.field = field;
    this.offset = offset;
  }
};

// lib/protocol/frame.ts
var LENGTH_FIELD_SIZE = 4;
var FIXED_BODY_SIZE = 32;
var DEFAULT_MAX_FRAME = 64 * 1024;
var TIME_FIELDS = [
  [
    "year",
    -2147483648,
    2147483647
  ],
  [
    "month",
    1,
    12
  ],
  [
    "day",
    1,
    31
  ],
  [
    "hour",
    0,
    23
  ],
  [
    "minute",
    0,
    59
  ],
  [
    "second",
    0,
    60
  ]
];
var utf8Encoder = new TextEncoder();
var utf8Decoder = new TextDecoder("utf-8", {
  fatal: false,
  ignoreBOM: true
});
function encodeFrame(message, options = {}) {
  return encodeFrameBytes(utf8Encoder.encode(message.username), message.time, utf8Encoder.encode(message.text), options);
}
function encodeFrameBytes(username2, time, text, options = {}) {
  const le = options.littleEndian ?? false;
  const overall = FIXED_BODY_SIZE + username2.length + text.length;
  const frame = new Uint8Array(LENGTH_FIELD_SIZE + overall);
  const view = new DataView(frame.buffer);
  view.setInt32(0, overall, le);
  view.setInt32(4, username2.length, le);
  frame.set(username2, 8);
  let at = 8 + username2.length;
  for (const [field] of TIME_FIELDS) {
    view.setInt32(at, time[field], le);
    at += 4;
  }
  view.setInt32(at, text.length, le);
  frame.set(text, at + 4);
  return frame;
}
var TIME_MIN = Float64Array.from(TIME_FIELDS, ([, min]) => min);
var TIME_MAX = Float64Array.from(TIME_FIELDS, ([, , max]) => max);
function datesInRange(view, at, littleEndian) {
  for (let i = 0; i < TIME_MIN.length; i++) {
    const value = view.getInt32(at + 4 * i, littleEndian);
    if (value < TIME_MIN[i] || value > TIME_MAX[i]) return false;
  }
  return true;
}
function checkFrameBody(view, bodyOffset, overall, littleEndian) {
  const ulen = view.getInt32(bodyOffset, littleEndian);
  if (ulen >= 0 && ulen <= overall - FIXED_BODY_SIZE) {
    const dates = bodyOffset + 4 + ulen;
    const tlen2 = view.getInt32(dates + 24, littleEndian);
    if (tlen2 >= 0 && FIXED_BODY_SIZE + ulen + tlen2 === overall && datesInRange(view, dates, littleEndian)) {
      return {
        ulen,
        tlen: tlen2
      };
    }
  }
  if (ulen < 0) {
    throw new ProtocolError("negative-length", "ulen", 4, `ulen is negative (${ulen})`);
  }
  if (ulen > overall - FIXED_BODY_SIZE) {
    throw new ProtocolError("length-mismatch", "ulen", 4, `ulen ${ulen} does not fit in overall_length ${overall} (at most ${overall - FIXED_BODY_SIZE})`);
  }
  let at = bodyOffset + 4 + ulen;
  for (const [field, min, max] of TIME_FIELDS) {
    const value = view.getInt32(at, littleEndian);
    if (value < min || value > max) {
      throw new ProtocolError("date-out-of-range", field, at - bodyOffset + LENGTH_FIELD_SIZE, `${field} ${value} is out of range ${min}-${max}`);
    }
    at += 4;
  }
  const tlen = view.getInt32(at, littleEndian);
  const tlenOffset = at - bodyOffset + LENGTH_FIELD_SIZE;
  if (tlen < 0) {
    throw new ProtocolError("negative-length", "tlen", tlenOffset, `tlen is negative (${tlen})`);
  }
  if (FIXED_BODY_SIZE + ulen + tlen !== overall) {
    throw new ProtocolError("length-mismatch", "overall_length", 0, `overall_length says ${overall} but 32 + ulen ${ulen} + tlen ${tlen} = ${FIXED_BODY_SIZE + ulen + tlen}`);
  }
  return {
    ulen,
    tlen
  };
}
function decodeFrameBody(bytes, options = {}) {
  const le = options.littleEndian ?? false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { ulen, tlen } = checkFrameBody(view, 0, bytes.length, le);
  let at = 4 + ulen;
  const time = {};
  for (const [field] of TIME_FIELDS) {
    time[field] = view.getInt32(at, le);
    at += 4;
  }
  return {
    username: utf8Decoder.decode(bytes.subarray(4, 4 + ulen)),
    time,
    text: utf8Decoder.decode(bytes.subarray(at + 4, at + 4 + tlen))
  };
}

// lib/protocol/time.ts
function localTimestamp(date = /* @__PURE__ */ new Date()) {
  return {
    year: date.getFullYear(),
    month: date.getMonth() + 1,
    day: date.getDate(),
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds()
  };
}

// lib/protocol/web_records.ts
var SEQ_SIZE = 8;
function decodeRecords(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + SEQ_SIZE + LENGTH_FIELD_SIZE > bytes.length) {
      throw new RangeError(`Cannot decode the record at ${at}: truncated header`);
    }
    const seq = Number(view.getBigUint64(at));
    const end = at + SEQ_SIZE + LENGTH_FIELD_SIZE + view.getInt32(at + SEQ_SIZE);
    if (end > bytes.length || end < at + SEQ_SIZE + LENGTH_FIELD_SIZE) {
      throw new RangeError(`Cannot decode the record at ${at}: frame runs off the message`);
    }
    records.push({
      seq,
      frame: bytes.subarray(at + SEQ_SIZE, end)
    });
    at = end;
  }
  return records;
}
function fingerprint(bytes) {
  let a = 2166136261;
  let b = 84696351;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i], 16777619);
    b = Math.imul(b ^ bytes[i], 16777619) ^ b >>> 15;
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

// lib/protocol/sanitize.ts
var CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
function neutralizeControls(text) {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 255 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

// lib/protocol/name_colour.ts
function nameColor(name, paletteSize) {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  }
  return (hash >>> 0) % paletteSize;
}

// web/chat_format.ts
var PALETTE_SIZE = 14;
function colourIndex(username2) {
  return nameColor(username2, PALETTE_SIZE);
}
var two = (n) => String(n).padStart(2, "0");
function shortTime(time) {
  return `${two(time.hour)}:${two(time.minute)}`;
}
function fullTime(time) {
  return `${time.year}-${two(time.month)}-${two(time.day)} ${shortTime(time)}:${two(time.second)}`;
}
function dayOf(time) {
  return `${time.year}-${two(time.month)}-${two(time.day)}`;
}
function shownText(text) {
  return neutralizeControls(text);
}
var BACKOFF_MIN_MS = 500;
var BACKOFF_MAX_MS = 2e4;
function backoffMs(attempt2, random) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, attempt2 - 1));
  return Math.max(BACKOFF_MIN_MS, Math.floor(random * cap));
}
function oneLine(typed) {
  return typed.replace(/[\r\n]+/g, " ").trim();
}

// web/app.ts
var NAME_KEY = "wirechat.name";
var BOTTOM_SLACK = 24;
var $ = (id) => document.getElementById(id);
var log = $("log");
var status = $("status");
var unseenButton = $("unseen");
var nameForm = $("name-form");
var nameInput = $("name");
var sendForm = $("send-form");
var textInput = $("text");
var me = $("me");
var username = localStorage.getItem(NAME_KEY) ?? "";
var socket;
var welcomed = false;
var attempt = 0;
var maxFrame = 65536;
var resume;
var outbox = [];
var lastDay = "";
var unseen = 0;
var unreadWhileHidden = 0;
function setState(state, text) {
  document.body.dataset.state = state;
  status.textContent = text;
}
function connect() {
  welcomed = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  socket = ws;
  ws.onopen = () => {
    const hello = resume ? {
      type: "hello",
      resume
    } : {
      type: "hello"
    };
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") return onWelcome(JSON.parse(event.data));
    if (!welcomed) return;
    for (const record of decodeRecords(new Uint8Array(event.data))) {
      if (resume && record.seq <= resume.seq && welcomedEpoch === resume.epoch) continue;
      resume = {
        epoch: welcomedEpoch,
        seq: record.seq,
        tail: fingerprint(record.frame)
      };
      show(decodeFrameBody(record.frame.subarray(4)));
    }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = void 0;
    attempt++;
    setState("reconnecting", `Reconnecting... (attempt ${attempt})`);
    setTimeout(connect, backoffMs(attempt, Math.random()));
  };
}
var welcomedEpoch = "";
function onWelcome(welcome) {
  if (welcome.type !== "welcome") return;
  welcomed = true;
  attempt = 0;
  maxFrame = welcome.maxFrame;
  if (resume && resume.epoch !== welcome.epoch) {
    resume = {
      epoch: welcome.epoch,
      seq: welcome.seq,
      tail: resume.tail
    };
  }
  welcomedEpoch = welcome.epoch;
  setState("connected", "Connected");
  flush();
}
function flush() {
  while (outbox.length > 0 && welcomed && socket?.readyState === WebSocket.OPEN) {
    socket.send(outbox.shift());
  }
  document.body.dataset.outbox = String(outbox.length);
}
function atBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight <= BOTTOM_SLACK;
}
function show(message) {
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
function clearUnseen() {
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
function startChat() {
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
  const frame = encodeFrame({
    username,
    time: localTimestamp(),
    text
  });
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
