import type { BatchItem, Command, RawReply } from './backend.js';

/**
 * Redis' own answer to "is this command read-only?", from `COMMAND INFO <name>`, asked once
 * per command name and cached. Using the server's flags means no table to keep in sync with
 * Redis versions or modules.
 *
 * Container commands (`OBJECT`, `CLIENT`, `XINFO`...) have no flags of their own in Redis 7;
 * their subcommands (`object|encoding`) come back in the same reply and are used instead.
 */
interface Entry {
  readonly: boolean;
  subcommands: Map<string, boolean>;
}

/**
 * Commands without the `readonly` flag that only answer about the connection itself and touch
 * no data. Refusing them would leave a read-only token unable to even health-check a member.
 */
const CONNECTION_PROBES = new Set(['ping', 'echo']);

/** Redis has ~240 commands; the cap only stops unknown names from growing the cache. */
const MAX_ENTRIES = 2048;

export class CommandFlags {
  private readonly cache = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry | null>>();

  /** `run` sends a command to the backend (a failure propagates as the request's failure). */
  constructor(private readonly run: (command: Command) => Promise<BatchItem>) {}

  async isReadOnly(command: Command): Promise<boolean> {
    const name = command[0].toLowerCase();
    if (CONNECTION_PROBES.has(name)) return true;
    const entry = await this.lookup(name);
    if (!entry) return false;
    if (entry.subcommands.size > 0) {
      const sub = command[1]?.toString().toLowerCase();
      return sub !== undefined && entry.subcommands.get(`${name}|${sub}`) === true;
    }
    return entry.readonly;
  }

  private async lookup(name: string): Promise<Entry | null> {
    const cached = this.cache.get(name);
    if (cached) return cached;
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.fetch(name).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return pending;
  }

  private async fetch(name: string): Promise<Entry | null> {
    const answer = await this.run(['COMMAND', 'INFO', name]);
    if (answer.kind !== 'ok' || !Array.isArray(answer.reply)) return null;
    const info = answer.reply[0];
    // Unknown command: `[nil]`. Not cached, so a later MODULE LOAD is picked up.
    if (!Array.isArray(info)) return null;
    const entry: Entry = { readonly: hasReadonlyFlag(info), subcommands: new Map() };
    const subs = info[9];
    if (Array.isArray(subs)) {
      for (const sub of subs) {
        if (Array.isArray(sub) && sub[0] !== undefined && sub[0] !== null) {
          entry.subcommands.set(String(sub[0]).toLowerCase(), hasReadonlyFlag(sub));
        }
      }
    }
    if (this.cache.size < MAX_ENTRIES) this.cache.set(name, entry);
    return entry;
  }
}

function hasReadonlyFlag(info: RawReply[]): boolean {
  const flags = info[2];
  return Array.isArray(flags) && flags.some((flag) => String(flag).toLowerCase() === 'readonly');
}
