/**
 * Byte-for-byte comparison for object bodies. ava's t.deepEqual walks a Buffer element by element through its
 * formatter: a 5 MiB body took 47 s and blocked the test process (and the in-process gateway, and every test sharing
 * the process) for all of it. This compares with Buffer.equals and, on a mismatch, says where the bytes part.
 */
import type { ExecutionContext } from 'ava';

/** Asserts `actual` holds exactly the bytes of `expected`. */
export function sameBytes(t: ExecutionContext<unknown>, actual: Uint8Array, expected: Uint8Array, message?: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) {
    t.pass(message);
    return;
  }
  let at = 0;
  while (at < Math.min(a.length, b.length) && a[at] === b[at]) at++;
  t.fail(`${message ? `${message}: ` : ''}${a.length} bytes where ${b.length} were expected; they differ from offset ${at}`);
}
