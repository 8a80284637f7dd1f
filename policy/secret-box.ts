/**
 * Secrets at rest: AES-256-GCM under a master key from configuration, or one generated once into the data directory
 * (mode 0600). Ciphertexts are bound to their access key id, so a row's secret cannot be moved to another row.
 */

import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError } from './errors.ts';

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

/** The configured master key, else the one in dataDir/master.key, created with mode 0600 on first start. */
export function loadMasterKey(dataDir: string, configured?: string | Buffer): Buffer {
  if (Buffer.isBuffer(configured)) {
    if (configured.length !== 32) throw new InvalidInputError('master key must be 32 bytes');
    return configured;
  }
  if (configured !== undefined) return parseMasterKey(configured);
  const path = join(dataDir, MASTER_KEY_FILE);
  try {
    // 'wx' so two processes starting together cannot both create (and disagree on) the key.
    writeFileSync(path, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return parseMasterKey(readFileSync(path, 'utf8'));
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
