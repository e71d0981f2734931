/**
 * A tiny SVG chart helper: line charts (timelines) and grouped bar charts, nothing else.
 *
 * Written here rather than taken from a charting package: the benchmark needs two chart kinds
 * with fixed styling, the output must be deterministic text that diffs well in git, and every
 * charting library worth its name either wants a DOM/canvas (Chart.js, Vega in a browser) or
 * pulls in a dependency tree larger than this project. About 200 lines, no dependency.
 */

export interface Series {
  name: string;
  points: Array<[number, number]>;
  color?: string;
  /** Dashed line, for a second config drawn on the same axes. */
  dashed?: boolean;
}

export interface Marker {
  x: number;
  label: string;
  color?: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  markers?: Marker[];
  width?: number;
  height?: number;
  /** Fixed y maximum (otherwise from the data). */
  yMax?: number;
  /** Room on the right for the legend (px). Default 150. */
  legendWidth?: number;
}

export interface BarGroup {
  name: string;
  values: number[];
  color?: string;
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  categories: string[];
  groups: BarGroup[];
  width?: number;
  height?: number;
  /** Log-scale y axis (values must be > 0; zeros are drawn as empty bars labelled 0). */
  log?: boolean;
  /** Number format for the value labels on top of the bars. */
  format?: (value: number) => string;
  /** Room on the right for the legend (px). Default 150. */
  legendWidth?: number;
}

