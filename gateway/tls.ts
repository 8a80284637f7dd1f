/**
 * TLS for the gateway's listener: the PEM certificate chain and key from ANVIL_TLS_CERT / ANVIL_TLS_KEY, reloaded
 * without a restart on SIGHUP or when either file changes. A new pair that does not load (unreadable, not PEM, key
 * not matching the certificate) is refused with an error line and the previous pair keeps serving.
 */
import { unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { Logger } from './logging.ts';
import { readSmallFile } from './small-file.ts';
import { SettingError } from './start-errors.ts';

/** Largest certificate (chain) or key file read. */
const MAX_PEM_FILE_BYTES = 1024 * 1024;

/** The certificate and key files. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** How often the files' modification times are compared, and how long a change settles before it is loaded. */
const POLL_MS = 1000;
const SETTLE_MS = 300;

/** Reads and checks a pair; throws when it cannot serve (a key that does not match fails here, not on a handshake). */
export function loadTlsPair(files: TlsFiles): { cert: Buffer; key: Buffer; summary: Record<string, string> } {
  const cert = readSmallFile(files.certFile, MAX_PEM_FILE_BYTES);
  const key = readSmallFile(files.keyFile, MAX_PEM_FILE_BYTES);
  createSecureContext({ cert, key });
  const x509 = new X509Certificate(cert);
  return { cert, key, summary: { subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo, fingerprint256: x509.fingerprint256 } };
}

/**
 * Why the certificate is outside its validity period now (expired, or not yet valid), or undefined. Such a pair still
 * loads: clients refuse it, but refusing the start (or a reload) would take down a gateway whose clients may skip
 * verification, and the fix (a new certificate) is picked up on SIGHUP or file change without a restart.
 */
export function certificateOutOfDate(cert: Buffer, now = Date.now()): string | undefined {
  const x509 = new X509Certificate(cert);
  if (Date.parse(x509.validTo) < now) return `the certificate expired on ${new Date(x509.validTo).toISOString()}`;
  if (Date.parse(x509.validFrom) > now) return `the certificate is not valid before ${new Date(x509.validFrom).toISOString()}`;
  return undefined;
}

/** Logs the warning of a pair outside its validity period (certificateOutOfDate). */
function warnOutOfDate(cert: Buffer, logger: Logger, files: TlsFiles, reason: string): void {
  const why = certificateOutOfDate(cert);
  if (why) logger.warn({ certFile: files.certFile, reason }, `TLS certificate out of date: ${why}; clients that verify it will refuse every connection`);
}

/**
 * Loads the pair for the start: a pair that cannot serve (unreadable, not PEM, a key that does not match) is a
 * SettingError (exit 78); one outside its validity period loads with a warning.
 */
export function loadTlsAtStart(files: TlsFiles, logger: Logger): ReturnType<typeof loadTlsPair> {
  let pair: ReturnType<typeof loadTlsPair>;
  try {
    pair = loadTlsPair(files);
  } catch (error) {
    throw new SettingError('ANVIL_TLS_CERT and ANVIL_TLS_KEY', `${files.certFile} and ${files.keyFile} do not load as a PEM certificate and its key: ${(error as Error).message}`);
  }
  warnOutOfDate(pair.cert, logger, files, 'start');
  return pair;
}

/** Reloads the server's certificate on demand and on file change, until stop(). */
export interface TlsReloader {
  /** Loads the files now; true when the new pair is in use. */
  reload(reason: string): boolean;
  stop(): void;
}

/** Watches the files of a running HTTPS server and swaps its certificate when they change. */
export function watchTls(server: HttpsServer, files: TlsFiles, logger: Logger): TlsReloader {
  let timer: NodeJS.Timeout | undefined;
  const reload = (reason: string): boolean => {
    try {
      const { cert, key, summary } = loadTlsPair(files);
      server.setSecureContext({ cert, key });
      logger.info({ tls: summary, reason }, 'TLS certificate loaded');
      warnOutOfDate(cert, logger, files, reason);
      return true;
    } catch (error) {
      logger.error({ err: { message: (error as Error).message }, reason }, 'TLS certificate reload failed; the previous certificate stays in use');
      return false;
    }
  };
  const changed = (now: { mtimeMs: number }, before: { mtimeMs: number }) => {
    if (now.mtimeMs === before.mtimeMs) return;
    // Cert and key are usually rewritten one after the other: load once both have settled.
    clearTimeout(timer);
    timer = setTimeout(() => reload('file changed'), SETTLE_MS);
  };
  for (const file of [files.certFile, files.keyFile]) watchFile(file, { interval: POLL_MS, persistent: false }, changed);
  return {
    reload,
    stop() {
      clearTimeout(timer);
      for (const file of [files.certFile, files.keyFile]) unwatchFile(file, changed);
    },
  };
}
