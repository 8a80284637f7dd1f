/**
 * Resolving a client's byte range against an object's size (RFC 7233 as S3 applies it). Pure, shared by backends.
 */
import type { RangeRequest } from './backend.ts';
import { InvalidRangeError } from './errors.ts';

/** An inclusive byte range within an object. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/**
 * Turns a RangeRequest into inclusive offsets, clamping the end to the object; throws InvalidRangeError when no byte
 * of the object is covered (so every range but a non-zero suffix is 416 on an empty object). A bounded range with end < start is syntactically invalid, so (as S3 does) it is ignored
 * and undefined is returned: serve the whole object.
 */
export function resolveRange(range: RangeRequest, size: number): ResolvedRange | undefined {
  switch (range.kind) {
    case 'bounded':
      if (range.end < range.start) return undefined;
      if (range.start >= size) throw new InvalidRangeError(size);
      return { start: range.start, end: Math.min(range.end, size - 1) };
    case 'open':
      if (range.start >= size) throw new InvalidRangeError(size);
      return { start: range.start, end: size - 1 };
    case 'suffix':
      // A zero-length suffix selects no byte. A non-zero suffix is satisfiable even on an empty object (RFC 9110
      // §14.1.1: "at least one suffix-range with a non-zero suffix-length"), but no 206 can describe zero bytes,
      // so the whole (empty) representation is served with 200, as S3 serves tail reads of empty objects.
      if (range.length <= 0) throw new InvalidRangeError(size);
      if (size === 0) return undefined;
      return { start: Math.max(0, size - range.length), end: size - 1 };
  }
}

/** The inclusive byte range of part `partNumber` (1-based) given the part sizes; undefined when there is no such part. */
export function partRange(partSizes: readonly number[], partNumber: number): ResolvedRange | undefined {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > partSizes.length) return undefined;
  let start = 0;
  for (let i = 0; i < partNumber - 1; i++) start += partSizes[i]!;
  return { start, end: start + partSizes[partNumber - 1]! - 1 };
}
