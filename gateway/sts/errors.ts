/**
 * STS's wire vocabulary: its error table (code → HTTP status) and the awsQuery XML documents, both the
 * `<XxxResponse><XxxResult>` answers and the `<ErrorResponse>` errors SDKs and the AWS CLI parse.
 */
import { XMLBuilder } from 'fast-xml-parser';
import type { SessionErrorKind } from '../../policy/index.ts';

/** The STS document namespace. */
export const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** HTTP status of each STS error code the gateway sends. */
export const STS_ERRORS = {
  AccessDenied: 403,
  ExpiredToken: 400,
  ExpiredTokenException: 400,
  IncompleteSignature: 400,
  InternalFailure: 500,
  InvalidAction: 400,
  InvalidClientTokenId: 403,
  InvalidIdentityToken: 400,
  InvalidParameterValue: 400,
  MalformedPolicyDocument: 400,
  MissingAction: 400,
  MissingAuthenticationToken: 403,
  RequestExpired: 400,
  // AWS's common error for a temporary failure of the server (the policy database cannot be reached).
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  ValidationError: 400,
} as const;

/** One STS error code. */
export type StsErrorCode = keyof typeof STS_ERRORS;

/** An error rendered as STS's ErrorResponse. */
export class StsError extends Error {
  override name = 'StsError';
  readonly status: number;
  constructor(readonly code: StsErrorCode, message: string) {
    super(message);
    this.status = STS_ERRORS[code];
  }
}

/** The STS code of each session refusal. */
export const SESSION_ERROR_CODES: Record<SessionErrorKind, StsErrorCode> = {
  denied: 'AccessDenied',
  invalid: 'ValidationError',
  invalid_policy: 'MalformedPolicyDocument',
  invalid_identity_token: 'InvalidIdentityToken',
  expired_identity_token: 'ExpiredTokenException',
};

/** STS codes for SigV4 and credential failures, which verifySigV4 reports as S3 codes. */
export const SIGNATURE_ERROR_CODES: Record<string, StsErrorCode> = {
  InvalidAccessKeyId: 'InvalidClientTokenId',
  InvalidToken: 'InvalidClientTokenId',
  ExpiredToken: 'ExpiredToken',
  SignatureDoesNotMatch: 'SignatureDoesNotMatch',
  RequestTimeTooSkewed: 'RequestExpired',
  AccessDenied: 'AccessDenied',
};

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, format: false });
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** `<{action}Response><{action}Result>…</…><ResponseMetadata><RequestId>`. */
export function stsResponse(action: string, result: Record<string, unknown>, requestId: string): string {
  return DECLARATION + builder.build({
    [`${action}Response`]: { '@_xmlns': STS_NS, [`${action}Result`]: result, ResponseMetadata: { RequestId: requestId } },
  });
}

/** STS's ErrorResponse document. */
export function stsErrorBody(err: StsError, requestId: string): string {
  const type = err.status >= 500 ? 'Receiver' : 'Sender';
  return DECLARATION + builder.build({
    ErrorResponse: { '@_xmlns': STS_NS, Error: { Type: type, Code: err.code, Message: err.message }, RequestId: requestId },
  });
}
