/**
 * A tenant's schema and tuples as text zed reads and writes (https://authzed.com/docs/spicedb/getting-started/
 * installing-zed; zed's `backup` and `import` commands):
 * - `yaml` (the default): a validation file with `schema` and `relationships`, which `zed import` and `zed validate`
 *   load; relationships are SpiceDB strings (`type:id#relation@subject[caveat:{…}][expiration:…]`, no caveat hash);
 * - `relationships`: one relationship per line as `zed backup parse-relationships` prints them
 *   (`type:id relation subject…`);
 * - `schema`: the schema text as `zed backup parse-schema` prints it.
 * Reading accepts the yaml form, or relationship lines in either spelling (schema unchanged).
 */

import { isMap, parseDocument } from 'yaml';
import { stringify } from 'yaml';
import { InvalidInputError } from '../errors.ts';
import { formatSpiceDbTuple, type Tuple } from './tuples.ts';

/** The text forms a tenant exports to. */
export const BACKUP_FORMATS = ['yaml', 'relationships', 'schema'] as const;

/** One text form. */
export type BackupFormat = (typeof BACKUP_FORMATS)[number];

/** What a backup text holds: the schema, when it carries one, and relationship lines in the string form. */
export interface ParsedBackup {
  schema?: string;
  relationships: string;
}

/** A tenant's schema and live tuples in one of the text forms. */
export function formatBackup(exported: { schema: string; tuples: Tuple[] }, format: BackupFormat = 'yaml'): string {
  const lines = exported.tuples.map(formatSpiceDbTuple);
  if (format === 'schema') return exported.schema.endsWith('\n') ? exported.schema : `${exported.schema}\n`;
  // zed's replaceRelString: the first `#` and the first `@` become spaces.
  if (format === 'relationships') return lines.map((l) => `${l.replace('#', ' ').replace('@', ' ')}\n`).join('');
  return stringify({ schema: exported.schema, relationships: lines.join('\n') }, { blockQuote: 'literal', lineWidth: 0 });
}

/** Reads a backup text (see the file comment); throws InvalidInputError when it is none of the forms. */
export function parseBackup(text: string): ParsedBackup {
  const trimmed = text.trimStart();
  if (/^(---\s*\n)?(#.*\n)*\s*(schema|relationships|schemaFile)\s*:/.test(trimmed)) {
    const doc = parseDocument(text);
    if (doc.errors.length > 0 || !isMap(doc.contents)) throw new InvalidInputError(`backup is not valid YAML: ${doc.errors[0]?.message ?? 'not a mapping'}`);
    const value = doc.toJS() as { schema?: unknown; relationships?: unknown; schemaFile?: unknown };
    if (value.schemaFile !== undefined) throw new InvalidInputError('a backup must carry its schema inline (schema:), not schemaFile');
    if (value.schema !== undefined && typeof value.schema !== 'string') throw new InvalidInputError('schema must be a string');
    if (value.relationships !== undefined && typeof value.relationships !== 'string') throw new InvalidInputError('relationships must be a string of lines');
    return { schema: value.schema as string | undefined, relationships: (value.relationships as string | undefined) ?? '' };
  }
  return { relationships: text.split(/\r?\n/).map(fromZedLine).join('\n') };
}

/** `type:id relation subject…` (zed's printed form) as `type:id#relation@subject…`; other lines unchanged. */
function fromZedLine(line: string): string {
  const m = /^\s*(\S+) ([A-Za-z_][A-Za-z0-9_]*) (\S.*)$/.exec(line);
  return m && !m[1]!.includes('#') ? `${m[1]}#${m[2]}@${m[3]}` : line;
}
