/**
 * policy/audit/: the access audit (`anvil audit check`) — the regular checks an operator is told to make, as pure
 * functions from the facts the gateway reads through the stores to findings, each with a severity and the command
 * that fixes it.
 */
import { createHash } from 'node:crypto';
import {
  broadScopes, governanceGaps, leftoverCapabilities, leftoverProviders, leftoverRoles, oldCapabilityKeys, reservedAttempts, sharedCredentials,
  staleCredentials, unusedFamilies,
} from './credential-checks.ts';
import { leftoverTuples, staleCaveats, unauditedTuples, unsourcedImports, widenedSchemas } from './relationship-checks.ts';
import { SEVERITIES, type AuditCheck, type AuditFacts, type AuditOptions, type Finding, type Severity, type SeverityCounts } from './types.ts';

export * from './types.ts';
export { effectivePrincipals } from './credential-checks.ts';

/** Each check, by name: the compiler asks for a new one here. */
const CHECKS: Record<AuditCheck, (facts: AuditFacts, options: AuditOptions) => Finding[]> = {
  'stale-credential': staleCredentials,
  'broad-scope': broadScopes,
  'unused-families': unusedFamilies,
  'shared-credential': sharedCredentials,
  'unsourced-import': unsourcedImports,
  'unaudited-tuple': unauditedTuples,
  'stale-caveat': staleCaveats,
  'reserved-namespace': reservedAttempts,
  'governance-gap': governanceGaps,
  'schema-widened': widenedSchemas,
  'leftover-role': leftoverRoles,
  'leftover-provider': leftoverProviders,
  'leftover-capability': leftoverCapabilities,
  'leftover-tuple': leftoverTuples,
  'old-capability-key': oldCapabilityKeys,
};

/** How a severity ranks (low 0 … critical 3). */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Every finding of every check, most severe first, then by check and subject. */
export function auditFindings(facts: AuditFacts, options: AuditOptions): Finding[] {
  const findings = Object.values(CHECKS).flatMap((check) => check(facts, options));
  return findings.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.check.localeCompare(b.check) || a.id.localeCompare(b.id));
}

/** Findings counted by severity. */
export function countBySeverity(findings: Finding[]): SeverityCounts {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as SeverityCounts;
  for (const f of findings) counts[f.severity]++;
  return counts;
}

/** A short digest of a finding's id, as a run records it (so the audit log holds no tuple or key text twice). */
export function findingDigest(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 16);
}
