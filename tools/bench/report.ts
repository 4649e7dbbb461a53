/**
 * The benchmark's outputs from its rows: the text table, the Markdown table, the verdict on
 * each target of issue 3, and a hand-written SVG chart. Pure functions: no I/O here.
 *
 * @module
 */

import { type BenchRow, SERVER_NAMES, type ServerName } from "./types.ts";

/** A scenario's name as the table shows it: `flood 1x100 32B tls`. */
export function describeScenario(row: BenchRow): string {
  const size = row.textBytes >= 1024 ? `${row.textBytes / 1024}KiB` : `${row.textBytes}B`;
  return `${row.mode} ${row.keyboards}x${row.displays} ${size}${row.tls ? " tls" : ""}`;
}

function rate(value: number | null): string {
  if (value === null) return "-";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(0);
}

function ms(value: number | undefined): string {
  if (value === undefined) return "-";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function pct(value: number | null): string {
  return value === null ? "-" : `${value.toFixed(0)}%`;
}

function count(value: number | null): string {
  return value === null ? "-" : String(value);
}

function order(row: BenchRow): string {
  if (row.orderHeld === null) return "-";
  if (row.corrupt) return `CORRUPT(${row.corrupt})`;
  return row.orderHeld ? "yes" : "NO";
}

function memory(row: BenchRow): string {
  if (row.serverPeakRssMiB === null) return "-";
  const peak = row.serverPeakRssMiB.toFixed(0);
  if (row.rssPerDisplayKiB === null) return peak;
  const after = row.rssPerDisplayAfterKiB?.toFixed(1) ?? "?";
  return `${peak} (${row.rssPerDisplayKiB.toFixed(1)}/${after} KiB/d)`;
}

/** The note column: why a row is odd, and which process was the bottleneck. */
function note(row: BenchRow): string {
  const parts: string[] = [];
  if (row.status !== "ok") parts.push(row.status.toUpperCase());
  if (row.bound) parts.push(`${row.bound}-bound`);
  if (row.note) parts.push(row.note);
  return parts.join("; ");
}

const HEADERS = [
  "server",
  "scenario",
  "deliveries/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "lost",
  "order",
  "srv CPU",
  "srv peak RSS MiB",
  "gen CPU",
  "note",
];

function cells(row: BenchRow): string[] {
  return [
    row.server,
    describeScenario(row),
    rate(row.deliveriesPerSec),
    ms(row.latencyMs?.p50),
    ms(row.latencyMs?.p99),
    ms(row.latencyMs?.p999),
    count(row.lost),
    order(row),
    pct(row.serverCpuPct),
    memory(row),
    pct(row.generatorCpuPct),
    note(row),
  ];
}

/** One line of the text table; with `widths`, padded to them. */
export function formatTableLine(row: BenchRow | null, widths?: number[]): string {
  const values = row ? cells(row) : HEADERS;
  return values.map((v, i) => widths ? v.padEnd(widths[i]) : v).join("  ").trimEnd();
}

/** Column widths that fit the headers and typical values, so rows can print as they come. */
export const TABLE_WIDTHS = [8, 22, 12, 7, 7, 8, 8, 11, 7, 22, 7, 0];

/** The whole table as Markdown. */
export function markdownTable(rows: BenchRow[]): string {
  const line = (values: string[]) => `| ${values.map((v) => v.replaceAll("|", "/")).join(" | ")} |`;
  return [
    line(HEADERS),
    line(HEADERS.map((_, i) => (i >= 2 && i <= 10 ? "---:" : "---"))),
    ...rows.map((row) => line(cells(row))),
  ].join("\n");
}

/** One target of issue 3 and how this run did against it. */
export interface Verdict {
  target: string;
  measured: string;
  /** null when the run lacks a row the target needs (a peer skipped or failed). */
  met: boolean | null;
}

function find(rows: BenchRow[], server: ServerName, scenario: string): BenchRow | undefined {
  return rows.find((r) => r.server === server && r.scenario === scenario && r.status === "ok");
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a && b ? a / b : null;
}

function fmtRatio(value: number | null): string {
  return value === null ? "n/a" : `${value.toFixed(2)}x`;
}

/** Deliveries per second of server CPU: what a server costs when the generator is the limit. */
export function efficiency(row: BenchRow | undefined): number | null {
  if (!row?.deliveriesPerSec || !row.serverCpuPct) return null;
  return row.deliveriesPerSec / (row.serverCpuPct / 100);
}

function intact(row: BenchRow | undefined): boolean {
  return row !== undefined && row.lost === 0 && row.corrupt === 0 && row.orderHeld === true;
}

/** Judges the run against each target of issue 3 (plain TCP, 32-byte text unless named). */
export function verdicts(rows: BenchRow[]): Verdict[] {
  const out: Verdict[] = [];
  const w = (s: string) => find(rows, "wirechat", s);
  const n = (s: string) => find(rows, "ncat", s);
  const throughput = (scenario: string, peer: ServerName, factor: number, label: string) => {
    const mine = w(scenario);
    const theirs = find(rows, peer, scenario);
    const r = ratio(mine?.deliveriesPerSec, theirs?.deliveriesPerSec);
    const e = ratio(efficiency(mine), efficiency(theirs));
    const bound = [mine, theirs].some((row) => row?.bound === "generator")
      ? "; generator-bound, so also compare deliveries per server CPU-second: " + fmtRatio(e)
      : "";
    out.push({
      target: `${label}: >= ${factor}x ${peer}`,
      measured: `${fmtRatio(r)} (${rate(mine?.deliveriesPerSec ?? null)} vs ${
        rate(theirs?.deliveriesPerSec ?? null)
      } deliveries/s)${bound}`,
      met: r === null ? null : r >= factor && intact(mine),
    });
  };
  throughput("flood-1x100-32B", "ncat", 1.0, "Flood 1x100");
  throughput("flood-1x100-32B", "brief", 20, "Flood 1x100");

  const one = w("flood-1x100-32B");
  const ten = w("flood-10x100-32B");
  const r10 = ratio(ten?.deliveriesPerSec, one?.deliveriesPerSec);
  const ncatTen = n("flood-10x100-32B");
  out.push({
    target: "Flood 10x100: every frame intact and in order, >= 0.8x wirechat's 1x100 rate",
    measured: `${ten ? (intact(ten) ? "intact, in order, 0 lost" : "NOT intact") : "n/a"}; ${
      fmtRatio(r10)
    } of 1x100${
      ncatTen
        ? `; ncat: ${ncatTen.corrupt ? `${ncatTen.corrupt} displays saw corrupt frames` : "intact"}`
        : ""
    }`,
    met: ten && r10 !== null ? intact(ten) && r10 >= 0.8 : null,
  });
  throughput("flood-1x100-32B-tls", "ncat", 1.0, "TLS flood 1x100");
  // Wide fan-out (issue 10): the cost per display, where a slow path shows most.
  throughput("flood-1x1000-32B", "ncat", 1.0, "Flood 1x1000");

  for (const displays of [100, 1000]) {
    const scenario = `paced-1x${displays}-32B`;
    const mine = w(scenario);
    const theirs = n(scenario);
    const r = ratio(mine?.latencyMs?.p99, theirs?.latencyMs?.p99);
    out.push({
      target: `Paced 1x${displays}: p99 <= 1.2x ncat's`,
      measured: `${fmtRatio(r)} (${ms(mine?.latencyMs?.p99)} vs ${ms(theirs?.latencyMs?.p99)} ms)`,
      met: r === null ? null : r <= 1.2 && intact(mine),
    });
  }

  const idle = rows.find((r) => r.server === "wirechat" && r.mode === "idle");
  out.push({
    target: `${idle?.displays ?? 10000} idle displays: <= 20 KiB server RSS each, all receive`,
    measured: idle?.status === "ok"
      ? `${idle.rssPerDisplayKiB?.toFixed(1)} KiB each while idle (${
        idle.rssPerDisplayAfterKiB?.toFixed(1)
      } KiB once the message went out); ${idle.lost} of ${idle.displays} lost`
      : "n/a",
    met: idle?.status === "ok" && idle.rssPerDisplayKiB !== null
      ? idle.rssPerDisplayKiB <= 20 && idle.lost === 0
      : null,
  });
  return out;
}

/** The verdicts as a Markdown table. */
export function markdownVerdicts(list: Verdict[]): string {
  const mark = (met: boolean | null) => met === null ? "not measured" : met ? "met" : "**NOT met**";
  return [
    "| target | measured | |",
    "| --- | --- | --- |",
    ...list.map((v) => `| ${v.target} | ${v.measured} | ${mark(v.met)} |`),
  ].join("\n");
}

const COLORS: Record<ServerName, string> = {
  wirechat: "#1f77b4",
  baseline: "#9467bd",
  ncat: "#d62728",
  brief: "#2ca02c",
};

const LABELS: Record<ServerName, string> = {
  wirechat: "wirechat",
  baseline: "wirechat (baseline)",
  ncat: "ncat --broker",
  brief: "brief's design (Python)",
};

/** A power of ten as an axis shows it: 10k, 1M. */
function axisLabel(value: number): string {
  if (value >= 1e6) return `${Math.round(value / 1e6)}M`;
  if (value >= 1e3) return `${Math.round(value / 1e3)}k`;
  return String(Math.round(value));
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * Deliveries/s against displays (both log scales), one line per server, one panel per text
 * size: flood, one keyboard, plain TCP.
 */
export function svgChart(rows: BenchRow[], title: string): string {
  const flood = rows.filter((r) =>
    r.mode === "flood" && r.keyboards === 1 && !r.tls && r.status === "ok" && r.deliveriesPerSec
  );
  // The baseline's line only where the run measured one (--baseline).
  const servers: ServerName[] = rows.some((r) => r.server === "baseline")
    ? ["wirechat", "baseline", ...SERVER_NAMES.slice(1)]
    : [...SERVER_NAMES];
  const sizes = [...new Set(flood.map((r) => r.textBytes))].sort((a, b) => a - b);
  const panelW = 360, panelH = 260, left = 70, top = 50, gap = 90;
  const width = Math.max(680, left + sizes.length * (panelW + gap) - gap + 30);
  const height = top + panelH + 90;
  const displays = [...new Set(flood.map((r) => r.displays))].sort((a, b) => a - b);
  const values = flood.map((r) => r.deliveriesPerSec!);
  const yLow = 10 ** Math.floor(Math.log10(Math.min(...values, 1e6)));
  const yHigh = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)));
  const xLow = Math.min(...displays, 1), xHigh = Math.max(...displays, 10);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  );
  sizes.forEach((size, panel) => {
    const x0 = left + panel * (panelW + gap);
    const x = (d: number) =>
      x0 + (xHigh === xLow ? 0 : (Math.log10(d / xLow) / Math.log10(xHigh / xLow)) * panelW);
    const y = (v: number) =>
      top + panelH - (Math.log10(v / yLow) / Math.log10(yHigh / yLow)) * panelH;
    const label = size >= 1024 ? `${size / 1024} KiB text` : `${size} B text`;
    parts.push(
      `<text x="${x0 + panelW / 2}" y="${top - 10}" text-anchor="middle">${label}</text>`,
      `<rect x="${x0}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#999"/>`,
    );
    for (let v = yLow; v <= yHigh * 1.0001; v *= 10) {
      parts.push(
        `<line x1="${x0}" x2="${x0 + panelW}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
        `<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end">${axisLabel(v)}</text>`,
      );
    }
    for (const d of displays) {
      parts.push(
        `<line x1="${x(d)}" x2="${x(d)}" y1="${top}" y2="${top + panelH}" stroke="#eee"/>`,
        `<text x="${x(d)}" y="${top + panelH + 16}" text-anchor="middle">${d}</text>`,
      );
    }
    parts.push(
      `<text x="${x0 + panelW / 2}" y="${
        top + panelH + 34
      }" text-anchor="middle">displays (1 keyboard, flood, plain TCP)</text>`,
    );
    if (panel === 0) {
      parts.push(
        `<text transform="translate(16 ${
          top + panelH / 2
        }) rotate(-90)" text-anchor="middle">deliveries/s</text>`,
      );
    }
    for (const server of servers) {
      const points = flood
        .filter((r) => r.server === server && r.textBytes === size)
        .sort((a, b) => a.displays - b.displays)
        .map((r) => [x(r.displays), y(r.deliveriesPerSec!)] as const);
      if (points.length === 0) continue;
      const color = COLORS[server];
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${
          points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ")
        }"/>`,
        ...points.map(([px, py]) =>
          `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="${color}"/>`
        ),
      );
    }
  });
  servers.forEach((server, i) => {
    const lx = left + i * (servers.length > 3 ? 160 : 200), ly = height - 18;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${
        COLORS[server]
      }" stroke-width="3"/>`,
      `<text x="${lx + 30}" y="${ly}">${escapeXml(LABELS[server])}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
