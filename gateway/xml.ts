/**
 * S3's XML, written and read with fast-xml-parser: responses are built from plain objects, request bodies are
 * validated and parsed with the repeated elements declared, so a one-element list never turns into a scalar.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error } from './errors.ts';

/** The S3 document namespace every response root carries. */
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: false,
  suppressBooleanAttributes: false,
  format: false,
});

/** Elements that may repeat in the request bodies the gateway accepts. */
const REPEATED = new Set(['Object', 'Part', 'Tag']);

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name) => REPEATED.has(name),
});

/** A response document: root element name and its content (objects become elements, arrays repeat). */
export function xmlDocument(root: string, content: Record<string, unknown>, withNamespace = true): string {
  const body = withNamespace ? { '@_xmlns': S3_NS, ...content } : content;
  return DECLARATION + builder.build({ [root]: body });
}

/** Parses a request body; anything not well-formed, or with another root element, is MalformedXML. */
export function parseXmlBody(text: string, root: string): Record<string, unknown> {
  if (text.trim() === '' || XMLValidator.validate(text) !== true) throw new S3Error('MalformedXML');
  const doc = parser.parse(text) as Record<string, unknown>;
  const content = doc[root];
  if (content === undefined) throw new S3Error('MalformedXML');
  if (content === '' || content === null) return {};
  if (typeof content !== 'object') throw new S3Error('MalformedXML');
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

/** Reads a repeated child as a list of element objects. */
export function list(node: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const v = node[name];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new S3Error('MalformedXML');
  return v.map((item) => (item && typeof item === 'object' ? (item as Record<string, unknown>) : {}));
}

/** S3 timestamps in listings: ISO 8601 with milliseconds. */
export function isoTime(d: Date): string {
  return d.toISOString();
}
