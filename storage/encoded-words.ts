/**
 * RFC 2047 encoded-words for metadata values: S3 returns non-ASCII user metadata as `=?UTF-8?B?…?=` (S3 User
 * Guide, "Working with object metadata"), and header values must stay ASCII to be signed the same by every party.
 */

/** The value as is when printable ASCII, else one B encoded-word of its UTF-8 bytes. */
export function encodeWord(v: string): string {
  return /[^\x20-\x7e\t]/.test(v) ? `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=` : v;
}

/** Decodes one B or Q encoded-word of UTF-8; any other value is returned unchanged. */
export function decodeWord(v: string): string {
  const m = /^=\?UTF-8\?([BQ])\?([^?]*)\?=$/i.exec(v.trim());
  if (!m) return v;
  if (m[1]!.toUpperCase() === 'B') return Buffer.from(m[2]!, 'base64').toString('utf8');
  const bytes = m[2]!.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}
