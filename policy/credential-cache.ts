/**
 * The per-request hot path: access key → decrypted secrets and Principal, and bucket → owning tenant, served from
 * LRU caches that are dropped whenever the policy revision moves. `PRAGMA data_version` (which changes when another
 * connection commits) is read on every lookup, and only when it moved is the revision row read, so a revocation
 * made by any process sharing the data directory takes effect on the next request.
 */

import type Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { boundedBy } from './scopes.ts';
import { open, type Sealed } from './secret-box.ts';
import { appSubject } from './subjects.ts';
import type { CredentialRow } from './store-schema.ts';
import type { Principal, ScopeGrant } from './types.ts';

/** Why an access key cannot be used. Deleted credentials are 'unknown'; 'maker_gone' when its maker cannot be used. */
export type CredentialFailure = 'unknown' | 'revoked' | 'expired' | 'tenant_disabled' | 'maker_gone';

/** The answer of resolveAccessKey: the secrets a signature may verify against and who signs, or why not. */
export type ResolveResult =
  | { ok: true; secrets: string[]; principal: Principal }
  | { ok: false; reason: CredentialFailure };

interface Entry {
  principal: Principal;
  secret: string;
  previous?: string;
  previousUntil: number;
  expiresAt: number;
  revoked: boolean;
  tenantDisabled: boolean;
  /** The maker (the credential that created this one) is revoked, deleted or disabled. */
  makerGone: boolean;
}

/** Longest maker chain followed; a longer one (impossible through the API) fails closed. */
const MAX_MAKER_DEPTH = 32;

/** Last-used time is written at most this often per key and process. */
const LAST_USED_EVERY_MS = 60_000;

/** Caches lookups against one database connection; the store calls invalidate() after its own writes. */
export class CredentialCache {
  private readonly credentials: LRUCache<string, Entry | false>;
  private readonly owners: LRUCache<string, string | false>;
  private readonly touched: LRUCache<string, number>;
  private readonly dataVersion: Database.Statement;
  private readonly revision: Database.Statement;
  private readonly load: Database.Statement;
  private readonly owner: Database.Statement;
  private readonly touch: Database.Statement;
  private lastDataVersion = -1;
  private lastRevision = -1;

  constructor(db: Database.Database, private readonly masterKey: Buffer, max = 10_000) {
    this.credentials = new LRUCache({ max });
    this.owners = new LRUCache({ max });
    this.touched = new LRUCache({ max });
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
    this.revision = db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck();
    this.load = db.prepare(
      'SELECT c.*, t.disabled AS tenant_disabled FROM credentials c JOIN tenants t ON t.name = c.tenant WHERE c.access_key_id = ?',
    );
    this.owner = db.prepare('SELECT tenant FROM buckets WHERE name = ?').pluck();
    this.touch = db.prepare('UPDATE credentials SET last_used_at = ? WHERE access_key_id = ?');
  }

  /** Drops every cached entry and re-reads the revision; the store calls this after each of its own writes. */
  invalidate(): void {
    this.credentials.clear();
    this.owners.clear();
    this.lastRevision = this.revision.get() as number;
  }

  private sync(): void {
    const version = this.dataVersion.get() as number;
    if (version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    // Last-used writes by other processes move data_version too; only a revision change means policy changed.
    if ((this.revision.get() as number) !== this.lastRevision) this.invalidate();
  }

  /** The credential behind an access key at `now`, with its decrypted secrets, or why it cannot be used. */
  resolve(accessKeyId: string, now: Date): ResolveResult {
    this.sync();
    const entry = this.entry(accessKeyId, 0);
    if (entry === false) return { ok: false, reason: 'unknown' };
    const nowMs = now.getTime();
    if (entry.revoked) return { ok: false, reason: 'revoked' };
    if (entry.tenantDisabled) return { ok: false, reason: 'tenant_disabled' };
    if (entry.makerGone) return { ok: false, reason: 'maker_gone' };
    if (entry.expiresAt <= nowMs) return { ok: false, reason: 'expired' };
    this.recordUse(accessKeyId, nowMs);
    const secrets = entry.previous !== undefined && nowMs < entry.previousUntil ? [entry.secret, entry.previous] : [entry.secret];
    return { ok: true, secrets, principal: entry.principal };
  }

  /** The tenant owning a bucket, or undefined when no tenant does. */
  bucketOwner(bucket: string): string | undefined {
    this.sync();
    let owner = this.owners.get(bucket);
    if (owner === undefined) {
      owner = (this.owner.get(bucket) as string | undefined) ?? false;
      this.owners.set(bucket, owner);
    }
    return owner === false ? undefined : owner;
  }

  private entry(accessKeyId: string, depth: number): Entry | false {
    let entry = this.credentials.get(accessKeyId);
    if (entry === undefined) {
      entry = this.read(accessKeyId, depth);
      this.credentials.set(accessKeyId, entry);
    }
    return entry;
  }

  /**
   * A credential with its effective authority: its own scopes bounded by its maker's effective authority (the
   * chain up to a credential root or the operator made), its expiry no later than its maker's.
   */
  private read(accessKeyId: string, depth: number): Entry | false {
    const row = this.load.get(accessKeyId) as (CredentialRow & { tenant_disabled: number }) | undefined;
    if (row === undefined) return false;
    let scopes = JSON.parse(row.scopes) as ScopeGrant[];
    let makerGone = false;
    let makerExpires = Number.POSITIVE_INFINITY;
    if (row.created_by !== null) {
      const maker = depth < MAX_MAKER_DEPTH && row.created_by !== accessKeyId ? this.entry(row.created_by, depth + 1) : false;
      if (maker === false || maker.revoked || maker.makerGone || maker.tenantDisabled || maker.principal.tenant !== row.tenant) makerGone = true;
      else {
        makerExpires = maker.expiresAt;
        scopes = boundedBy(scopes, maker.principal);
      }
    }
    scopes = scopes.map((grant) => Object.freeze(grant));
    const principal: Principal = Object.freeze({
      tenant: row.tenant,
      accessKeyId: row.access_key_id,
      subject: appSubject(row.access_key_id),
      isRoot: row.is_root === 1,
      scopes: Object.freeze(scopes) as ScopeGrant[],
    });
    const sealed: Sealed = { ciphertext: row.secret_ct, iv: row.secret_iv, tag: row.secret_tag };
    const entry: Entry = {
      principal,
      secret: open(this.masterKey, sealed, accessKeyId),
      previousUntil: row.prev_until ?? 0,
      expiresAt: Math.min(row.expires_at ?? Number.POSITIVE_INFINITY, makerExpires),
      revoked: row.revoked_at !== null,
      tenantDisabled: row.tenant_disabled !== 0, // disabled or locked down
      makerGone,
    };
    if (row.prev_ct !== null && row.prev_iv !== null && row.prev_tag !== null) {
      entry.previous = open(this.masterKey, { ciphertext: row.prev_ct, iv: row.prev_iv, tag: row.prev_tag }, accessKeyId);
    }
    return entry;
  }

  private recordUse(accessKeyId: string, nowMs: number): void {
    const last = this.touched.get(accessKeyId);
    if (last !== undefined && nowMs - last < LAST_USED_EVERY_MS) return;
    this.touched.set(accessKeyId, nowMs);
    try {
      this.touch.run(nowMs, accessKeyId);
    } catch {
      // Best effort: a busy database must not fail the request over a timestamp.
    }
  }
}
