/**
 * The STS actions: AssumeRole (signed with SigV4 for service sts by an application credential or a session) and
 * AssumeRoleWithWebIdentity (unsigned; the ID token is the proof). Each reads the form parameters STS defines and
 * answers STS's XML.
 */
import { assumeRole, assumeRoleWithWebIdentity, type AssumedSession, type SessionDeps } from '../../policy/index.ts';
import type { ResolvedCaller } from './callers.ts';
import { StsError } from './errors.ts';

/** One STS request, authenticated when the action needs it. */
export interface StsCall {
  params: URLSearchParams;
  deps: SessionDeps;
  /** The signer, for signed actions. */
  caller?: ResolvedCaller;
  now: Date;
}

/** An STS action: whether it needs a signature, and what it answers (the content of `<ActionResult>`). */
export interface StsAction {
  signed: boolean;
  /**
   * The request parameters it honours besides Action and Version. Anything else (PolicyArns, Tags,
   * TransitiveTagKeys, SourceIdentity, ExternalId, MFA, ProviderId, …) is refused, never ignored: a parameter
   * silently dropped could leave a session broader, or differently attributed, than its caller asked for.
   */
  params: readonly string[];
  run(call: StsCall): Promise<Record<string, unknown>>;
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw new StsError('ValidationError', `1 validation error detected: Value null at '${name[0]!.toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`);
  return value;
}

function duration(params: URLSearchParams): number | undefined {
  const value = params.get('DurationSeconds');
  if (value === null || value === '') return undefined;
  if (!/^\d{1,6}$/.test(value)) throw new StsError('ValidationError', 'DurationSeconds must be a whole number of seconds');
  return Number(value);
}

function credentialsXml(s: AssumedSession): Record<string, unknown> {
  return {
    Credentials: {
      AccessKeyId: s.credentials.accessKeyId,
      SecretAccessKey: s.credentials.secretAccessKey,
      SessionToken: s.credentials.sessionToken,
      Expiration: s.credentials.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
    AssumedRoleUser: {
      AssumedRoleId: `${s.role.tenant}:${s.role.name}:${s.sessionName}`,
      Arn: `arn:aws:sts::${s.role.tenant}:assumed-role/${s.role.name}/${s.sessionName}`,
    },
  };
}

/**
 * Throws InvalidParameterValue (AWS's common error for a value the service cannot take) for a parameter the action
 * does not honour, or one given twice; Action and Version are read by the endpoint.
 */
export function requireHonoured(action: StsAction, params: URLSearchParams): void {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) throw new StsError('InvalidParameterValue', `The parameter ${name} is given more than once`);
    seen.add(name);
    if (name === 'Action' || name === 'Version' || action.params.includes(name)) continue;
    const family = name.replace(/\.member\..*$/, '');
    throw new StsError('InvalidParameterValue', `The parameter ${family} is not supported by this gateway and would not be honoured; the request was refused`);
  }
}

/** Every supported action by its `Action` parameter. */
export const STS_ACTIONS: Record<string, StsAction> = {
  AssumeRole: {
    signed: true,
    params: ['RoleArn', 'RoleSessionName', 'DurationSeconds', 'Policy'],
    async run({ params, deps, caller, now }) {
      const session = await assumeRole(deps, {
        caller: caller!.principal,
        callerSecret: caller!.secret,
        callerSession: caller!.session,
        callerExpiresAt: caller!.expiresAt,
        roleArn: required(params, 'RoleArn'),
        sessionName: required(params, 'RoleSessionName'),
        durationSeconds: duration(params),
        policy: params.get('Policy') ?? undefined,
        now,
      });
      return { ...credentialsXml(session), PackedPolicySize: 0 };
    },
  },
  AssumeRoleWithWebIdentity: {
    signed: false,
    params: ['WebIdentityToken', 'RoleArn', 'RoleSessionName', 'DurationSeconds', 'Policy'],
    async run({ params, deps, now }) {
      const session = await assumeRoleWithWebIdentity(deps, {
        webIdentityToken: required(params, 'WebIdentityToken'),
        roleArn: required(params, 'RoleArn'),
        sessionName: required(params, 'RoleSessionName'),
        durationSeconds: duration(params),
        policy: params.get('Policy') ?? undefined,
        now,
      });
      return {
        ...credentialsXml(session),
        SubjectFromWebIdentityToken: session.identity!.sub,
        Audience: session.identity!.aud,
        Provider: session.identity!.iss,
      };
    },
  },
};
