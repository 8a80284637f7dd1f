/**
 * The list responses are written from templates (gateway/xml.ts xmlListDocument) instead of by the XML builder:
 * unit checks that they are byte for byte what the builder writes for the same content, on every UTF-16 code unit
 * alone and on hostile keys (markup, CR, control characters, lone surrogates, U+FFFE/U+FFFF, url encoding), so the
 * escape rules the end-to-end listing tests pin (`&#13;`, `&#1;`, encoding-type=url) hold for every character.
 * The end-to-end tests (s3-listing, s3-xml, reserved-prefix) drive the same code over HTTP with real clients.
 */
import test from 'ava';
import { urlEncodeName, type Listed } from '../gateway/listing.ts';
import { renderEntries, type ObjectRow } from '../gateway/operations/list-objects-common.ts';
import { escapeText, isoTime, xmlDocument, xmlElements, xmlListDocument } from '../gateway/xml.ts';

/** What the builder writes for `<a>text</a>`, without declaration and root. */
const built = (s: string): string => /^[^\n]*\n<a>([\s\S]*)<\/a>$/.exec(xmlDocument('a', { v: s }, false).replace('<v>', '').replace('</v>', ''))![1]!;

const HOSTILE = [
  '',
  'plain/key.txt',
  'amp&<lt>"quote"\'apos\'',
  'cr\rkey',
  'both\r\nends\ttab',
  'ctl\x01\x00\x1b\x7fkey',
  'lone\uD800high',
  'lone\uDC00low',
  'end\uD83D',
  '\uDE00start',
  'pair😀ok',
  'nonchars\uFFFE\uFFFF\uFFFD',
  'uni\u00e9\u4e16key',
  '&#13;already-a-reference',
  'space key+plus%percent',
  ']]>cdata-end',
];

test('escapeText writes every UTF-16 code unit as the builder does', (t) => {
  const differing: number[] = [];
  for (let c = 0; c <= 0xffff; c++) {
    const s = `a${String.fromCharCode(c)}b`;
    if (escapeText(s) !== built(s)) differing.push(c);
  }
  t.deepEqual(differing, []);
});

test('escapeText writes hostile keys as the builder does, with references for CR, controls and lone surrogates', (t) => {
  for (const s of HOSTILE) t.is(escapeText(s), built(s), JSON.stringify(s));
  t.is(escapeText('cr\rkey'), 'cr&#13;key');
  t.is(escapeText('ctl\x01key'), 'ctl&#1;key');
  t.is(escapeText('lone\uD800'), 'lone&#55296;');
  t.is(escapeText('pair😀'), 'pair😀');
});

test('list documents are byte for byte the builder\'s for the same content (checksums included), plain and url-encoded', (t) => {
  // Stored keys are UTF-8, so a listed key never holds a lone surrogate; url encoding (encodeURIComponent) refuses one.
  // Every third entry without a stored checksum, the others with one of each kind S3 lists.
  const CHECKSUMS = ['CRC32/FULL_OBJECT', 'SHA256/COMPOSITE'] as const;
  const checksumOf = (i: number) => (i % 3 === 2 ? {} : { checksum: CHECKSUMS[i % 3]! });
  const rowsOf = (keys: string[]): Listed<ObjectRow>[] => keys.flatMap((key, i): Listed<ObjectRow>[] => [
    { kind: 'item', name: key, key, item: { kind: 'object', key, size: i * 1000, etag: `${'0f'.repeat(16)}-${i}`, lastModified: new Date(1_700_000_000_000 + i * 1234), ...checksumOf(i) } },
    { kind: 'prefix', prefix: `${key}/` },
  ]);
  const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  const owner = { ID: 'acme&co', DisplayName: 'acme&co' };
  for (const [e, rows] of [[(s: string) => s, rowsOf(HOSTILE)], [urlEncodeName, rowsOf(HOSTILE.filter((k) => !loneSurrogate.test(k)))]] as const) {
    for (const version of [false, true]) {
      for (const withOwner of [false, true]) {
        const head = { Name: 'b', Prefix: e('p\r<'), MaxKeys: 1000, KeyCount: rows.length, IsTruncated: true, EncodingType: 'url' };
        const listed = renderEntries(rows, { e, version, owner: withOwner ? owner : undefined });
        const templated = xmlListDocument('ListBucketResult', xmlElements(head) + listed.items + listed.prefixes);
        const items = rows.flatMap((x) =>
          x.kind === 'item'
            ? [{
                Key: e(x.item.key),
                ...(version ? { VersionId: 'null', IsLatest: true } : {}),
                LastModified: isoTime(x.item.lastModified),
                ETag: `"${x.item.etag}"`,
                ...(x.item.checksum ? { ChecksumAlgorithm: x.item.checksum.split('/')[0], ChecksumType: x.item.checksum.split('/')[1] } : {}),
                Size: x.item.size,
                ...(withOwner ? { Owner: owner } : {}),
                StorageClass: 'STANDARD',
              }]
            : [],
        );
        const prefixes = rows.flatMap((x) => (x.kind === 'prefix' ? [{ Prefix: e(x.prefix) }] : []));
        const expected = xmlDocument('ListBucketResult', { ...head, [version ? 'Version' : 'Contents']: items, CommonPrefixes: prefixes });
        t.is(templated, expected);
      }
    }
  }
});

test('isoTime is toISOString, whichever second the previous call formatted', (t) => {
  const times = [0, 1, 999, 1000, 1_700_000_000_000, 1_700_000_000_007, 1_700_000_000_070, 1_700_000_000_700, 1_700_000_001_000, 1_699_999_999_999, -1, -86_400_001, 253_402_300_799_999, 253_402_300_800_000, 8.64e15];
  for (const ms of [...times, ...times.reverse()]) t.is(isoTime(new Date(ms)), new Date(ms).toISOString(), String(ms));
});

test('an empty list document is the builder\'s too', (t) => {
  const head = { Name: 'b', Prefix: '', KeyCount: 0, IsTruncated: false };
  const listed = renderEntries([], { e: (s) => s });
  t.is(xmlListDocument('ListBucketResult', xmlElements(head) + listed.items + listed.prefixes), xmlDocument('ListBucketResult', { ...head, Contents: [], CommonPrefixes: [] }));
});
