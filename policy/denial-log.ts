/**
 * The denial log: one JSON line per refused request in dataDir/denials.log (rotated by size), optionally echoed to a
 * stream. It never holds a secret or a signature: the record type has none, and free-text fields are scrubbed of
 * anything shaped like one.
 */

import { jsonLinesLog, type JsonLinesWriter, type LogFilter } from './json-lines.ts';
import type { DenialLayer, DenialRecord } from './types.ts';

/** The denial log's file name inside the data directory. */
export const DENIAL_LOG_FILE = 'denials.log';

/** Where and how denials are written. */
export interface DenialLogOptions {
  dataDir: string;
  maxBytes?: number;
  keep?: number;
  /** Also write each line here (for example process.stdout). */
  stream?: { write(chunk: string): unknown };
}

/** Which denials a query or a follow returns. */
export interface DenialFilter extends LogFilter {
  tenant?: string;
  accessKeyId?: string;
  layer?: DenialLayer;
  bucket?: string;
  keyPrefix?: string;
  /** Only records the asker may see (an admin narrower than its tenant); applied before `limit`. */
  visible?: (record: DenialRecord) => boolean;
}

/** The denial log's file and filter. */
const DENIALS = jsonLinesLog<DenialRecord, DenialFilter>(
  DENIAL_LOG_FILE,
  (record, filter) =>
    (filter.tenant === undefined || record.tenant === filter.tenant) &&
    (filter.accessKeyId === undefined || record.accessKeyId === filter.accessKeyId) &&
    (filter.layer === undefined || record.layer === filter.layer) &&
    (filter.bucket === undefined || record.bucket === filter.bucket) &&
    (filter.keyPrefix === undefined || (record.key ?? '').startsWith(filter.keyPrefix)) &&
    (filter.visible === undefined || filter.visible(record)),
);

const SIGNATURE_LIKE = /[0-9a-f]{64}/gi;
const SIGNATURE_PARAM = /(signature\s*[=:]\s*)[^\s,&;"]+/gi;

/** A URL's query string or fragment (which may carry a token): everything after `?` or `#` up to a space or quote. */
const URL_QUERY = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#"']*)[?#][^\s"']*/gi;

/**
 * Replaces anything that looks like a SigV4 signature (64 hex digits, or a `Signature=` value) with a marker, and the
 * query string of any URL (a JWKS URL may carry an access token) with `?…`.
 */
export function scrubSecrets(text: string): string {
  return text.replace(URL_QUERY, '$1?…').replace(SIGNATURE_PARAM, '$1[redacted]').replace(SIGNATURE_LIKE, '[redacted]');
}

/**
 * A record safe to write: free-text fields scrubbed. Bucket, key and copy source are resource names logged exactly
 * (content-addressed keys are often sha256 hex, and a signature never travels in the path).
 */
export function sanitizeDenial(record: DenialRecord): DenialRecord {
  const clean: DenialRecord = { ...record, reason: scrubSecrets(record.reason), action: scrubSecrets(record.action) };
  clean.requestId = scrubSecrets(record.requestId);
  if (record.userAgent !== undefined) clean.userAgent = scrubSecrets(record.userAgent);
  if (record.subject !== undefined) clean.subject = scrubSecrets(record.subject);
  return clean;
}

/** Appends denial records to dataDir/denials.log. */
export class DenialLog {
  private readonly writer: JsonLinesWriter;
  private readonly stream: DenialLogOptions['stream'];

  constructor(options: DenialLogOptions) {
    this.writer = DENIALS.writer(options);
    this.stream = options.stream;
  }

  /** Records one denial; never throws (a full disk must not turn a 403 into a 500). */
  write(record: DenialRecord): void {
    const clean = sanitizeDenial(record);
    try {
      this.writer.append(clean);
      this.stream?.write(JSON.stringify(clean) + '\n');
    } catch {
      // Losing a log line beats failing the request; the gateway's own logging reports disk trouble.
    }
  }
}

/** Whether a record passes a filter (limit aside). */
export const denialMatches = DENIALS.matches;

/** The denials matching `filter`, from the rotated files and the live one, oldest first (newest last). */
export const queryDenials = DENIALS.query;

/** Streams denials appended from now on that match `filter` (limit ignored) until `signal` aborts. */
export const followDenials = DENIALS.follow;
