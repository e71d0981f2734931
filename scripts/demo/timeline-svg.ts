/**
 * The demo's timeline chart: requests per second served by each member, errors, and vertical
 * markers for the fault, the restore and every switch. Plain SVG strings: a chart this small
 * does not justify a charting dependency.
 */
import type { Marker, SecondBucket } from './recorder.js';

const COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2', '#be123c'];
const MARKER_COLORS: Record<Marker['kind'], string> = {
  fault: '#dc2626',
  restore: '#16a34a',
  switch: '#6b7280',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function timelineSvg(
  buckets: SecondBucket[],
  members: string[],
  markers: Marker[],
  startedAt: number,
  title: string,
): string {
  const width = 900;
  const height = 360;
  const left = 50;
  const right = 130;
  const top = 40;
  const bottom = 40;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const seconds = Math.max(1, buckets.length);
  let peak = 1;
  for (const b of buckets) {
    for (const n of Object.values(b.served)) peak = Math.max(peak, n);
    peak = Math.max(peak, b.errors);
  }
  const x = (s: number) => left + (s / seconds) * plotW;
  const y = (v: number) => top + plotH - (v / peak) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#111"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#111"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end">${peak}</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end">0</text>`,
    `<text x="${left + plotW / 2}" y="${height - 8}" text-anchor="middle">seconds (requests per second per member)</text>`,
  );
  for (let s = 0; s <= seconds; s += Math.max(1, Math.ceil(seconds / 10))) {
    parts.push(`<text x="${x(s)}" y="${top + plotH + 16}" text-anchor="middle">${s}</text>`);
  }
  const series = [
    ...members.map((m, i) => ({ name: m, color: COLORS[i % COLORS.length]! })),
    { name: 'errors', color: '#dc2626' },
  ];
  series.forEach((serie, i) => {
    const points = buckets
      .map((b, s) => {
        const v = serie.name === 'errors' ? b.errors : (b.served[serie.name] ?? 0);
        return `${x(s + 0.5).toFixed(1)},${y(v).toFixed(1)}`;
      })
      .join(' ');
    const dash = serie.name === 'errors' ? ' stroke-dasharray="4 3"' : '';
    parts.push(
      `<polyline fill="none" stroke="${serie.color}" stroke-width="2"${dash} points="${points}"/>`,
    );
    const ly = top + 10 + i * 18;
    parts.push(
      `<line x1="${left + plotW + 14}" y1="${ly}" x2="${left + plotW + 34}" y2="${ly}" stroke="${serie.color}" stroke-width="3"${dash}/>`,
      `<text x="${left + plotW + 40}" y="${ly + 4}">${escapeXml(serie.name === 'errors' ? 'errors' : `member ${serie.name}`)}</text>`,
    );
  });
  markers.forEach((m, i) => {
    const mx = x((m.at - startedAt) / 1000);
    const color = MARKER_COLORS[m.kind];
    parts.push(
      `<line x1="${mx.toFixed(1)}" y1="${top}" x2="${mx.toFixed(1)}" y2="${top + plotH}" stroke="${color}" stroke-dasharray="2 2"/>`,
      `<text x="${(mx + 3).toFixed(1)}" y="${top + 12 + (i % 4) * 13}" fill="${color}">${escapeXml(m.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
