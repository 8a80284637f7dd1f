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

/** Every supported action by its `Action` parameter. */
export const STS_ACTIONS: Record<string, StsAction> = {
  AssumeRole: {
    signed: true,
    async run({ params, deps, caller, now }) {
      const session = await assumeRole(deps, {
        caller: caller!.principal,
        callerSecret: caller!.secret,
        callerSession: caller!.session,
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
