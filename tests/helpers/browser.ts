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
/** A node inside the page, as puppeteer's callbacks see it (browser types are not checked). */
// deno-lint-ignore no-explicit-any
type PageNode = any;

/**
 * puppeteer-core, loaded by a specifier no type check or `deno task` sees, so that it lives in
 * a lock file of its own (tests/browser.lock, which the test task names): `deno task` fetches
 * every package of deno.json's imports before any task, and a display must start with nothing
 * to download (as tools/lint_workflows.ts does with its validator).
 */
const PUPPETEER = "npm:puppeteer-core@25.16.0";

/** The part of puppeteer's Page the tests use. */
export interface Page {
  setDefaultTimeout(ms: number): void;
  setViewport(
    viewport: { width: number; height: number; deviceScaleFactor?: number },
  ): Promise<void>;
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  waitForSelector(selector: string, options?: { visible?: boolean }): Promise<unknown>;
  type(selector: string, text: string): Promise<void>;
  focus(selector: string): Promise<void>;
  click(selector: string): Promise<void>;
  keyboard: { type(text: string): Promise<void>; press(key: string): Promise<void> };
  waitForFunction<A extends unknown[]>(
    fn: (...args: A) => boolean,
    /** polling: milliseconds between checks; by default on each animation frame, never in a hidden tab. */
    options: { polling?: number },
    ...args: A
  ): Promise<unknown>;
  waitForFunction(fn: () => boolean): Promise<unknown>;
  evaluate<R>(fn: () => R): Promise<R>;
  $eval<R>(selector: string, fn: (element: PageNode) => R): Promise<R>;
  $$eval<R>(selector: string, fn: (elements: PageNode[]) => R): Promise<R>;
  screenshot(options: { path: string }): Promise<unknown>;
  emulateMediaFeatures(features: { name: string; value: string }[]): Promise<void>;
  on(event: "dialog", handler: (dialog: { dismiss(): Promise<void> }) => void): void;
  /** Makes it the front tab of its window (the tab in front before is then hidden). */
  bringToFront(): Promise<void>;
  browserContext(): BrowserContext;
  title(): Promise<string>;
  close(): Promise<void>;
}

interface BrowserContext {
  newPage(): Promise<Page>;
}

interface Browser {
  createBrowserContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

interface Puppeteer {
  launch(options: Record<string, unknown>): Promise<Browser>;
}

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
    const puppeteer: Puppeteer = (await import(PUPPETEER)).default;
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
