/**
 * One guard around every upstream backend call: when a call fails with NoSuchBucketError, whatever the upstream
 * answered it for, the bucket cache forgets the buckets the call named, so the next request asks the upstream
 * again instead of trusting, for up to the cache's lifetime, a bucket deleted elsewhere. Wrapped once from outside
 * rather than repeated in each method (STYLE: cross-cutting guards wrap from outside).
 */
import type { Backend } from '../backend.ts';
import { NoSuchBucketError } from '../errors.ts';
import { wrapMethods } from '../wrap-methods.ts';

/** The gateway buckets a backend call names: a leading string argument, or an input's bucket, source and dest. */
function bucketsNamed(args: unknown[]): string[] {
  const [first] = args;
  if (typeof first === 'string') return [first];
  const input = first as { bucket?: unknown; source?: { bucket?: unknown }; dest?: { bucket?: unknown } } | undefined;
  return [input?.bucket, input?.source?.bucket, input?.dest?.bucket].filter((b): b is string => typeof b === 'string');
}

/** `backend`, each of whose calls failing with NoSuchBucketError makes `forget` drop the buckets it named. */
export function forgettingGoneBuckets<B extends Backend>(backend: B, forget: (bucket: string) => void): B {
  return wrapMethods(backend, (_name, method) => function guarded(...args: unknown[]): unknown {
    const out = method(...args);
    if (!(out instanceof Promise)) return out;
    return out.catch((err: unknown) => {
      if (err instanceof NoSuchBucketError) for (const bucket of bucketsNamed(args)) forget(bucket);
      throw err;
    });
  });
}
