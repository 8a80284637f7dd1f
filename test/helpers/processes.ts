/** Processes a test started, as Linux sees them: whether one is alive, and a primary's workers. */
import { readFileSync } from 'node:fs';

/** True while process `pid` exists (signal 0 only checks). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The live child processes of `pid` (a primary's workers), from /proc; [] once it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
