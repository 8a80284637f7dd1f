/**
 * policy/capabilities/: signed, holder-narrowable capabilities (a macaroon-style HMAC chain), usable as a library
 * by application code (createCapabilityService, narrowCapability, ANY) and by the gateway for object access.
 */
export {
  ANY,
  CAPABILITY_VERSION,
  CapabilityError,
  canonicalJson,
  createCapabilityService,
  inspectCapability,
  matchScope,
  narrowCapability,
  type CapabilityContents,
  type CapabilityService,
  type CapabilityServiceOptions,
  type Caveat,
  type JsonValue,
  type Narrowing,
  type PatternElement,
  type RootKeys,
} from './token.ts';
export { CAPABILITY_ACTIONS, CAPABILITY_SUBJECT_TYPE, capabilityGrant, capabilityPrincipal, isCapabilityAction, objectScope, type CapabilityAction } from './s3.ts';
export { CapabilityStore, tenantOfCapabilityId, type CapabilityMint, type TenantCapability } from './store.ts';
