/**
 * The chat page in a real Chromium (Debian's chromium, driven by puppeteer-core) against a
 * real server with --web, beside terminal displays and keyboards.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  clientArgs,
  displayLine,
  ServerProcess,
  startDisplay,
  startKeyboard,
} from "./helpers/processes.ts";
import { Chromium, type Page, say, shown, waitForState } from "./helpers/browser.ts";
import { message, WebClient } from "./helpers/web_client.ts";
import { bounded } from "../tools/harness/wait.ts";
import { neutralizeControls } from "../lib/protocol/sanitize.ts";

// Code run inside the page sees the browser's globals; these name them for the type checker
// (the repository is checked as one Deno program, without the "dom" lib).
// deno-lint-ignore no-explicit-any
declare const document: any;
// deno-lint-ignore no-explicit-any
declare const getComputedStyle: any;
// deno-lint-ignore no-explicit-any
type HTMLElement = any;

/** Browser tests share the machine with others: generous, but bounded. */
const BROWSER_TEST_MS = 90_000;

async function webServer(args: string[] = [], webPort = 0): Promise<ServerProcess> {
  return await ServerProcess.start(["--web", `127.0.0.1:${webPort}`, ...args], { listeners: 2 });
}

const pageUrl = (server: ServerProcess) => `http://127.0.0.1:${server.portOf("web chat")}/`;

/** Where this run's screenshots go (a temp dir, printed, left for a person to look at). */
const SHOTS = await Deno.makeTempDir({ prefix: "wirechat-screenshots-" });

