import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

export interface Machine {
  date: string;
  node: string;
  cpuModel: string;
  /** `os.cpus().length`. */
  cores: number;
  /** `nproc` (CPUs this process may use), when available. */
  nproc: number | undefined;
  memoryGiB: number;
  platform: string;
}

export function machine(): Machine {
  let nproc: number | undefined;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    nproc = undefined;
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    nproc,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
  };
}
