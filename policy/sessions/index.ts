/**
 * policy/sessions/: temporary credentials — roles, OpenID Connect providers, gateway-signed session tokens (JWT,
 * ES256, published as JWKS) with secrets derived rather than stored, and the narrowing rules that bound them.
 */
export { assumeRole, assumeRoleWithWebIdentity, SessionError, type AssumedSession, type SessionDeps, type SessionErrorKind } from './assume.ts';
export { FAMILY_IAM_ACTIONS, intersectScopes, IAM_ACTIONS, SESSION_EXCLUDED_FAMILIES, sessionPolicyGrants, sessionScopes } from './scopes.ts';
export {
  MAX_SESSION_SECONDS,
  MIN_SESSION_SECONDS,
  OIDC_ALGORITHMS,
  parseRoleArn,
  redactUrl,
  roleArn,
  SESSION_TOKEN_ALG,
  SessionStore,
  type OidcProviderInfo,
  type RoleInfo,
  type SigningKey,
} from './store.ts';
export {
  isSessionAccessKeyId,
  newSessionAccessKeyId,
  SessionTokens,
  type IssuedSession,
  type SessionClaims,
  type SessionFailure,
  type SessionParent,
  type SessionResolution,
} from './tokens.ts';
