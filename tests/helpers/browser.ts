/**
 * A real Chromium for the web page's tests: Debian's `chromium`, driven by puppeteer-core,
 * headless, with a throwaway profile; `await using` closes it and removes the profile.
 *
 * @module
 */

// Code run inside the page by puppeteer sees the browser's globals; these name them for the
// type checker, which checks the repository as one Deno program (no "dom" lib).
// deno-lint-ignore no-explicit-any
declare const document: any;

import puppeteer, { type Browser, type BrowserContext, type Page } from "puppeteer-core";

export type { Browser, BrowserContext, Page };

/** Where Debian installs it (.ci/run installs the package when it is missing). */
export const CHROMIUM = "/usr/bin/chromium";

/** Bound on any one wait in a page. */
export const PAGE_WAIT_MS = 15_000;

/** A headless Chromium and its profile directory. */
export class Chromium implements AsyncDisposable {
  readonly browser: Browser;
  readonly #profile: string;

  private constructor(browser: Browser, profile: string) {
    this.browser = browser;
    this.#profile = profile;
  }

  static async launch(): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "wirechat-chromium-" });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: profile,
      // Chromium's sandbox needs user namespaces that a container's root does not have.
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"],
      timeout: PAGE_WAIT_MS,
      // Chromium gets an environment of its own: the test's is not read (least privilege).
      env: { HOME: profile },
    });
    return new Chromium(browser, profile);
  }

  /**
   * A page in its own browser context (its own localStorage: one user each), at `url`,
   * with `name` already chosen when given.
   */
  async page(url: string, options: { name?: string; width?: number } = {}): Promise<Page> {
    const context = await this.browser.createBrowserContext();
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_WAIT_MS);
    await page.setViewport({ width: options.width ?? 800, height: 600 });
    await page.goto(url);
    if (options.name !== undefined) {
      await page.waitForSelector("#name", { visible: true });
      await page.type("#name", options.name);
      await page.keyboard.press("Enter");
      await page.waitForSelector("#text", { visible: true });
    }
    return page;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.browser.close();
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

/** Types a message into the page and sends it with Enter. */
export async function say(page: Page, text: string): Promise<void> {
  await page.focus("#text");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

/** The messages the page shows, as "name|text", once it shows at least `count`. */
export async function shown(page: Page, count: number): Promise<string[]> {
  await page.waitForFunction(
    (n: number) => document.querySelectorAll("#log .msg").length >= n,
    {},
    count,
  );
  return await page.$$eval(
    "#log .msg",
    (items) =>
      items.map((item) =>
        `${item.querySelector(".name")!.textContent}|${item.querySelector(".text")!.textContent}`
      ),
  );
}

/** Waits until the page's connection state is `state` (body[data-state]). */
export async function waitForState(page: Page, state: string): Promise<void> {
  await page.waitForFunction(
    (s: string) => document.body.dataset.state === s,
    {},
    state,
  );
}
