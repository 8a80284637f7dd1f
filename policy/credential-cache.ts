/**
 * The per-request hot path: access key → decrypted secrets and Principal, and bucket → owning tenant and governance,
 * served from LRU caches that are dropped whenever the policy revision moves. Each lookup first asks the policy
 * concern's change signal to sync (policy/database/signals.ts): free when the node is known to be fresh, otherwise a
 * revision read; a warm lookup never reaches the database. A load racing an invalidation is never cached: every entry
 * carries the generation it was read in, and an invalidation starts a new one.
 */

import type { Kysely } from 'kysely';
import { LRUCache } from 'lru-cache';
import { credentialFailure, credentialState, MAX_MAKER_DEPTH, type CredentialFailure, type CredentialState } from './credential-state.ts';
import type { ChangeSignal } from './database/signals.ts';
import type { PolicyTables } from './database/tables.ts';
import { boundedBy, relationshipBounds } from './scopes.ts';
import { open, type Sealed } from './secret-box.ts';
import type { CredentialRow } from './store-schema.ts';
import { appSubject } from './subjects.ts';
import type { Principal, ScopeGrant } from './types.ts';

export type { CredentialFailure } from './credential-state.ts';

/** The answer of resolveAccessKey: the secrets a signature may verify against and who signs, or why not. */
export type ResolveResult =
  /** `expiresAt`: when the credential stops working on its own or with its maker (absent: it does not expire). */
  | { ok: true; secrets: string[]; principal: Principal; expiresAt?: Date }
  /** `tenant` names the tenant of a key that exists but cannot be used, so its refusals reach that tenant's denial log. */
  | { ok: false; reason: CredentialFailure; tenant?: string };

interface Entry {
  principal: Principal;
  secret: string;
  previous?: string;
  previousUntil: number;
  /** Revoked, tenant disabled, maker chain broken, expiry: credential-state.ts's rule, which the listings share. */
  state: CredentialState;
}

/** A bucket's owner and whether relationships govern it (false: no tenant owns it). */
type Owner = { tenant: string; governed: boolean } | false;

/** Last-used time is written at most this often per key and node. */
const LAST_USED_EVERY_MS = 60_000;

/** Last-used times waiting to be written go in one transaction at most this often. */
const LAST_USED_FLUSH_MS = 1_000;

