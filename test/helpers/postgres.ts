/**
 * A real PostgreSQL server for the policy-store tests: Debian's binaries (test/tools/postgres.sh installs them), a
 * cluster initialised once into a cached template and copied per test process, started on a free loopback port with
 * its socket in a temporary directory, and a fresh database per caller. PostgreSQL refuses to run as root, so when the
 * tests run as root the cluster belongs to (and runs as) the `postgres` user.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestFn } from 'ava';
import pg from 'pg';
import { freePort } from './minio.ts';

/** The directory holding initdb and postgres, or undefined when PostgreSQL is not installed. */
export const POSTGRES_BIN: string | undefined = (() => {
  if (process.env.POSTGRES_BIN) return process.env.POSTGRES_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin/postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
})();

const AS_ROOT = process.getuid?.() === 0;

/** Runs a PostgreSQL program, as the postgres user when we are root. */
function command(program: string, args: string[]): [string, string[]] {
  const path = join(POSTGRES_BIN!, program);
  return AS_ROOT ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

function chownToPostgres(path: string): void {
  if (AS_ROOT) execFileSync('chown', ['-R', 'postgres:postgres', path]);
}

/**
 * True when PostgreSQL can run here. Otherwise registers one failing test saying how to install it: `npm test`
 * installs it first (its pretest step), so a missing server means that step failed, which must never pass silently.
 */
export function postgresOrExplain<C>(test: TestFn<C>, area: string): boolean {
  if (POSTGRES_BIN !== undefined) return true;
  test(`${area}: PostgreSQL is available`, (t) => t.fail('PostgreSQL binaries not found: run test/tools/postgres.sh (or set POSTGRES_BIN)'));
  return false;
}

/** An initialised, never started cluster, made once per machine and copied by every test process. */
function template(): string {
  const cache = join(process.env.ANVIL_CACHE ?? join(homedir(), '.cache/anvil'), `postgres-template-${POSTGRES_BIN!.split('/').at(-2)}`);
  if (existsSync(join(cache, 'PG_VERSION'))) return cache;
  const work = mkdtempSync(join(tmpdir(), 'anvil-pg-init-'));
  chownToPostgres(work);
  const data = join(work, 'data');
  const [cmd, args] = command('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync']);
  execFileSync(cmd, args, { stdio: 'pipe' });
  mkdirSync(join(cache, '..'), { recursive: true });
  // Another test process may have finished first: the rename of a complete copy is what makes a template visible.
  const staged = `${cache}.${process.pid}`;
  cpSync(data, staged, { recursive: true, preserveTimestamps: true });
  if (AS_ROOT) execFileSync('chown', ['-R', 'postgres:postgres', staged]);
  try {
    renameSync(staged, cache);
  } catch {
    rmSync(staged, { recursive: true, force: true });
  }
  rmSync(work, { recursive: true, force: true });
  return cache;
}

/** A running PostgreSQL cluster. */
export interface PostgresServer {
  port: number;
  /** A connection URL for one database of the cluster. */
  url(database: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Runs SQL as the superuser on the `postgres` database (e.g. to end other sessions). */
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  /**
   * Sends a signal to every process of this cluster (its own process group, nothing else): SIGSTOP stalls it with
   * its connections open (a hung server, or a partition that drops packets), SIGCONT resumes it.
   */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void;
  /** Stops the server and deletes the cluster. */
  close(): Promise<void>;
}

let counter = 0;

/** Every process below `root`, read from /proc (Linux). */
function descendants(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The fourth field of /proc/<pid>/stat, after the parenthesised command name.
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Exited meanwhile.
    }
  }
  const found: number[] = [];
  for (let queue = [root]; queue.length > 0; ) {
    const children = parents.get(queue.shift()!) ?? [];
    found.push(...children);
    queue.push(...children);
  }
  return found;
}

/** Starts a cluster on a free loopback port. */
export async function startPostgres(): Promise<PostgresServer> {
  const work = mkdtempSync(join(tmpdir(), 'anvil-pg-'));
  const data = join(work, 'data');
  cpSync(template(), data, { recursive: true });
  chownToPostgres(work);
  execFileSync('chmod', ['700', data]);
  const port = await freePort();
  const settings = ['listen_addresses=127.0.0.1', `unix_socket_directories=${work}`, 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=200'];
  const [cmd, args] = command('postgres', ['-D', data, '-p', String(port), ...settings.flatMap((s) => ['-c', s])]);
  let log = '';
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const capture = (d: Buffer) => {
    log = (log + d.toString()).slice(-8000);
  };
  child.stdout!.on('data', capture);
  child.stderr!.on('data', capture);
  // A test process that dies without close() must not leave the server behind.
  const reap = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', reap);
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const admin = new pg.Pool({ connectionString: url('postgres'), max: 2 });
  admin.on('error', () => {});
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}:\n${log}`);
    try {
      await admin.query('SELECT 1');
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 60 s: ${(error as Error).message}\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    url,
    query: (sql, params) => admin.query(sql, params as unknown[]),
    signal(sig) {
      // Backends call setsid(), so the group reaches only the postmaster (and runuser): each descendant is signalled
      // too. Stopping starts at the top, so the stopped postmaster forks no backend the list would miss.
      const pids = [child.pid!, ...descendants(child.pid!)];
      if (sig === 'SIGSTOP') process.kill(-child.pid!, sig);
      for (const pid of sig === 'SIGSTOP' ? pids : pids.reverse()) {
        try {
          process.kill(pid, sig);
        } catch {
          // Exited meanwhile.
        }
      }
    },
    async createDatabase(name) {
      const db = name ?? `anvil_${process.pid}_${++counter}`;
      await admin.query(`CREATE DATABASE "${db}"`);
      return url(db);
    },
    async close() {
      await admin.end().catch(() => {});
      try {
        process.kill(-child.pid!, 'SIGCONT'); // a stalled cluster would never act on SIGQUIT
      } catch {
        // Already gone.
      }
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        // SIGQUIT is PostgreSQL's immediate shutdown: a throwaway cluster needs no checkpoint.
        process.kill(-child.pid!, 'SIGQUIT');
        const timer = setTimeout(reap, 10_000);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', reap);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

let shared: Promise<PostgresServer> | undefined;

/** One cluster per test process (each test file runs in its own), started on first use and stopped at exit. */
export function sharedPostgres(): Promise<PostgresServer> {
  shared ??= startPostgres();
  return shared;
}
