/**
 * The live terminal view. On a terminal it redraws one block in place: a line per member
 * (requests served in the last seconds as a bar, errors, health, circuit, lag), then the
 * switch events. Piped (CI, logs) it prints one status line per second instead.
 */
import type { StoreSnapshot } from '../../src/index.js';
import type { Recorder } from './recorder.js';

const ESC = '\u001b[';
const color = (code: number, text: string, on: boolean) =>
  on ? `${ESC}${code}m${text}${ESC}0m` : text;

export interface ViewState {
  phase: string;
  snapshot: StoreSnapshot | undefined;
  events: string[];
}

function bar(n: number, max: number, width: number): string {
  const filled = max > 0 ? Math.round((n / max) * width) : 0;
  return '█'.repeat(filled) + '·'.repeat(width - filled);
}

export class LiveView {
  private drawnLines = 0;
  private lastLineAt = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly recorder: Recorder,
    private readonly members: string[],
  ) {}

  get interactive(): boolean {
    return this.out.isTTY === true;
  }

  render(state: ViewState, now: number): void {
    const tty = this.interactive;
    const recent = this.recorder.recent(3, now);
    const max = Math.max(1, ...Object.values(recent.served));
    const elapsed = ((now - this.recorder.startedAt) / 1000).toFixed(0);
    const lines: string[] = [];
    lines.push(`${color(1, `t=${elapsed}s`, tty)}  ${state.phase}  (requests in the last 3 s)`);
    for (const name of this.members) {
      const m = state.snapshot?.members.find((x) => x.name === name);
      const active = state.snapshot?.active === name;
      const health = m?.status ?? 'unknown';
      const healthText = color(
        health === 'healthy' ? 32 : health === 'unhealthy' ? 31 : 33,
        health.padEnd(9),
        tty,
      );
      const lag = m?.lagging ? color(33, ' lagging', tty) : '';
      const circuit = m && m.circuit !== 'closed' ? color(31, ` circuit ${m.circuit}`, tty) : '';
      const served = recent.served[name] ?? 0;
      lines.push(
        `  ${active ? '▶' : ' '} ${name.padEnd(3)} ${bar(served, max, 24)} ${String(served).padStart(4)}  ${healthText}${circuit}${lag}`,
      );
    }
    lines.push(
      `    errors in the last 3 s: ${recent.errors === 0 ? color(32, '0', tty) : color(31, String(recent.errors), tty)}`,
    );
    if (tty) {
      for (const e of state.events.slice(-6)) lines.push(`    ${e}`);
      if (this.drawnLines > 0) this.out.write(`${ESC}${this.drawnLines}F${ESC}0J`);
      this.out.write(`${lines.join('\n')}\n`);
      this.drawnLines = lines.length;
    } else if (now - this.lastLineAt >= 1000) {
      this.lastLineAt = now;
      const compact = this.members
        .map((name) => {
          const m = state.snapshot?.members.find((x) => x.name === name);
          const mark = state.snapshot?.active === name ? '*' : '';
          return `${mark}${name}:${recent.served[name] ?? 0}/${m?.status ?? '?'}${m?.lagging ? '/lagging' : ''}`;
        })
        .join(' ');
      this.out.write(`t=${elapsed}s ${compact} errors:${recent.errors} | ${state.phase}\n`);
    }
  }

  /** Events print immediately when piped; on a terminal they appear inside the block. */
  event(line: string): void {
    if (!this.interactive) this.out.write(`  >> ${line}\n`);
  }
}
