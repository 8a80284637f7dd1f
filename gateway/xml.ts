/**
 * S3's XML, written and read with fast-xml-parser: responses are built from plain objects, request bodies are
 * validated and parsed with the repeated elements declared, so a one-element list never turns into a scalar.
 *
 * Character references are handled here rather than by the library, in both directions, because that is where
 * S3 semantics live: SDKs escape `\r` and `\n` in keys as `&#13;`/`&#10;` and rclone sends part ETags as
 * `&#34;…&#34;`, so every numeric reference must decode exactly; and on output every character XML would normalise
 * (`\r`) or reject (other control characters, U+FFFE/U+FFFF) goes out as a reference, so a key lists as itself.
 * Hostile documents (DOCTYPE, entity declarations, deep nesting, huge element counts) are refused before parsing
 * as MalformedXML — never expanded, never a 500 (XML External Entity Prevention, OWASP; S3 answers MalformedXML).
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error } from './errors.ts';

/** The S3 document namespace every response root carries. */
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/**
 * Characters escaped on output beyond the five markup ones: CR (XML end-of-line handling would turn it into LF),
 * the C0 controls XML 1.0 forbids, and the non-characters U+FFFE/U+FFFF. Written as decimal references, as S3 does
 * (`&#13;`), which every S3 client's parser decodes. Request bodies accept the same references back (decodeReferences).
 */
const UNSAFE_CHARS = /[\x00-\x08\x0B\x0C\x0D\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const OUTPUT_ENTITIES = [
  { regex: /&/g, val: '&amp;' },
  { regex: />/g, val: '&gt;' },
  { regex: /</g, val: '&lt;' },
  { regex: /'/g, val: '&apos;' },
  { regex: /"/g, val: '&quot;' },
  { regex: UNSAFE_CHARS, val: ((c: string) => `&#${c.codePointAt(0)};`) as unknown as string },
];

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: false,
  suppressBooleanAttributes: false,
  format: false,
  processEntities: true,
  entities: OUTPUT_ENTITIES,
} as ConstructorParameters<typeof XMLBuilder>[0]);

/** What escapeText must change: the five markup characters, and the characters of UNSAFE_CHARS (a cheap superset). */
const MAY_NEED_ESCAPE = /[&<>'"\x00-\x08\x0B-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;
const MARKUP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' };
const ESCAPED_CHARS = new RegExp(`[&<>'"]|${UNSAFE_CHARS.source}`, 'g');

/**
 * Text content exactly as the builder writes it (OUTPUT_ENTITIES: the five markup characters, then every character
 * of UNSAFE_CHARS as a decimal reference), for the list responses, which write their entries from templates (see
 * xmlListDocument). Most keys need nothing, and are returned as they are after one test.
 */
export function escapeText(s: string): string {
  if (!MAY_NEED_ESCAPE.test(s)) return s;
  return s.replace(ESCAPED_CHARS, (c) => MARKUP[c] ?? `&#${c.codePointAt(0)};`);
}

/** `<name>value</name>`, the value written as the builder writes it (text escaped, numbers and booleans as is). */
export function xmlElement(name: string, value: string | number | boolean): string {
  return `<${name}>${typeof value === 'string' ? escapeText(value) : String(value)}</${name}>`;
}

/** The elements of `fields` in order, as xmlDocument writes the scalar and one-level object fields of a response. */
export function xmlElements(fields: Record<string, string | number | boolean | Record<string, string> | undefined>): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += typeof value === 'object' ? `<${name}>${xmlElements(value)}</${name}>` : xmlElement(name, value);
  }
  return out;
}

/**
 * A list response (ListObjects, ListObjectsV2, ListObjectVersions, ListMultipartUploads) from content already
 * written with xmlElement and the list operations' templates. These documents are built by hand, not by the builder,
 * because they are S3's hot path: a 1,000-key page is 6,000 elements, and the builder's generic walk over them (with
 * every entity rule tried on every value) cost more CPU than the listing itself. The output is byte for byte what
 * xmlDocument writes for the same content (test/xml-list-output.test.ts compares the two on hostile keys).
 */
export function xmlListDocument(root: string, content: string): string {
  return `${DECLARATION}<${root} xmlns="${S3_NS}">${content}</${root}>`;
}

/** Elements that may repeat in the request bodies the gateway accepts. */
const REPEATED = new Set(['Object', 'Part', 'Tag', 'CORSRule', 'AllowedOrigin', 'AllowedMethod', 'AllowedHeader', 'ExposeHeader', 'ObjectAttributes']);

/** Deepest nesting any S3 request document needs (CORSConfiguration/CORSRule/AllowedOrigin is 3). */
const MAX_DEPTH = 16;

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  // Entities are decoded by decodeReferences below, exactly and only as XML 1.0 defines them.
  processEntities: false,
  maxNestedTags: MAX_DEPTH,
  isArray: (name) => REPEATED.has(name),
} as ConstructorParameters<typeof XMLParser>[0]);

/** Limits of one request document; S3's own per-operation limits decide them. */
export interface XmlLimits {
  /** Most elements the document may hold. */
  maxElements: number;
}

const DEFAULT_LIMITS: XmlLimits = { maxElements: 10_000 };

/** True for a code point XML 1.0 allows in a document (the Char production). */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * True for a code point that responses carry only as a reference (UNSAFE_CHARS: C0 controls, U+FFFE/U+FFFF, lone
 * surrogates). The same references are accepted back in request bodies, so a key listed as `ctl&#1;key` can be
 * named in DeleteObjects exactly as it was listed; a lone surrogate then fails the key check (InvalidArgument).
 */
