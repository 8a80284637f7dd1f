/**
 * How a refused start reads and exits: one line naming the cause, never a stack trace (it would land in the journal
 * instead of the cause), and sysexits' EX_CONFIG (78) when a configuration value is wrong, so a systemd unit with
 * RestartPreventExitStatus=78 stops retrying what a restart cannot fix — a master key that does not open the stored
 * secrets, or a key file that holds none, among them. Anything else (a database that is down, an
 * address in use, a data directory in use) exits 1: a restart may well succeed.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { MasterKeyFileError, MasterKeyMismatchError } from '../policy/index.ts';

/** sysexits' EX_CONFIG: systemd units can refuse to restart on it (RestartPreventExitStatus=78). */
export const EX_CONFIG = 78;

/** A configuration value the start found unusable beyond its syntax (a certificate that does not load, a data directory that is a file). */
export class SettingError extends Error {
  override name = 'SettingError';
  /** `setting`: the variable(s) at fault, as an operator writes them (ANVIL_TLS_CERT). */
  constructor(
    readonly setting: string,
    detail: string,
  ) {
    super(`${setting}: ${detail}`);
  }
}

/** Errors of listen(2) and the name lookup before it that a different ANVIL_ADDRESS fixes; EADDRINUSE is another process's, and may pass. */
const BAD_ADDRESS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EACCES', 'EAFNOSUPPORT', 'EINVAL']);

/** A listen error as the setting at fault names it, or the error itself when another process is in the way. */
export function listenError(error: NodeJS.ErrnoException, setting: string, address: string): Error {
  if (!BAD_ADDRESS.has(error.code ?? '')) return error;
  const why = error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' ? 'no such host' : error.code === 'EACCES' ? 'not allowed to bind it' : 'not an address of this host';
  return new SettingError(setting, `cannot listen on ${address}: ${why} (${error.code})`);
}

/**
 * Creates the data directory and its missing parents one level at a time, or throws SettingError naming
 * ANVIL_DATA_DIR. Not mkdirSync's `recursive`: under /proc (a parent that exists but takes no new entry) Node's
 * recursive mkdir retries the same ENOENT forever, and the start hangs silently.
 */
export function makeDataDir(dataDir: string): void {
  const missing: string[] = [];
  for (let dir = dataDir; ; dir = dirname(dir)) {
    let isDir: boolean;
    try {
      isDir = statSync(dir).isDirectory();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || dirname(dir) === dir) throw dataDirError(dataDir, `cannot look at ${dir} (${code})`);
      missing.unshift(dir);
      continue;
    }
    if (!isDir) throw dataDirError(dataDir, dir === dataDir ? 'it is a file, not a directory' : `${dir} is a file, not a directory`);
    break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw dataDirError(dataDir, `cannot create ${dir} (${code})`);
    }
  }
}

function dataDirError(dataDir: string, detail: string): SettingError {
  return new SettingError('ANVIL_DATA_DIR', `${dataDir}: ${detail}`);
}

/**
 * The line and exit status of a refused start. `known`: an error whose message is written for the operator
 * (policy/, storage/ errors, listen errors); any other prints its message only (its stack under ANVIL_LOG_LEVEL=debug
 * or trace, for a bug report).
 */
export function startFailure(error: Error, known: boolean, logLevel?: string): { line: string; code: number } {
  const message = (error.message || String(error)).replace(/\s*\n\s*/g, ' ');
  if (error instanceof SettingError || isMasterKeyError(error)) return { line: `anvil: cannot start: ${message}`, code: EX_CONFIG };
  const stack = !known && (logLevel === 'debug' || logLevel === 'trace') && error.stack ? `\n${error.stack}` : '';
  return { line: `anvil: cannot start: ${message}${stack}`, code: 1 };
}

/** A master key that cannot open the stored secrets (or a key file holding none), also as the cause of a wrapper. */
function isMasterKeyError(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof MasterKeyMismatchError || e instanceof MasterKeyFileError) return true;
  }
  return false;
}