Deno.test(
  "two pages and a terminal display and keyboard chat both ways in one order",
  bounded(BROWSER_TEST_MS, async () => {
    await using server = await webServer();
    await using chromium = await Chromium.launch();
    await using display = await startDisplay(server, clientArgs(server.port));
    const alice = await chromium.page(pageUrl(server), { name: "alice" });
    const bob = await chromium.page(pageUrl(server), { name: "bob" });
    await Promise.all([waitForState(alice, "connected"), waitForState(bob, "connected")]);
    await using keyboard = startKeyboard([...clientArgs(server.port), "--user", "tty"]);
    await server.log.waitFor(/ identified as keyboard$/);
    // Everyone at once: the order is the server's, and the same for all.
    await Promise.all([
      (async () => {
        for (let i = 0; i < 4; i++) await say(alice, `alice ${i}`);
      })(),
      (async () => {
        for (let i = 0; i < 4; i++) await say(bob, `bob ${i}`);
      })(),
      keyboard.write([0, 1, 2, 3].map((i) => `tty ${i}\n`).join("")),
    ]);
    const fromAlice = await shown(alice, 12);
    const fromBob = await shown(bob, 12);
    const lines = await display.stdout.waitForCount(/ (alice|bob|tty) \d$/, 12);
    const fromDisplay = lines.map((line) => {
      const [, user, text] = /^(\S+) \S+ \S+ (.*)$/.exec(line)!;
      return `${user}|${text}`;
    });
    assert.deepEqual(fromAlice, fromDisplay);
    assert.deepEqual(fromBob, fromDisplay);
    for (const who of ["alice", "bob", "tty"]) {
      const own = fromDisplay.filter((m) => m.startsWith(`${who}|`));
      assert.deepEqual(own, [0, 1, 2, 3].map((i) => `${who}|${who} ${i}`), "each in its order");
    }
    assert.match(lines[0], displayLine(fromDisplay[0].split("|")[0], fromDisplay[0].split("|")[1]));
    // Own messages are marked; the others' are not.
    const own = await alice.$$eval("#log .msg.own .text", (els) => els.map((e) => e.textContent));
    assert.deepEqual(own, [0, 1, 2, 3].map((i) => `alice ${i}`));
    const colours = await alice.$$eval(
      "#log .msg .name",
      (els) => [...new Set(els.map((e) => `${e.textContent}=${e.className}`))],
    );
    assert.equal(colours.length, 3, `one colour class per name: ${colours}`);
    const time = await alice.$eval(
      "#log .msg .time",
      (el) => [el.textContent, (el as HTMLElement).title],
    );
    assert.match(time[0]!, /^\d\d:\d\d$/);
    assert.match(time[1]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    await alice.screenshot({ path: `${SHOTS}/chat-800.png` });
  }),
);

Deno.test(
  "HTML and control or bidi characters in a name or text render as inert text",
  bounded(BROWSER_TEST_MS, async () => {
    await using server = await webServer();
    await using chromium = await Chromium.launch();
    const page = await chromium.page(pageUrl(server), { name: "reader" });
    let dialogs = 0;
    page.on("dialog", (dialog) => {
      dialogs++;
      void dialog.dismiss();
    });
    await waitForState(page, "connected");
    await using attacker = await WebClient.open(`ws://127.0.0.1:${server.portOf("web chat")}/ws`);
    const name = "<img src=x onerror=alert(1)>";
    const texts = [
      "<script>alert(2)</script><b>bold</b>",
      "\x1b[2J\x07bell \u202eevil\u202c \u2066iso\u2069 \x00nul",
      "a".repeat(300),
    ];
    for (const text of texts) attacker.send(message(name, text));
    const seen = await shown(page, 3);
    assert.deepEqual(seen, texts.map((t) => `${name}|${neutralizeControls(t)}`));
    assert.equal(await page.$$eval("#log img, #log script, #log b", (els) => els.length), 0);
    assert.equal(dialogs, 0);
    // The long word wraps inside the page: nothing scrolls sideways.
    const overflow = await page.$eval("#log", (el) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `the log scrolls sideways by ${overflow}px`);
  }),
);

Deno.test(
  "on a 375-pixel-wide screen the page fits, in light and dark mode, and the name prompt is remembered",
  bounded(BROWSER_TEST_MS, async () => {
    await using server = await webServer();
    await using chromium = await Chromium.launch();
    const page = await chromium.page(pageUrl(server), { name: "phone", width: 375 });
    await page.setViewport({ width: 375, height: 667, deviceScaleFactor: 2 });
    await waitForState(page, "connected");
    await using other = await WebClient.open(`ws://127.0.0.1:${server.portOf("web chat")}/ws`);
    other.send(message("desk", "hello phone, a message long enough to wrap onto a second line"));
    await say(page, "hi from the phone");
    await shown(page, 2);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `the page is ${width}px wide`);
    await page.screenshot({ path: `${SHOTS}/chat-375.png` });
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    assert.notEqual(await background(), light, "dark mode has its own colours");
    await page.screenshot({ path: `${SHOTS}/chat-375-dark.png` });
    await page.emulateMediaFeatures([]);
    // A reload asks no name again.
    await page.reload();
    await page.waitForSelector("#text", { visible: true });
    const shownForms = await page.$$eval(
      "form",
      (forms) => forms.filter((f) => getComputedStyle(f).display !== "none").map((f) => f.id),
    );
    assert.deepEqual(shownForms, ["send-form"], "only the message box shows");
    assert.match(await page.$eval("#me", (el) => el.textContent!), /You are phone\./);
    console.log(`screenshots in ${SHOTS}`);
  }),
);

Deno.test(
  "what is typed while the server is down is sent once it is back, in order; the page says it is reconnecting",
  bounded(BROWSER_TEST_MS, async () => {
    const first = await webServer();
    const port = first.portOf("web chat");
    await using chromium = await Chromium.launch();
    let page: Page;
    try {
      page = await chromium.page(pageUrl(first), { name: "patient" });
      await waitForState(page, "connected");
      await say(page, "before");
      await shown(page, 1);
    } finally {
      await first[Symbol.asyncDispose]();
    }
    await waitForState(page, "reconnecting");
    await page.waitForFunction(() =>
      /^Reconnecting\.\.\. \(attempt \d+\)$/.test(document.getElementById("status")!.textContent!)
    );
    await say(page, "offline one");
    await say(page, "offline two");
    await page.waitForFunction(() => document.body.dataset.outbox === "2");
    await using second = await webServer([], port);
    await waitForState(page, "connected");
    // The page shows its own messages only as the server relays them back: sent, in order; a
    // message after them shows nothing came twice.
    await using other = await WebClient.open(`ws://127.0.0.1:${second.portOf("web chat")}/ws`);
    other.send(message("other", "after"));
    assert.deepEqual(await shown(page, 4), [
      "patient|before",
      "patient|offline one",
      "patient|offline two",
      "other|after",
    ]);
  }),
);