/** A chart that can be written alone or stacked with others. */
export interface Chart {
  width: number;
  height: number;
  body: string;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const MARGIN = { top: 34, bottom: 42, left: 62 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function num(value: number): string {
  const r = Math.round(value * 1000) / 1000;
  if (r === 0) return '0';
  return Number.isInteger(r) ? String(r) : String(Number(r.toFixed(2)));
}

/** 1, 2, 5 × 10^k steps giving about `count` ticks from 0 to `max`. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.001 && ticks.length < 50; v += step) {
    ticks.push(Math.round(v / step) * step);
  }
  if (ticks[ticks.length - 1]! < max) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

function frame(title: string, width: number): string {
  return `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="600" ${FONT}>${esc(title)}</text>`;
}

export function lineChart(options: LineChartOptions): Chart {
  const width = options.width ?? 760;
  const height = options.height ?? 300;
  const plotW = width - MARGIN.left - (options.legendWidth ?? 150);
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const all = options.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMaxRaw = xs.length ? Math.max(...xs) : 1;
  const xMax = xMaxRaw > xMin ? xMaxRaw : xMin + 1;
  const yTicks = niceTicks(options.yMax ?? Math.max(1, ...all.map((p) => p[1])));
  const yMax = yTicks[yTicks.length - 1]!;
  const sx = (x: number) => MARGIN.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - (y / yMax) * plotH;
  const out: string[] = [frame(options.title, width)];

  for (const t of yTicks) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11" ${FONT}>${num(t)}</text>`,
    );
  }
  // x ticks at multiples of a nice step (so 0 is a tick when the range spans it).
  const xStep = niceTicks(xMax - xMin, 8)[1] ?? 1;
  for (
    let k = Math.ceil(xMin / xStep);
    k * xStep <= xMax + 1e-9 && k < Math.ceil(xMin / xStep) + 60;
    k++
  ) {
    const value = k * xStep;
    const x = sx(value);
    out.push(
      `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#333"/>`,
      `<text x="${x.toFixed(1)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${num(value)}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${height - 8}" text-anchor="middle" font-size="12" ${FONT}>${esc(options.xLabel)}</text>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT}>${esc(options.yLabel)}</text>`,
  );
  for (const [index, marker] of (options.markers ?? []).entries()) {
    const x = sx(marker.x).toFixed(1);
    const color = marker.color ?? '#555';
    out.push(
      `<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="${color}" stroke-dasharray="4 3"/>`,
      `<text x="${Number(x) + 3}" y="${MARGIN.top + 11 + index * 12}" font-size="10" fill="${color}" ${FONT}>${esc(marker.label)}</text>`,
    );
  }
  options.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    if (s.points.length > 0) {
      const d = s.points
        .map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`)
        .join(' ');
      const dash = s.dashed ? ' stroke-dasharray="6 3"' : '';
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"${dash}/>`);
    }
    const ly = MARGIN.top + 8 + i * 16;
    const lx = MARGIN.left + plotW + 10;
    out.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
      `<text x="${lx + 22}" y="${ly + 4}" font-size="11" ${FONT}>${esc(s.name)}</text>`,
    );
  });
  return { width, height, body: out.join('\n') };
}

export function barChart(options: BarChartOptions): Chart {
  const width = options.width ?? 760;
  const height = options.height ?? 320;
  const plotW = width - MARGIN.left - (options.legendWidth ?? 150);
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const format = options.format ?? ((v: number) => (v >= 100 ? v.toFixed(0) : num(v)));
  const values = options.groups.flatMap((g) => g.values);
  const out: string[] = [frame(options.title, width)];

  let sy: (v: number) => number;
  let ticks: number[];
  if (options.log) {
    const positive = values.filter((v) => v > 0);
    // One decade below the smallest value, so the smallest bar is still visible.
    const bottom = Math.floor(Math.log10(Math.min(1, ...positive))) - 1;
    const top = Math.ceil(Math.log10(Math.max(10, ...positive)));
    ticks = Array.from({ length: top - bottom + 1 }, (_, k) => 10 ** (bottom + k));
    // Zero (and anything below the axis) is drawn at the bottom.
    sy = (v) =>
      MARGIN.top +
      plotH -
      (v > 10 ** bottom ? ((Math.log10(v) - bottom) / (top - bottom)) * plotH : 0);
  } else {
    ticks = niceTicks(Math.max(1, ...values));
    const top = ticks[ticks.length - 1]!;
    sy = (v) => MARGIN.top + plotH - (v / top) * plotH;
  }
  for (const t of ticks) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11" ${FONT}>${num(t)}</text>`,
    );
  }
  const slot = plotW / Math.max(1, options.categories.length);
  const barW = (slot * 0.8) / Math.max(1, options.groups.length);
  options.categories.forEach((category, c) => {
    const x0 = MARGIN.left + c * slot + slot * 0.1;
    out.push(
      `<text x="${(MARGIN.left + c * slot + slot / 2).toFixed(1)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${esc(category)}</text>`,
    );
    options.groups.forEach((g, i) => {
      const v = g.values[c] ?? 0;
      const color = g.color ?? PALETTE[i % PALETTE.length]!;
      const y = sy(v);
      const x = x0 + i * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - y).toFixed(1)}" fill="${color}"/>`,
        `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="9" ${FONT}>${esc(format(v))}</text>`,
      );
    });
  });
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12" ${FONT}>${esc(options.yLabel)}${options.log ? ' (log)' : ''}</text>`,
  );
  options.groups.forEach((g, i) => {
    const color = g.color ?? PALETTE[i % PALETTE.length]!;
    const ly = MARGIN.top + 8 + i * 16;
    const lx = MARGIN.left + plotW + 10;
    out.push(
      `<rect x="${lx}" y="${ly - 6}" width="14" height="10" fill="${color}"/>`,
      `<text x="${lx + 20}" y="${ly + 3}" font-size="11" ${FONT}>${esc(g.name)}</text>`,
    );
  });
  return { width, height, body: out.join('\n') };
}

/** Charts stacked vertically into one SVG document. */
export function toSvg(...charts: Chart[]): string {
  const width = Math.max(...charts.map((c) => c.width));
  const height = charts.reduce((sum, c) => sum + c.height, 0);
  let y = 0;
  const parts = charts.map((c) => {
    const g = `<g transform="translate(0 ${y})">\n${c.body}\n</g>`;
    y += c.height;
    return g;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
