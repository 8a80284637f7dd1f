/**
 * The access audit's vocabulary: the checks it runs, their findings (one line each, with a severity and the command
 * that fixes it) and the facts it reads. Pure data; the gateway fetches the facts through the stores.
 */
import type { CredentialUsage } from '../access-records.ts';
import type { CapabilityMint } from '../capabilities/store.ts';
import type { ImportSource } from '../relationships/store.ts';
import type { Tuple } from '../relationships/tuples.ts';
import type { TupleBeyondWriter } from '../tuple-writers.ts';
import type { OidcProviderInfo, RoleInfo } from '../sessions/store.ts';
import type { CredentialInfo, TenantInfo } from '../store-schema.ts';
import type { DenialRecord } from '../types.ts';

/** Severities, least to most severe; `--fail-on` names one. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;

/** How much a finding matters. */
export type Severity = (typeof SEVERITIES)[number];

/** Every check the audit runs, by the name findings carry. */
export const AUDIT_CHECKS = {
  'stale-credential': 'application credentials unused for more than the window, never used, or expired but still present',
  'broad-scope': 'grants on every bucket (*), on a whole bucket without a prefix, or of the admin family',
  'unused-families': 'families granted that the credential did not use in the window (from the access records)',
  'shared-credential': 'one key used from more remote addresses or user agents than one job would',
  'unsourced-import': 'tuple imports whose record names no source',
  'unaudited-tuple': 'tuples no audited batch wrote',
  'stale-caveat': "caveated tuples whose caveat hash no longer matches the deployed definition (they fail closed)",
  'reserved-namespace': 'attempts on the reserved prefix in the window, by credential and remote address',
  'governance-gap': 'credentials that reach a governed bucket\'s relationships (watch, check, tuples:read) by scope alone, holding no tuple',
  'schema-widened': 'schema permissions that widened since the last audit (from the schema history)',
  'leftover-role': 'roles their maker could no longer create today',
  'leftover-provider': 'OpenID Connect providers their maker could no longer register today',
  'leftover-capability': 'live capabilities their minter could no longer mint today',
  'leftover-tuple': 'live tuples an application wrote through the tuple write guard that the guard would refuse it today',
  'old-capability-key': 'capability root keys older than the configured age',
} as const;

/** One check's name. */
export type AuditCheck = keyof typeof AUDIT_CHECKS;

/** One finding: a line of the report. */
export interface Finding {
  /** Stable across runs for the same problem, so runs can be compared (`--since-last`). */
  id: string;
  check: AuditCheck;
  severity: Severity;
  tenant?: string;
  /** The credential the finding is about, when it is about one (the console shows findings beside credentials). */
  accessKeyId?: string;
  /** What the finding is about, e.g. an access key id, a tuple, a bucket, a role. */
  subject: string;
  message: string;
  /** The command that fixes it (upper-case words are for the operator to fill in). */
  fix: string;
}

/** The thresholds a run uses. */
export interface AuditOptions {
  /** The window in days: stale credentials, families used, shared keys, reserved-prefix attempts. */
  days: number;
  /** Capability root keys older than this many days are reported. */
  keyAgeDays: number;
  /** More distinct remote addresses than this in the window marks a key as shared. */
  maxAddresses: number;
  /** More distinct user agents than this in the window marks a key as shared. */
  maxAgents: number;
}

/** The defaults of AuditOptions. */
export const DEFAULT_AUDIT_OPTIONS: AuditOptions = { days: 30, keyAgeDays: 90, maxAddresses: 5, maxAgents: 3 };

/** What the audit reads of one tenant's relationships. */
export interface TenantRelationshipFacts {
  tenant: string;
  /** Every deployed schema, oldest first. */
  schemas: Array<{ revision: string; text: string; writtenAt: string }>;
  /** The deployed caveats' hashes by name. */
  caveatHashes: Map<string, string>;
  caveatedTuples: Tuple[];
  unaudited: { tuples: Tuple[]; total: number };
  imports: ImportSource[];
  /** Ids of `app` subjects that appear in the tenant's tuples. */
  appSubjects: Set<string>;
  /** Live tuples applications wrote that the write guard would refuse them today (tuple-writers.ts). */
  beyondWriters: TupleBeyondWriter[];
}

/** Everything one run reads, already narrowed to the tenants the caller may audit. */
export interface AuditFacts {
  now: Date;
  tenants: TenantInfo[];
  credentials: CredentialInfo[];
  usage: CredentialUsage[];
  /** Reserved-prefix denials in the window. */
  reservedDenials: DenialRecord[];
  governedBuckets: Array<{ bucket: string; tenant: string }>;
  relationships: TenantRelationshipFacts[];
  roles: RoleInfo[];
  providers: OidcProviderInfo[];
  capabilities: Array<CapabilityMint & { createdAt: string; revoked: boolean; keyReset: boolean }>;
  capabilityKeys: Array<{ tenant: string; generation: number; createdAt: string }>;
  /** When the previous recorded run happened: the baseline of schema-widened (else the window's start). */
  previousRunAt?: Date;
}

/** Counts of findings by severity. */
export type SeverityCounts = Record<Severity, number>;
