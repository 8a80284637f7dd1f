/**
 * One way to put a guard around every method of an object from outside (STYLE: cross-cutting guards wrap from
 * outside): a Proxy whose methods are each wrapped once, on first use, and then reused, so a call allocates no
 * closure. Backend calls are per request, and the gateway stacks two such guards (storage/upstream/gone-buckets.ts,
 * gateway/metrics.ts).
 */

/** A method as the wrapper sees it: already bound to the target. */
export type Method = (...args: unknown[]) => unknown;

/**
 * `target`, each of whose function-valued properties (other than those `skip` names) is replaced by what `wrap`
 * makes of it, made once per property and function. Non-function properties pass through unchanged.
 */
export function wrapMethods<T extends object>(target: T, wrap: (name: string, method: Method) => Method, skip: (name: string) => boolean = () => false): T {
  const wrapped = new Map<string, { of: Method; by: Method }>();
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || skip(property)) return value;
      const entry = wrapped.get(property);
      if (entry !== undefined && entry.of === value) return entry.by;
      const by = wrap(property, (value as Method).bind(object));
      wrapped.set(property, { of: value as Method, by });
      return by;
    },
  });
}
