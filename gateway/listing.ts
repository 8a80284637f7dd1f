/**
 * The one listing filter every listing goes through (v1, v2, versions, uploads), for every backend: it pages the
 * backend's ordered entries, keeps only what the caller may see (scopes per key, relationships in one batched call
 * per fetched page), and resumes past hidden subtrees, so KeyCount, IsTruncated and the markers are computed over
 * visible entries only and never leak a hidden name.
 */
import { compareUtf8 } from '../storage/utf8-order.ts';
import { S3Error } from './errors.ts';
import type { ListingFilter } from './operation.ts';

/** Largest page S3 returns. */
export const MAX_LIST_KEYS = 1000;

/** Most entries one fetch asks the backend for: a full page and the one after it. */
const MAX_FETCH = MAX_LIST_KEYS + 1;

/** An entry of an ordered listing: an item (with the key it shows and the cursor it resumes from), or a prefix. */
export type Listed<T> = { kind: 'prefix'; prefix: string } | { kind: 'item'; name: string; key: string; item: T };

/** A page of raw backend entries after `cursor`. */
export type PageFetcher<T> = (cursor: string | undefined, limit: number) => Promise<{ entries: Listed<T>[]; isTruncated: boolean }>;

/** The visible page: at most maxKeys entries, and whether visible entries follow. */
export interface VisiblePage<T> {
  entries: Listed<T>[];
  isTruncated: boolean;
}

/** The name an entry sorts by. */
export function nameOf<T>(e: Listed<T>): string {
  return e.kind === 'prefix' ? e.prefix : e.name;
}

/**
 * Parses max-keys (and its cousins max-parts, max-uploads, x-amz-max-parts, named by `argument` in the error's text
 * and ArgumentName); S3 caps at 1000 and refuses what is not a non-negative integer (400 InvalidArgument).
 */
export function parseMaxKeys(value: string | null, argument = 'max-keys'): number {
  if (value === null) return MAX_LIST_KEYS;
  if (!/^\d+$/.test(value)) {
    throw new S3Error('InvalidArgument', `Provided ${argument} not an integer or within integer range`, {
      fields: { ArgumentName: argument, ArgumentValue: value },
    });
  }
  return Math.min(Number(value), MAX_LIST_KEYS);
}

/**
 * Collects up to maxKeys visible entries after startAfter. One entry beyond maxKeys is looked for, so IsTruncated
 * is true only when something visible follows.
 */
export async function listVisible<T>(opts: {
  fetch: PageFetcher<T>;
  filter: ListingFilter;
  probe: (prefix: string) => Promise<boolean>;
  startAfter?: string;
  maxKeys: number;
}): Promise<VisiblePage<T>> {
  const { fetch, filter, probe, maxKeys } = opts;
  const wanted = maxKeys + 1;
  const out: Listed<T>[] = [];
  let cursor = opts.startAfter;
  let exhausted = false;
  // Entries fetched and found visible so far: a filter that hid most of them makes the next fetch larger.
  let fetched = 0;
  let shown = 0;
  while (out.length < wanted && !exhausted) {
    // Exactly what is missing while everything is visible (an unfiltered 1,000-key page is one fetch of 1,001, the
    // last one answering IsTruncated), scaled up by the share hidden so far, so filtered listings do not crawl.
    const need = wanted - out.length;
    const limit = Math.min(MAX_FETCH, Math.max(need, Math.ceil((need * fetched) / Math.max(shown, 1))));
    const page = await fetch(cursor, limit);
    fetched += page.entries.length;
    exhausted = !page.isTruncated;
    const readable = await readableOf(filter, page.entries);
    for (const entry of page.entries) {
      const name = nameOf(entry);
      cursor = name;
      const visible =
        entry.kind === 'prefix'
          ? await filter.prefixVisible(entry.prefix, probe)
          : filter.keyVisible(entry.key) && (readable === undefined || readable.has(entry.key));
      if (visible) {
        shown++;
        out.push(entry);
        if (out.length === wanted) break;
        continue;
      }
      const skip = filter.skipPast(entry.kind === 'prefix' ? entry.prefix : entry.key);
      // Storage orders keys by UTF-8 bytes, not by JavaScript's UTF-16 units (which put U+FFFF after astral ones).
      if (skip !== undefined && compareUtf8(skip, name) > 0) {
        cursor = skip;
        exhausted = false;
        break;
      }
    }
    if (page.entries.length === 0) exhausted = true;
  }
  return { entries: out.slice(0, maxKeys), isTruncated: out.length > maxKeys };
}

/** The filter's batched decision over a page's items that pass keyVisible, or undefined when it has none. */
async function readableOf<T>(filter: ListingFilter, entries: Listed<T>[]): Promise<ReadonlySet<string> | undefined> {
  if (!filter.readable) return undefined;
  const keys = [...new Set(entries.flatMap((e) => (e.kind === 'item' && filter.keyVisible(e.key) ? [e.key] : [])))];
  return keys.length === 0 ? new Set() : filter.readable(keys);
}

/** S3's encoding-type=url: percent-encode names, keeping '/' readable. */
export function urlEncodeName(name: string): string {
  return encodeURIComponent(name).replace(/%2F/g, '/');
}

/** How a listing writes names: the encoder (identity unless encoding-type=url) and the element echoing the choice. */
export interface NameEncoding {
  e: (s: string) => string;
  echo: { EncodingType?: 'url' };
}

const PLAIN: NameEncoding = { e: (s) => s, echo: {} };
const URL_ENCODED: NameEncoding = { e: urlEncodeName, echo: { EncodingType: 'url' } };

/** Validates encoding-type (only `url` exists) and returns how names are written. */
export function encodingOf(query: URLSearchParams): NameEncoding {
  const v = query.get('encoding-type');
  if (v === null) return PLAIN;
  if (v.toLowerCase() !== 'url') {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', {
      fields: { ArgumentName: 'encoding-type', ArgumentValue: v },
    });
  }
  return URL_ENCODED;
}

/** Continuation tokens: the last returned name, base64url-encoded behind a version tag so they stay opaque. */
export function encodeContinuationToken(name: string): string {
  return Buffer.from(`v1:${name}`, 'utf8').toString('base64url');
}

/** The name a continuation token resumes after; InvalidArgument for anything this gateway did not issue. */
export function decodeContinuationToken(token: string): string {
  const raw = Buffer.from(token, 'base64url').toString('utf8');
  if (!raw.startsWith('v1:') || encodeContinuationToken(raw.slice(3)) !== token) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      fields: { ArgumentName: 'continuation-token' },
    });
  }
  return raw.slice(3);
}
