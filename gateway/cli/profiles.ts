/**
 * Named profiles for remote endpoints, kept in ~/.config/anvil/config.json (or $XDG_CONFIG_HOME/anvil/config.json),
 * mode 0600 because profiles hold secrets:
 *   {"defaultProfile": "prod", "profiles": {"prod": {"endpoint": "https://s3.example.com", "accessKeyId": "AKIA…",
 *    "secretAccessKey": "…", "region": "us-east-1"}}}
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { UsageError } from './format.ts';

const PROFILE = z.strictObject({
  endpoint: z.url({ protocol: /^https?$/ }),
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  region: z.string().regex(/^[a-z0-9-]{1,64}$/).optional(),
});

const FILE = z.strictObject({
  defaultProfile: z.string().optional(),
  profiles: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), PROFILE).default({}),
});

/** One remote endpoint and the credential to sign for it with. */
export type Profile = z.infer<typeof PROFILE>;
/** The profiles file. */
export type ProfilesFile = z.infer<typeof FILE>;

/** Where the profiles live for this environment. */
export function profilesPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'anvil', 'config.json');
}

/** Reads the profiles file; an absent file has no profiles, a malformed one is a usage error naming the file. */
export function readProfiles(env: NodeJS.ProcessEnv): ProfilesFile {
  const path = profilesPath(env);
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch {
    return { profiles: {} };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError(`${path} is not valid JSON`);
  }
  const result = FILE.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new UsageError(`${path}: ${issue.path.join('.') || 'the file'}: ${issue.message}`);
  }
  return result.data;
}

/** Writes the profiles file (mode 0600, its directory 0700). */
export function writeProfiles(env: NodeJS.ProcessEnv, file: ProfilesFile): string {
  const path = profilesPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** Checks a profile before it is saved. */
export function validProfile(profile: unknown): Profile {
  const result = PROFILE.safeParse(profile);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new UsageError(`profile ${issue.path.join('.')}: ${issue.message}`);
  }
  return result.data;
}

/** The profile a run names (--profile, ANVIL_PROFILE, then the file's default), or undefined when none applies. */
export function chosenProfile(env: NodeJS.ProcessEnv, asked: string | undefined): (Profile & { name: string }) | undefined {
  const file = readProfiles(env);
  const name = asked ?? (env.ANVIL_PROFILE || undefined) ?? file.defaultProfile;
  if (name === undefined) return undefined;
  const profile = file.profiles[name];
  if (!profile) throw new UsageError(`no profile "${name}" in ${profilesPath(env)} (anvil profile set ${name} --endpoint URL …)`);
  return { ...profile, name };
}