/** Caches lookups against the policy concern, following its change signal. */
export class CredentialCache {
  private readonly credentials: LRUCache<string, Entry | false>;
  private readonly owners: LRUCache<string, Owner>;
  private readonly touched: LRUCache<string, number>;
  private generation = 0;
  private readonly pendingUse = new Map<string, number>();
  private useTimer?: NodeJS.Timeout;
  /** Lookups that reached the database, and those answered from the cache (the gateway's metrics may read them). */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly db: Kysely<PolicyTables>,
    private readonly signal: ChangeSignal,
    private readonly masterKey: Buffer,
    max = 10_000,
  ) {
    this.credentials = new LRUCache({ max });
    this.owners = new LRUCache({ max });
    this.touched = new LRUCache({ max });
    signal.onChange(() => this.invalidate());
  }

  /** Drops every cached entry; loads in flight are not cached. */
  invalidate(): void {
    this.generation++;
    this.credentials.clear();
    this.owners.clear();
  }

  /** The credential behind an access key at `now`, with its decrypted secrets, or why it cannot be used. */
  async resolve(accessKeyId: string, now: Date): Promise<ResolveResult> {
    // Awaited only when the signal has to read (each await of a value at hand costs a promise and a microtask; a
    // request makes several lookups). The cache is read after the sync, which drops it when policy moved.
    const synced = this.signal.sync();
    if (synced !== undefined) await synced;
    let entry = this.credentials.get(accessKeyId);
    if (entry !== undefined) this.stats.hits++;
    else entry = await this.entry(accessKeyId, 0, this.generation);
    if (entry === false) return { ok: false, reason: 'unknown' };
    const nowMs = now.getTime();
    const failure = credentialFailure(entry.state, nowMs);
    if (failure !== undefined) return { ok: false, reason: failure, tenant: entry.principal.tenant };
    this.recordUse(accessKeyId, nowMs);
    const secrets = entry.previous !== undefined && nowMs < entry.previousUntil ? [entry.secret, entry.previous] : [entry.secret];
    const resolved: ResolveResult = { ok: true, secrets, principal: entry.principal };
    const { expiresAt } = entry.state;
    if (Number.isFinite(expiresAt)) resolved.expiresAt = new Date(expiresAt);
    return resolved;
  }

  /**
   * The tenant owning a bucket and whether relationships govern it, or false when no tenant owns it. `now`: as of
   * this call, not of the current request's start (ChangeSignal.sync).
   */
  async bucket(bucket: string, now = false): Promise<Owner> {
    const synced = this.signal.sync(now);
    if (synced !== undefined) await synced;
    const cached = this.owners.get(bucket);
    if (cached !== undefined) return cached;
    const generation = this.generation;
    const row = await this.db.selectFrom('buckets').select(['tenant', 'governed']).where('name', '=', bucket).executeTakeFirst();
    const owner: Owner = row === undefined ? false : { tenant: row.tenant, governed: row.governed === 1 };
    if (generation === this.generation) this.owners.set(bucket, owner);
    return owner;
  }

  private async entry(accessKeyId: string, depth: number, generation: number): Promise<Entry | false> {
    const cached = this.credentials.get(accessKeyId);
    if (cached !== undefined) {
      this.stats.hits++;
      return cached;
    }
    this.stats.misses++;
    const entry = await this.read(accessKeyId, depth, generation);
    if (generation === this.generation) this.credentials.set(accessKeyId, entry);
    return entry;
  }

  /**
   * A credential with its effective authority: its own scopes bounded by its maker's effective authority (the
   * chain up to a credential root or the operator made), its expiry no later than its maker's.
   */
  private async read(accessKeyId: string, depth: number, generation: number): Promise<Entry | false> {
    const row = (await this.db
      .selectFrom('credentials as c')
      .innerJoin('tenants as t', 't.name', 'c.tenant')
      .selectAll('c')
      .select('t.disabled as tenant_disabled')
      .where('c.access_key_id', '=', accessKeyId)
      .executeTakeFirst()) as (CredentialRow & { tenant_disabled: number }) | undefined;
    if (row === undefined) return false;
    let scopes = JSON.parse(row.scopes) as ScopeGrant[];
    const maker = row.created_by !== null && depth < MAX_MAKER_DEPTH && row.created_by !== accessKeyId ? await this.entry(row.created_by, depth + 1, generation) : false;
    const state = credentialState(row, maker === false ? false : maker.state);
    if (maker !== false && !state.makerGone) scopes = boundedBy(scopes, maker.principal);
    scopes = scopes.map((grant) => Object.freeze(grant));
    // A maker without tenant-wide authority bounds this credential's relationships too (governance.ts actorsOf).
    const bounds = maker !== false && !state.makerGone ? relationshipBounds(maker.principal) : [];
    const principal: Principal = Object.freeze({
      tenant: row.tenant,
      accessKeyId: row.access_key_id,
      subject: appSubject(row.access_key_id),
      isRoot: row.is_root === 1,
      scopes: Object.freeze(scopes) as ScopeGrant[],
      ...(bounds.length > 0 ? { boundingMakers: Object.freeze([...bounds]) } : {}),
    });
    const sealed: Sealed = { ciphertext: row.secret_ct, iv: row.secret_iv, tag: row.secret_tag };
    const entry: Entry = {
      principal,
      secret: open(this.masterKey, sealed, accessKeyId),
      previousUntil: row.prev_until ?? 0,
      state,
    };
    if (row.prev_ct !== null && row.prev_iv !== null && row.prev_tag !== null) {
      entry.previous = open(this.masterKey, { ciphertext: row.prev_ct, iv: row.prev_iv, tag: row.prev_tag }, accessKeyId);
    }
    return entry;
  }

  /**
   * Notes the last use, at most once a minute per key and node, without holding up the request: uses are gathered
   * and written together (one transaction, so one sync to disk) within LAST_USED_FLUSH_MS. A timestamp is no policy
   * change: it moves no revision, and a busy database only delays it.
   */
  private recordUse(accessKeyId: string, nowMs: number): void {
    const last = this.touched.get(accessKeyId);
    if (last !== undefined && nowMs - last < LAST_USED_EVERY_MS) return;
    this.touched.set(accessKeyId, nowMs);
    this.pendingUse.set(accessKeyId, nowMs);
    this.useTimer ??= setTimeout(() => void this.flushUses(), LAST_USED_FLUSH_MS);
    this.useTimer.unref();
  }

  /** Writes the gathered last-use times (kept for the next try when the database refuses). */
  async flushUses(): Promise<void> {
    clearTimeout(this.useTimer);
    this.useTimer = undefined;
    if (this.pendingUse.size === 0) return;
    const uses = [...this.pendingUse];
    this.pendingUse.clear();
    try {
      await this.db.transaction().execute(async (trx) => {
        for (const [id, at] of uses) await trx.updateTable('credentials').set({ last_used_at: at }).where('access_key_id', '=', id).execute();
      });
    } catch {
      for (const [id, at] of uses) if (!this.pendingUse.has(id)) this.pendingUse.set(id, at);
    }
  }
}
