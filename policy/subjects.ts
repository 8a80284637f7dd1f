/**
 * Subjects built from outside input (access key ids, web-identity `sub` claims), spelled with the one tuple escaping
 * of policy/relationships/tuples.ts (escapeId), so no input can spell another subject: the sub `b%6Fb` is the id
 * `b%6Fb` (written `user:b%256Fb`), never `bob`; `#`, `@`, `:` and `*` inside an id are percent-encoded, never a
 * relation, a subject separator, a type or the wildcard.
 */
import { escapeId } from './relationships/tuples.ts';

/** Longest web-identity subject accepted (tuple ids allow 4096 characters; escaping may triple a character). */
export const MAX_SUBJECT_ID = 1024;

/** The subject of an application credential (or a session's access key): `app:<escaped access key id>`. */
export function appSubject(accessKeyId: string): string {
  return `app:${escapeId(accessKeyId)}`;
}

/**
 * Characters no XML 1.0 document can carry (C0 controls; lone surrogates; U+FFFE, U+FFFF), plus tab, CR, LF, DEL and
 * the C1 controls, which no identity provider puts in a subject: such a sub could not be answered in STS's XML nor
 * shown safely in a log line.
 */
const UNCARRIABLE = /[\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The subject of a web identity, `user:<escaped sub>`, or undefined for a sub no subject can be built from: empty,
 * longer than MAX_SUBJECT_ID, exactly `*` (which relationship checks could not tell from the wildcard), or holding a
 * character XML cannot carry (UNCARRIABLE).
 */
export function webIdentitySubject(sub: string): string | undefined {
  if (sub === '' || sub === '*' || sub.length > MAX_SUBJECT_ID || UNCARRIABLE.test(sub)) return undefined;
  return `user:${escapeId(sub)}`;
}
