/** The anvil CLI as a child process (bin/anvil.js, the compiled build), for end-to-end tests of its commands. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '..', '..');

/** What a run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `anvil ...args` from the repository root with only the environment given (plus PATH). */
export function anvil(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/anvil.js', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The environment that makes `anvil` sign as these credentials. */
export function credentialEnv(creds: { accessKeyId: string; secretAccessKey: string }): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey };
}
