/**
 * Secrets at rest: AES-256-GCM under a master key from configuration, or one generated once into the data directory
 * (mode 0600). Ciphertexts are bound to their access key id, so a row's secret cannot be moved to another row.
 */

import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError, MasterKeyFileError } from './errors.ts';
import { createFileOnce } from './write-once.ts';

/** The file a generated master key lives in, inside the data directory. */
export const MASTER_KEY_FILE = 'master.key';

/** One sealed secret as the store keeps it. */
export interface Sealed {
  ciphertext: Buffer;
  iv: Buffer;
  tag: Buffer;
}

/** Parses a 32-byte key given as 64 hex digits or base64. */
export function parseMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new InvalidInputError('master key must be 32 bytes, given as base64 or hex');
  return key;
}

/**
 * The configured master key, else the one in dataDir/master.key, created on first start (mode 0600, written whole or
 * not at all: see write-once.ts). Throws MasterKeyFileError, naming the file and the way out, when the file exists but
 * does not hold a key (empty or truncated): such a file is never taken for a key.
 */
export function loadMasterKey(dataDir: string, configured?: string | Buffer): Buffer {
  if (Buffer.isBuffer(configured)) {
    if (configured.length !== 32) throw new InvalidInputError('master key must be 32 bytes');
    return configured;
  }
  if (configured !== undefined) return parseMasterKey(configured);
  const path = join(dataDir, MASTER_KEY_FILE);
  // lstat, not exists: anything at the path (a directory, a dangling link) is reported, never generated over.
  let found = lstatOrUndefined(path);
  if (found === undefined) {
    createFileOnce(path, randomBytes(32).toString('base64') + '\n');
    found = lstatSync(path);
  }
  if (found.isSymbolicLink()) found = statOrUndefined(path);
  if (found === undefined || !found.isFile()) {
    const what = found === undefined ? 'is a link to nothing' : found.isDirectory() ? 'is a directory' : 'is not a regular file';
    throw new MasterKeyFileError(`master key file ${path} ${what}; no key is generated in its place. ${recoveryStep(dataDir)}`);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new MasterKeyFileError(
      `master key file ${path} cannot be read (${code}); no key is generated in its place. Give the user the gateway ` +
        `runs as read access to it (chown that user, chmod 600 ${path}) and start again.`,
    );
  }
  try {
    parseMasterKey(text);
  } catch {
    throw new MasterKeyFileError(describeBadKeyFile(path, Buffer.byteLength(text), existsSync(join(dataDir, POLICY_DB_FILE))));
  }
  // The key opens every secret at rest: like ssh with a private key, refuse one others may read.
  if ((found.mode & 0o077) !== 0) {
    const mode = (found.mode & 0o777).toString(8).padStart(4, '0');
    throw new MasterKeyFileError(
      `master key file ${path} has mode ${mode}: group or others may access it. Run chmod 600 ${path} ` +
        `(and treat the key as exposed if others could read it) before starting again.`,
    );
  }
  return parseMasterKey(text);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MasterKeyFileError(`master key file ${path} cannot be examined (${(err as NodeJS.ErrnoException).code}); check the data directory's permissions.`);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** What to do about something other than a key file at the key's path, depending on whether secrets may be sealed. */
function recoveryStep(dataDir: string): string {
  return existsSync(join(dataDir, POLICY_DB_FILE))
    ? 'Secrets in this data directory are sealed with the key that belongs there: move it aside and restore master.key from a backup, or set ANVIL_MASTER_KEY to the key.'
    : 'No policy database exists yet, so nothing was sealed: remove it and start again to generate a new key.';
}

/** The name of the policy database, whose presence says whether secrets may already be sealed with the key. */
const POLICY_DB_FILE = 'policy.db';

function describeBadKeyFile(path: string, size: number, policyExists: boolean): string {
  const what = size === 0 ? 'is empty' : `holds ${size} bytes that are not a 32-byte key (truncated or damaged)`;
  const recovery = policyExists
    ? 'Secrets in this data directory may be sealed with the lost key: restore master.key from a backup, or set ' +
      'ANVIL_MASTER_KEY to the key. Only if no credential was ever created here, delete the file and start again.'
    : 'No policy database exists yet, so nothing was sealed with it (a first start that failed, e.g. on a full disk): ' +
      'delete the file and start again to generate a new key.';
  return `master key file ${path} ${what}; it is not used as a key. ${recovery}`;
}

/** Encrypts `plaintext` bound to `context` (the access key id). */
export function seal(key: Buffer, plaintext: string, context: string): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { ciphertext, iv, tag: cipher.getAuthTag() };
}

/** Decrypts a sealed secret; throws when the key, the context or the bytes are wrong. */
export function open(key: Buffer, sealed: Sealed, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv);
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
}

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A fresh AWS-style access key id: `AKIA` and 16 base32 characters. */
export function newAccessKeyId(): string {
  let id = 'AKIA';
  for (let i = 0; i < 16; i++) id += KEY_ID_ALPHABET[randomInt(KEY_ID_ALPHABET.length)];
  return id;
}

/** A fresh 40-character secret access key (30 random bytes in base64). */
export function newSecretKey(): string {
  return randomBytes(30).toString('base64');
}
