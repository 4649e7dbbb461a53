/**
 * Recording a full run in BENCHMARKS.md, between markers, and the chart beside it.
 *
 * @module
 */

import { denoPath } from "../harness/deno_tasks.ts";

const BEGIN = "<!-- bench:begin (written by deno task bench; edit outside these markers) -->";
const END = "<!-- bench:end -->";

/** Puts the generated section between the markers of BENCHMARKS.md, keeping the rest. */
export function spliceSection(document: string, section: string): string {
  const start = document.indexOf(BEGIN);
  const end = document.indexOf(END);
  const block = `${BEGIN}\n${section.trim()}\n${END}`;
  if (start < 0 || end < start) return `${document.trimEnd()}\n\n${block}\n`;
  return document.slice(0, start) + block + document.slice(end + END.length);
}

/** Writes a full run's section into BENCHMARKS.md and its chart beside it, formatted. */
export async function recordRun(section: string, chart: string): Promise<void> {
  const chartUrl = new URL("chart.svg", import.meta.url);
  await Deno.writeTextFile(chartUrl, chart);
  const path = new URL("../../BENCHMARKS.md", import.meta.url);
  const document = await Deno.readTextFile(path).catch(() => "# Benchmarks\n");
  await Deno.writeTextFile(path, spliceSection(document, section));
  // The repository's formatter aligns Markdown tables and indents SVG: keep
  // `deno task check` clean.
  try {
    await new Deno.Command(denoPath(), {
      args: ["fmt", "--quiet", path.pathname, chartUrl.pathname],
    }).output();
  } catch (error) {
    console.error(`# could not run deno fmt on what was recorded: ${error}`);
  }
}
