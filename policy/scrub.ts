/**
 * The one scrubbing pass every log applies to caller-chosen text before it is written (denial rows and their stdout
 * echo, access lines and every other JSON log line, access records, audit rows): anything shaped like a signature,
 * a session or security token, a capability or a URL's query string is replaced by a marker. README: "Secrets and
 * signatures are never logged".
 */

/** Free text (reasons, user agents) or a resource name (bucket, key, copy source), which may be 64 hex digits. */
export type ScrubKind = 'text' | 'name';

/** A SigV4 signature (or any sha256 in hex): scrubbed from free text only, since content-addressed keys look the same. */
const SIGNATURE_LIKE = /[0-9a-f]{64}/gi;

/**
 * A parameter or header carrying a secret, `name=value` or `name: value`: a V2/V4/chunk signature, a security token,
 * a capability, an OAuth token (`X-Amz-Signature`, `chunk-signature` end in a word that matches). The value runs to the next space, `,`, `&`, `;` or quote (how query strings, the
 * Authorization header and cookies separate them). Only the parameter's name triggers it, so a reason such as
 * `capability: expired` keeps its words.
 */
const SECRET_PARAM = /\b(signature|x-amz-security-token|x-anvil-capability|(?:access|id|refresh|session)[-_]?token)(\s*[=:]\s*)[^\s,&;"']+/gi;

/** A URL's query string or fragment (which may carry a token): everything after `?` or `#` up to a space or quote. */
const URL_QUERY = /(\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s?#"']*)[?#][^\s"']*/gi;

/** An Anvil capability on its own: base64url of the JSON array `[1,"…` (policy/capabilities/token.ts). */
const CAPABILITY_LIKE = /\bWzEsI[A-Za-z0-9_-]{16,}/g;

/** A JWT (a session token, an OIDC token): base64url of `{"…`, three dot-separated parts. */
const JWT_LIKE = /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/** Cheap test for text none of the rules above can change (most log lines): one scan, no copy. */
const MAYBE_SECRET = /signature|token|capability|:\/\/|wzesi|eyj/i;
const MAYBE_HEX = /[0-9a-f]{64}/i;

/**
 * `text` with every secret-shaped part replaced: `Signature=[redacted]`, `X-Anvil-Capability=[redacted]`, a bare
 * capability or JWT by `[redacted]`, a URL's query string by `?…`, and (kind `text`, the default) any 64 hex digits
 * by `[redacted]`. Idempotent; returns `text` itself when nothing matched.
 */
export function scrubSecrets(text: string, kind: ScrubKind = 'text'): string {
  let out = text;
  if (MAYBE_SECRET.test(out)) {
    out = out.replace(URL_QUERY, '$1?…').replace(SECRET_PARAM, '$1$2[redacted]').replace(CAPABILITY_LIKE, '[redacted]').replace(JWT_LIKE, '[redacted]');
  }
  if (kind === 'text' && MAYBE_HEX.test(out)) out = out.replace(SIGNATURE_LIKE, '[redacted]');
  return out;
}

/**
 * `value` with scrubSecrets (kind `name`: nothing in a log line is known to be free text) applied to every string
 * in it, object keys included, at any depth; the same value when nothing changed. For JSON values (parsed lines,
 * audit details).
 */
export function scrubStrings<T>(value: T): T {
  if (typeof value === 'string') return scrubSecrets(value, 'name') as T;
  if (Array.isArray(value)) {
    const items = value.map(scrubStrings);
    return (items.some((item, i) => item !== value[i]) ? items : value) as T;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const k = scrubSecrets(key, 'name');
      const v = scrubStrings(item);
      if (k !== key || v !== item) changed = true;
      out[k] = v;
    }
    return (changed ? out : value) as T;
  }
  return value;
}

/**
 * One JSON log line (with or without its newline) as it may be written: unchanged when no string in it can hold a
 * secret (a single scan), else parsed, scrubbed with scrubStrings and serialized again, so a marker can never break
 * the line's JSON. A line that is not JSON is scrubbed as text.
 */
export function scrubLogLine(line: string): string {
  if (!MAYBE_SECRET.test(line)) return line;
  const newline = line.endsWith('\n') ? '\n' : '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return scrubSecrets(line, 'name');
  }
  const clean = scrubStrings(parsed);
  return clean === parsed ? line : JSON.stringify(clean) + newline;
}
