/**
 * Text from bytes, strictly: bytes that are not UTF-8 (a stray 0xFF, an overlong `C0 AF`, an encoded surrogate) are
 * refused, never replaced by U+FFFD. A lossy decode would let two different byte strings name one key, so a request
 * naming bytes nobody stored could act on the different key `\uFFFD` that someone did (RFC 3629 §3: decoders must not
 * accept invalid sequences; S3 keys are "a sequence of Unicode characters whose UTF-8 encoding" names them).
 */
import { isUtf8 } from 'node:buffer';

/** The UTF-8 text of `bytes` (a BOM kept as U+FEFF, byte for byte), or undefined when they are not UTF-8. */
export function utf8Text(bytes: Buffer): string | undefined {
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}

/** Bytes of a percent-encoded component: `%XX` escapes decoded, '+' left alone, anything else taken as UTF-8. */
export function percentBytes(s: string): Buffer {
  if (!s.includes('%')) return Buffer.from(s, 'utf8');
  const raw = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const hi = raw[i] === 0x25 && i + 2 < raw.length ? hexValue(raw[i + 1]!) : -1;
    const lo = hi >= 0 ? hexValue(raw[i + 2]!) : -1;
    if (lo >= 0) {
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else out[n++] = raw[i]!;
  }
  return out.subarray(0, n);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Escapes that may start a byte outside ASCII: a component without one decodes to ASCII (or to the UTF-8 it holds). */
const HIGH_ESCAPE = /%[89A-Fa-f][0-9A-Fa-f]/;

/**
 * The first name in a raw query string (`a=1&b=%FF`) whose name or value, percent-decoded ('+' a space), is not UTF-8;
 * undefined when every component is. A query without an escape of a byte ≥ 0x80 is answered from one regex test.
 */
export function nonUtf8QueryParam(rawQuery: string): string | undefined {
  if (!HIGH_ESCAPE.test(rawQuery)) return undefined;
  for (const part of rawQuery.split('&')) {
    if (!HIGH_ESCAPE.test(part)) continue;
    const eq = part.indexOf('=');
    const name = percentBytes(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? undefined : percentBytes(part.slice(eq + 1));
    if (!isUtf8(name)) return name.toString('latin1').replace(/[^\x20-\x7e]/g, '?');
    if (value && !isUtf8(value)) return utf8Text(name)!;
  }
  return undefined;
}
