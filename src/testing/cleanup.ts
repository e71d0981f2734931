/**
 * Process-exit cleanup registry. Everything a local cluster starts registers a synchronous
 * undo here, so a test run that crashes or is interrupted does not leave redis-servers behind.
 * (A SIGKILL of this process is covered separately by the watchdog in redis-process.ts: no
 * handler can run then.)
 */

type Cleanup = () => void;

const entries = new Set<Cleanup>();
const SIGNALS: readonly string[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let installed = false;
/**
 * Signals whose listener (not ours) was removed in the current synchronous run. A `once`
 * listener removes itself just before it is called, so if one runs ahead of ours in the same
 * emit (registered with `prependListener` after ours), it no longer shows in `listenerCount`
 * by the time ours runs. Cleared in a microtask, i.e. after the emit.
 */
const removedThisTick = new Set<string>();

/** Registers `fn` to run once if the process exits first; returns the unregister function. */
export function registerCleanup(fn: Cleanup): () => void {
  entries.add(fn);
  install();
  return () => {
    entries.delete(fn);
    // Leave the process' signal behaviour exactly as we found it once nothing is registered.
    if (entries.size === 0) uninstall();
  };
}

/** Runs (and forgets) every registered cleanup now. Exposed for the cluster script and tests. */
export function runCleanups(): void {
  for (const fn of [...entries]) {
    entries.delete(fn);
    try {
      fn();
    } catch {
      // One failed undo must not keep the others from running during exit.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // If the application listens for this signal too, it has taken charge of shutting down
  // (e.g. scripts/cluster.ts stops the cluster gracefully, or an app's
  // `process.once('SIGINT', async () => { await cluster.stop(); ... })`); the 'exit' hook still
  // catches whatever it leaves behind. If ours is the only listener, our mere presence has
  // suppressed Node's default "terminate" behaviour, so clean up and re-raise the signal to
  // restore it. Ours is prepended, so it normally runs first and `once` listeners still count.
  const others = process.listenerCount(signal) - 1 + (removedThisTick.has(signal) ? 1 : 0);
  if (others > 0) return;
  runCleanups();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  // The monitor variant observes without changing behaviour: a plain 'uncaughtException'
  // listener would swallow the crash and keep the process alive.
  process.on('uncaughtExceptionMonitor', runCleanups);
  process.on('removeListener', onRemoveListener);
  // First in line: a `once` listener of the app removes itself before it runs, so a listener
  // after it could not see it any more.
  for (const signal of SIGNALS) process.prependListener(signal as NodeJS.Signals, onSignal);
}

function onRemoveListener(event: string | symbol, listener: unknown): void {
  if (typeof event !== 'string' || !SIGNALS.includes(event) || listener === onSignal) return;
  if (removedThisTick.size === 0) queueMicrotask(() => removedThisTick.clear());
  removedThisTick.add(event);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', runCleanups);
  process.off('uncaughtExceptionMonitor', runCleanups);
  process.off('removeListener', onRemoveListener);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}