function isEscapedOnOutput(cp: number): boolean {
  return cp <= 0x1f || cp === 0xfffe || cp === 0xffff || (cp >= 0xd800 && cp <= 0xdfff);
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Decodes the five predefined entities and numeric character references (decimal and hex). Any other reference
 * names an entity that was never declared (DOCTYPEs are refused), so the document is not well-formed.
 */
export function decodeReferences(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&\s]*);?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new S3Error('MalformedXML');
    if (name in PREDEFINED) return PREDEFINED[name]!;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (!m) throw new S3Error('MalformedXML');
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2]!, 10);
    if (!isXmlChar(cp) && !isEscapedOnOutput(cp)) throw new S3Error('MalformedXML');
    return String.fromCodePoint(cp);
  });
}

/** Escapes text the way text content must be escaped when it is put back into a CDATA-free document. */
function escapeCdata(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Refuses what a request document must never contain, before any parser sees it: a DOCTYPE (and with it entity
 * declarations, external entities and their expansion), processing instructions other than the XML declaration,
 * and more elements than the operation allows. CDATA sections become escaped text, so that references are decoded
 * in one place and CDATA content stays literal.
 */
function screen(text: string, limits: XmlLimits): string {
  if (/<!DOCTYPE|<!ENTITY|<!ELEMENT|<!ATTLIST|<!NOTATION/i.test(text)) throw new S3Error('MalformedXML');
  let elements = 0;
  for (let i = text.indexOf('<'); i >= 0; i = text.indexOf('<', i + 1)) {
    const c = text.charCodeAt(i + 1);
    // '/', '!', '?' start end tags, comments/CDATA and declarations; anything else starts an element.
    if (c !== 0x2f && c !== 0x21 && c !== 0x3f && ++elements > limits.maxElements) throw new S3Error('MalformedXML');
  }
  if (!text.includes('<![CDATA[')) return text;
  return text.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, inner: string) => escapeCdata(inner));
}

/** Decodes references in every string of a parsed tree. */
function decodeTree(node: unknown): unknown {
  if (typeof node === 'string') return decodeReferences(node);
  if (Array.isArray(node)) return node.map(decodeTree);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = decodeTree(v);
    return out;
  }
  return node;
}

/** A response document: root element name and its content (objects become elements, arrays repeat). */
export function xmlDocument(root: string, content: Record<string, unknown>, withNamespace = true): string {
  const body = withNamespace ? { '@_xmlns': S3_NS, ...content } : content;
  return DECLARATION + builder.build({ [root]: body });
}

/**
 * Parses a request body with root element `root`; anything not well-formed, hostile (see screen), over `limits`,
 * or with another root element is MalformedXML.
 */
export function parseXmlBody(text: string, root: string, limits: XmlLimits = DEFAULT_LIMITS): Record<string, unknown> {
  if (text.trim() === '') throw new S3Error('MalformedXML');
  const screened = screen(text, limits);
  if (XMLValidator.validate(screened) !== true) throw new S3Error('MalformedXML');
  let doc: Record<string, unknown>;
  try {
    doc = decodeTree(parser.parse(screened)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof S3Error) throw err;
    // The parser's own refusals (nesting past MAX_DEPTH and the like) are the client's malformed document.
    throw new S3Error('MalformedXML');
  }
  const content = doc[root];
  if (content === undefined) throw new S3Error('MalformedXML');
  if (content === '' || content === null) return {};
  if (typeof content !== 'object' || Array.isArray(content)) throw new S3Error('MalformedXML');
  return content as Record<string, unknown>;
}

/** Reads a text child that must be a string, or undefined when absent. */
export function text(node: Record<string, unknown>, name: string): string | undefined {
  const v = node[name];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (v === null) return '';
  throw new S3Error('MalformedXML');
}

/** Reads a repeated child as a list of strings (AllowedOrigin and the like). */
export function texts(node: Record<string, unknown>, name: string): string[] {
  const v = node[name];
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : [v];
  return items.map((item) => {
    if (typeof item === 'string') return item;
    if (item === null || item === '') return '';
    throw new S3Error('MalformedXML');
  });
}

/** Reads a child element that must be an element (or empty), as an object. */
export function child(node: Record<string, unknown>, name: string): Record<string, unknown> | undefined {
  const v = node[name];
  if (v === undefined) return undefined;
  if (v === '' || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new S3Error('MalformedXML');
  return v as Record<string, unknown>;
}

/** Reads a repeated child as a list of element objects. */
export function list(node: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const v = node[name];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new S3Error('MalformedXML');
  return v.map((item) => {
    if (item === '' || item === null) return {};
    if (typeof item !== 'object') throw new S3Error('MalformedXML');
    return item as Record<string, unknown>;
  });
}

/** The second isoTime last formatted, and its text up to the milliseconds (`2026-11-30T04:32:10.`). */
let formattedSecond = NaN;
let formattedPrefix = '';

/** Years 1970 to 9999: toISOString's fixed-width form, which isoTime's cached prefix relies on. */
const FIXED_WIDTH_MS = 253_402_300_800_000;

/**
 * S3 timestamps in listings: ISO 8601 with milliseconds, exactly toISOString. Keys listed together were mostly
 * written together, so the text up to the second is kept from the previous call (a page formats 1,000 of them).
 */
export function isoTime(d: Date): string {
  const ms = d.getTime();
  if (!(ms >= 0 && ms < FIXED_WIDTH_MS)) return d.toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== formattedSecond) {
    formattedPrefix = d.toISOString().slice(0, 20);
    formattedSecond = second;
  }
  const milli = ms - second * 1000;
  return `${formattedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}