Deno.test(
  "while its tab is hidden the page counts new messages in the title, and clears it when shown",
  bounded(BROWSER_TEST_MS, async () => {
    await using server = await webServer();
    await using chromium = await Chromium.launch();
    const page = await chromium.page(pageUrl(server), { name: "away" });
    await waitForState(page, "connected");
    await using other = await WebClient.open(`ws://127.0.0.1:${server.portOf("web chat")}/ws`);
    other.send(message("talker", "seen while in front"));
    await shown(page, 1);
    assert.equal(await page.title(), "wirechat", "no count while the tab is in front");
    // A second tab in front hides the first, as switching tabs does.
    const tab = await page.browserContext().newPage();
    await tab.bringToFront();
    assert.equal(await page.evaluate(() => document.visibilityState), "hidden");
    for (let i = 0; i < 3; i++) other.send(message("talker", `while away ${i}`));
    // A hidden tab has no animation frames: the wait polls instead.
    await page.waitForFunction(
      (n: number) => document.querySelectorAll("#log .msg").length >= n,
      { polling: 50 },
      4,
    );
    assert.equal(await page.title(), "(3) wirechat");
    await page.bringToFront();
    await page.waitForFunction(() => document.title === "wirechat");
    await tab.close();
  }),
);

Deno.test(
  'away from the bottom, new messages wait behind an "N new messages" button',
  bounded(BROWSER_TEST_MS, async () => {
    await using server = await webServer();
    await using chromium = await Chromium.launch();
    const page = await chromium.page(pageUrl(server), { name: "scroller" });
    await waitForState(page, "connected");
    await using other = await WebClient.open(`ws://127.0.0.1:${server.portOf("web chat")}/ws`);
    for (let i = 0; i < 40; i++) other.send(message("talker", `line ${i}`));
    await shown(page, 40);
    const atBottom = () =>
      page.$eval("#log", (el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 24);
    assert.equal(await atBottom(), true, "it followed the messages at the bottom");
    await page.$eval("#log", (el) => el.scrollTop = 0);
    for (let i = 0; i < 3; i++) other.send(message("talker", `more ${i}`));
    await shown(page, 43);
    assert.equal(await page.$eval("#unseen", (el) => el.textContent), "3 new messages");
    assert.equal(await atBottom(), false);
    await page.click("#unseen");
    assert.equal(await atBottom(), true);
    assert.equal(await page.$eval("#unseen", (el) => (el as HTMLElement).hidden), true);
  }),
);

Deno.test(
  "after a restart with a history database, the page shows what it missed once, and a new page gets the history",
  bounded(BROWSER_TEST_MS, async () => {
    // The server task may write only under history/ (README, History).
    const db = `history/web_restart_${crypto.randomUUID().slice(0, 8)}.db`;
    const history = ["--history", "50", "--history-db", db];
    try {
      const first = await webServer(history);
      const port = first.portOf("web chat");
      await using chromium = await Chromium.launch();
      let page: Page;
      try {
        page = await chromium.page(pageUrl(first), { name: "reader" });
        await waitForState(page, "connected");
        await using other = await WebClient.open(`ws://127.0.0.1:${port}/ws`);
        other.send(message("other", "one"));
        other.send(message("other", "two"));
        await shown(page, 2);
      } finally {
        await first[Symbol.asyncDispose]();
      }
      await waitForState(page, "reconnecting");
      await using second = await webServer(history, port);
      // Said on the new server as soon as it is up: the page may still be away (its backoff),
      // and must then get them from the resume; or it is back, and gets them live. Once, either way.
      await using keyboard = startKeyboard([...clientArgs(second.port), "--user", "tty"]);
      await keyboard.write("three\nfour\n");
      await waitForState(page, "connected");
      const expected = ["other|one", "other|two", "tty|three", "tty|four"];
      assert.deepEqual(await shown(page, 4), expected);
      // Nothing more arrives late: a marker after them is the fifth message.
      await keyboard.write("marker\n");
      assert.deepEqual(await shown(page, 5), [...expected, "tty|marker"]);
      // A page opened now starts from the history the new server read from the database.
      const late = await chromium.page(pageUrl(second), { name: "late" });
      await waitForState(late, "connected");
      assert.deepEqual(await shown(late, 5), [...expected, "tty|marker"]);
    } finally {
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(db + suffix).catch(() => {});
    }
  }),
);
