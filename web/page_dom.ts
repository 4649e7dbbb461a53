/**
 * The few DOM types the page uses, declared here: the repository type-checks as one Deno
 * program (`deno check .`), where the "dom" lib's globals would clash with Deno's own.
 *
 * @module
 */

/** An element of the page, with the members app.ts uses. */
export interface PageElement {
  id: string;
  className: string;
  textContent: string | null;
  title: string;
  hidden: boolean;
  value: string;
  scrollTop: number;
  readonly scrollHeight: number;
  readonly clientHeight: number;
  readonly dataset: Record<string, string | undefined>;
  append(...nodes: PageElement[]): void;
  focus(): void;
  onclick: (() => void) | null;
  onscroll: (() => void) | null;
  onsubmit: ((event: { preventDefault(): void }) => void) | null;
}

/** The document, with the members app.ts uses. */
export interface PageDocument {
  title: string;
  readonly hidden: boolean;
  readonly body: PageElement;
  getElementById(id: string): PageElement | null;
  createElement(tag: string): PageElement;
  addEventListener(type: "visibilitychange", listener: () => void): void;
}
