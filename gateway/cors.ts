/**
 * Bucket CORS rules as S3 defines them (PutBucketCors API reference, S3 User Guide "Elements of a CORS
 * configuration"): parsing and validating a CORSConfiguration document, rendering it back, and finding the rule
 * that matches a browser request (origin, method, requested headers). Matching grants no authority: it only decides
 * which Access-Control-* headers a response carries; every request is still authenticated and authorized.
 */
import { S3Error } from './errors.ts';
import { parseXmlBody, list, text, texts, xmlDocument } from './xml.ts';

/** One CORSRule. */
export interface CorsRule {
  id?: string;
  allowedMethods: string[];
  allowedOrigins: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

/** Methods a CORS rule may allow. */
const METHODS = new Set(['GET', 'PUT', 'HEAD', 'POST', 'DELETE']);
/** Most rules one configuration may hold. */
const MAX_RULES = 100;

/** Parses and validates a PutBucketCors body; MalformedXML or InvalidRequest as S3 answers. */
export function parseCorsConfiguration(body: string): CorsRule[] {
  const doc = parseXmlBody(body, 'CORSConfiguration', { maxElements: 20_000 });
  const rules = list(doc, 'CORSRule');
  if (rules.length === 0 || rules.length > MAX_RULES) throw new S3Error('MalformedXML');
  return rules.map((r) => {
    const allowedMethods = texts(r, 'AllowedMethod').map((m) => m.trim());
    const allowedOrigins = texts(r, 'AllowedOrigin').map((o) => o.trim());
    if (allowedMethods.length === 0 || allowedOrigins.length === 0) throw new S3Error('MalformedXML');
    for (const m of allowedMethods) {
      if (!METHODS.has(m)) throw new S3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`);
    }
    for (const o of allowedOrigins) {
      if ((o.match(/\*/g) ?? []).length > 1) throw new S3Error('InvalidRequest', `AllowedOrigin "${o}" can not have more than one wildcard.`);
    }
    const allowedHeaders = texts(r, 'AllowedHeader').map((h) => h.trim());
    for (const h of allowedHeaders) {
      if ((h.match(/\*/g) ?? []).length > 1) throw new S3Error('InvalidRequest', `AllowedHeader "${h}" can not have more than one wildcard.`);
    }
    const maxAge = text(r, 'MaxAgeSeconds');
    if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge.trim())) throw new S3Error('MalformedXML');
    const id = text(r, 'ID');
    return {
      ...(id !== undefined ? { id } : {}),
      allowedMethods,
      allowedOrigins,
      allowedHeaders,
      exposeHeaders: texts(r, 'ExposeHeader').map((h) => h.trim()),
      ...(maxAge !== undefined ? { maxAgeSeconds: Number(maxAge.trim()) } : {}),
    };
  });
}

/** The GetBucketCors document for rules. */
export function corsDocument(rules: CorsRule[]): string {
  return xmlDocument('CORSConfiguration', {
    CORSRule: rules.map((r) => ({
      ...(r.id !== undefined ? { ID: r.id } : {}),
      AllowedHeader: r.allowedHeaders,
      AllowedMethod: r.allowedMethods,
      AllowedOrigin: r.allowedOrigins,
      ExposeHeader: r.exposeHeaders,
      ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: r.maxAgeSeconds } : {}),
    })),
  });
}

/** A CORS pattern with at most one `*`, matched case-insensitively as S3 matches headers (origins: exactly). */
function wildcardMatch(pattern: string, value: string, caseless: boolean): boolean {
  const p = caseless ? pattern.toLowerCase() : pattern;
  const v = caseless ? value.toLowerCase() : value;
  const star = p.indexOf('*');
  if (star < 0) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

/** What a browser request asks of CORS. */
export interface CorsRequest {
  origin: string;
  method: string;
  /** Access-Control-Request-Headers of a preflight, lower-cased; empty for actual requests. */
  headers: string[];
}

/** The first rule allowing the request (S3 uses the first match), or undefined. */
export function matchRule(rules: CorsRule[], req: CorsRequest): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.allowedOrigins.some((o) => wildcardMatch(o, req.origin, false)) &&
      r.allowedMethods.includes(req.method) &&
      req.headers.every((h) => r.allowedHeaders.some((a) => wildcardMatch(a, h, true))),
  );
}

/** The Access-Control-* headers S3 sends for a matched rule (preflight adds the allowed methods, headers, max age). */
export function corsHeaders(rule: CorsRule, req: CorsRequest, preflight: boolean): Record<string, string> {
  const anyOrigin = rule.allowedOrigins.includes('*');
  const out: Record<string, string> = {
    'access-control-allow-origin': anyOrigin ? '*' : req.origin,
    'access-control-allow-methods': rule.allowedMethods.join(', '),
    vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  };
  if (!anyOrigin) out['access-control-allow-credentials'] = 'true';
  if (rule.exposeHeaders.length > 0) out['access-control-expose-headers'] = rule.exposeHeaders.join(', ');
  if (preflight) {
    if (req.headers.length > 0) out['access-control-allow-headers'] = req.headers.join(', ');
    if (rule.maxAgeSeconds !== undefined) out['access-control-max-age'] = String(rule.maxAgeSeconds);
  }
  return out;
}
