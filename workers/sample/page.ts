/**
 * The status page: one self-contained HTML document (no external scripts, styles or fonts,
 * so it works offline and under a strict CSP) that polls `/status` and renders each member's
 * health, circuit, lag and latency, and the recent switches. Values are inserted with
 * `textContent`, never as HTML.
 */

const STYLE = `
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin-bottom: .25rem; }
  .muted { color: GrayText; font-size: .9rem; }
  table { border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; }
  th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid color-mix(in srgb, currentColor 20%, transparent); }
  th { font-weight: 600; font-size: .85rem; }
  td.num { font-variant-numeric: tabular-nums; }
  .pill { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .85rem; }
  .healthy, .closed { background: #1a7f3733; }
  .unhealthy, .open { background: #cf222e33; }
  .unknown, .half-open { background: #9a670033; }
  .active { font-weight: 700; }
  #error { color: #cf222e; }
`;

const SCRIPT = `
  const REFRESH_MS = 2000;
  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const ago = (at, now) => (at === undefined ? '' : ((now - at) / 1000).toFixed(1) + ' s ago');
  const ms = (v) => (v === undefined ? '' : v + ' ms');
  function render(s) {
    document.getElementById('active').textContent = s.active ?? '(none yet)';
    document.getElementById('updated').textContent = new Date(s.at).toISOString();
    const rows = document.getElementById('members');
    rows.replaceChildren();
    for (const m of s.members) {
      const tr = el('tr');
      tr.append(el('td', m.name + (m.name === s.active ? ' (active)' : ''), m.name === s.active ? 'active' : ''));
      tr.append(el('td', m.weight, 'num'));
      const status = el('td'); status.append(el('span', m.status, 'pill ' + m.status)); tr.append(status);
      const circuit = el('td'); circuit.append(el('span', m.circuit, 'pill ' + m.circuit)); tr.append(circuit);
      tr.append(el('td', m.lagging ? 'lagging' : ''));
      tr.append(el('td', ms(m.latencyEwmaMs), 'num'));
      tr.append(el('td', ago(m.checkedAt, s.at)));
      tr.append(el('td', m.lastError ? m.lastError.kind + ': ' + m.lastError.message : ''));
      rows.append(tr);
    }
    const list = document.getElementById('switches');
    list.replaceChildren();
    const recent = [...s.switches].reverse();
    if (recent.length === 0) list.append(el('li', 'none yet', 'muted'));
    for (const w of recent) {
      list.append(el('li', new Date(w.at).toISOString() + '  ' + (w.from ?? '(start)') + ' \\u2192 ' + w.to + '  (' + w.reason + ')'));
    }
  }
  async function refresh() {
    try {
      const res = await fetch(new URL('status', location.href), { cache: 'no-store' });
      if (!res.ok) throw new Error('/status answered ' + res.status);
      render(await res.json());
      document.getElementById('error').textContent = '';
    } catch (e) {
      document.getElementById('error').textContent = String(e && e.message ? e.message : e);
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh();
`;

export function statusPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>redis-edge-failover status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<h1>redis-edge-failover</h1>
<p class="muted">What this isolate knows about the members. Active: <strong id="active">…</strong>
 · updated <span id="updated">…</span> · refreshes every 2 s from <a href="status">/status</a>.</p>
<p id="error" role="alert"></p>
<table>
<thead><tr><th>member</th><th>weight</th><th>health</th><th>circuit</th><th>lag</th><th>latency</th><th>checked</th><th>last error</th></tr></thead>
<tbody id="members"></tbody>
</table>
<h2>Recent switches</h2>
<ul id="switches"></ul>
<script>${SCRIPT}</script>
</body>
</html>`;
}
