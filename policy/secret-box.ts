/**
 * Secrets at rest: AES-256-GCM under a master key from configuration, or one generated once into the data directory
 * (mode 0600). Ciphertexts are bound to their access key id, so a row's secret cannot be moved to another row.
 */

import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
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
  if (!existsSync(path)) createFileOnce(path, randomBytes(32).toString('base64') + '\n');
  const text = readFileSync(path, 'utf8');
  try {
    return parseMasterKey(text);
  } catch {
    throw new MasterKeyFileError(describeBadKeyFile(path, Buffer.byteLength(text), existsSync(join(dataDir, POLICY_DB_FILE))));
  }
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
