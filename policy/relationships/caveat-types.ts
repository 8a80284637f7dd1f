/**
 * The parameter types a caveat may declare and how a context JSON value becomes each, exactly as SpiceDB defines
 * them (https://authzed.com/docs/spicedb/concepts/caveats#parameter-types; pkg/caveats/types in SpiceDB):
 *
 * | type        | context JSON                                                                   |
 * |-------------|--------------------------------------------------------------------------------|
 * | `any`       | any JSON value                                                                 |
 * | `bool`      | `true` / `false`                                                               |
 * | `string`    | a string                                                                       |
 * | `int`       | an integral number, or a string of one (64-bit values travel as strings)       |
 * | `uint`      | the same, not negative                                                         |
 * | `double`    | a number, or a string of one                                                   |
 * | `bytes`     | a standard base64 string                                                       |
 * | `duration`  | a Go duration string: `1h30m`, `300ms`, `-1.5h`                                |
 * | `timestamp` | an RFC 3339 string: `2026-12-31T00:00:00Z`                                     |
 * | `list<T>`   | a JSON array of T                                                              |
 * | `map<T>`    | a JSON object of string keys to T                                              |
 * | `ipaddress` | an IPv4 or IPv6 address string; `ip.in_cidr('10.0.0.0/8')` tests membership     |
 *
 * `ipaddress` is a CEL object type (anvil.caveats.IPAddress, one string field) so @bufbuild/cel can dispatch the
 * `in_cidr` method on it; the CIDR test itself is Node's net.BlockList.
 */

import { BlockList, isIP } from 'node:net';
import { celMethod, celUint, CelScalar, objectType, type CelInput } from '@bufbuild/cel';
import { create, createFileRegistry, type DescMessage } from '@bufbuild/protobuf';
import { DurationSchema, durationFromMs, FileDescriptorProtoSchema, timestampFromDate, timestampFromMs } from '@bufbuild/protobuf/wkt';

/** Scalar parameter types a caveat may declare; `list<T>` and `map<T>` (string keys) wrap them. */
const SCALARS = new Set(['any', 'bool', 'int', 'uint', 'double', 'string', 'bytes', 'timestamp', 'duration', 'ipaddress']);

const FILE = create(FileDescriptorProtoSchema, {
  name: 'anvil/caveats/ipaddress.proto',
  package: 'anvil.caveats',
  syntax: 'proto3',
  messageType: [{ name: 'IPAddress', field: [{ name: 'value', number: 1, type: 9, label: 1, jsonName: 'value' }] }],
});

/** The protobuf registry holding anvil.caveats.IPAddress, for the CEL environment. */
export const CAVEAT_REGISTRY = createFileRegistry(FILE, () => undefined);
const IP_DESC = CAVEAT_REGISTRY.getMessage('anvil.caveats.IPAddress') as DescMessage;
const IP_FIELD = IP_DESC.fields[0]!;
const IPADDRESS = objectType(IP_DESC);

type Family = 'ipv4' | 'ipv6';

/** A CIDR as a one-subnet BlockList, cached: caveats test the same few CIDRs over and over. */
const CIDRS = new Map<string, { family: Family; list: BlockList } | null>();

function cidrOf(text: string): { family: Family; list: BlockList } | null {
  let found = CIDRS.get(text);
  if (found !== undefined) return found;
  found = null;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const version = m ? isIP(m[1]!) : 0;
  const bits = m ? Number(m[2]) : -1;
  if (version !== 0 && bits <= (version === 4 ? 32 : 128)) {
    const family: Family = version === 4 ? 'ipv4' : 'ipv6';
    const list = new BlockList();
    list.addSubnet(m![1]!, bits, family);
    found = { family, list };
  }
  if (CIDRS.size > 10_000) CIDRS.clear();
  CIDRS.set(text, found);
  return found;
}

/**
 * `ip.in_cidr(cidr)`: whether the address lies in the CIDR. Like Go's netip.Prefix.Contains, which SpiceDB uses, an
 * address of the other family (IPv4-mapped IPv6 included) is never inside; a malformed CIDR is an evaluation error.
 */
export const IN_CIDR = celMethod('in_cidr', IPADDRESS, [CelScalar.STRING], CelScalar.BOOL, function (cidr) {
  const net = cidrOf(cidr);
  if (!net) throw new Error(`invalid CIDR string: \`${cidr}\``);
  const ip = (this as unknown as { get(field: typeof IP_FIELD): string }).get(IP_FIELD);
  const family: Family = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
  return family === net.family && net.list.check(ip, family);
});

/** Whether a declared type is one SpiceDB defines. */
export function validType(type: string): boolean {
  const generic = /^(list|map)<(.+)>$/.exec(type);
  return generic ? validType(generic[2] as string) : SCALARS.has(type);
}

/** An IP address value (canonical text) for caveat evaluation; throws on anything that is not one. */
export function ipAddress(text: string): CelInput {
  const version = isIP(text);
  if (version === 0) throw new Error(`could not parse ip address string \`${text}\``);
  // IPv6 has many spellings; the URL parser prints the canonical one, so equal addresses compare equal.
  const canonical = version === 4 ? text : new URL(`http://[${text}]/`).hostname.slice(1, -1);
  return create(IP_DESC, { value: canonical } as never) as unknown as CelInput;
}

/** A sample value of a declared type, for probe-running a caveat (variant 0 and 1 differ). */
export function sample(type: string, variant: number): CelInput {
  const generic = /^(list|map)<(.+)>$/.exec(type);
  if (generic) {
    const element = sample(generic[2] as string, variant);
    return generic[1] === 'list' ? [element] : new Map([['k', element]]);
  }
  switch (type) {
    case 'bool':
      return variant === 1;
    case 'int':
      return BigInt(variant);
    case 'uint':
      return celUint(BigInt(variant));
    case 'double':
      return variant + 0.5;
    case 'string':
      return variant === 0 ? '' : 'a';
    case 'bytes':
      return new Uint8Array(variant);
    case 'timestamp':
      return timestampFromMs(variant * 1000);
    case 'duration':
      return durationFromMs(variant * 1000);
    case 'ipaddress':
      return ipAddress(variant === 0 ? '127.0.0.1' : '::1');
    default:
      return null;
  }
}

const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 3339 as Go's time.RFC3339 parses it (fractional seconds allowed, a zone required).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const GO_DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds (fractions of a millisecond kept); undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) return undefined;
  let ms = 0;
  for (const part of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(part[1]) * (GO_DURATION_UNITS[part[2]!] as number);
  return m[1] === '-' ? -ms : ms;
}

function integral(value: unknown, type: 'int' | 'uint', fail: () => never): bigint {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) n = BigInt(value);
  else if (typeof value === 'string' && NUMBER.test(value) && Number.isInteger(Number(value))) n = BigInt(Number(value));
  else return fail();
  if (type === 'uint' ? n < 0n || n > UINT64_MAX : n < -INT64_MAX - 1n || n > INT64_MAX) return fail();
  return n;
}

/**
 * Converts a context value (JSON as above; also a Date for `timestamp`, which the gateway supplies as `now`) to the
 * CEL input of a declared parameter type; throws an Error naming the parameter and type.
 */
export function toCel(type: string, value: unknown, param: string): CelInput {
  const fail = (why = ''): never => {
    throw new Error(`parameter ${param} must be ${type}${why}`);
  };
  const generic = /^(list|map)<(.+)>$/.exec(type);
  if (generic) {
    const element = generic[2] as string;
    if (generic[1] === 'list') return Array.isArray(value) ? value.map((v) => toCel(element, v, param)) : fail();
    if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date) return fail();
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(element, v, param)]));
  }
  switch (type) {
    case 'bool':
      return typeof value === 'boolean' ? value : fail();
    case 'string':
      return typeof value === 'string' ? value : fail();
    case 'double':
      if (typeof value === 'number') return value;
      return typeof value === 'string' && NUMBER.test(value) ? Number(value) : fail();
    case 'int':
      return integral(value, 'int', fail);
    case 'uint':
      return celUint(integral(value, 'uint', fail));
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      return typeof value === 'string' && BASE64.test(value) ? new Uint8Array(Buffer.from(value, 'base64')) : fail(' (a base64 string)');
    case 'timestamp': {
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? fail() : timestampFromDate(value);
      if (typeof value !== 'string' || !RFC3339.test(value)) return fail(' (an RFC 3339 string)');
      const date = new Date(value);
      return Number.isNaN(date.getTime()) ? fail(' (an RFC 3339 string)') : timestampFromDate(date);
    }
    case 'duration': {
      const ms = typeof value === 'string' ? parseGoDuration(value) : undefined;
      if (ms === undefined) return fail(' (a duration string such as "1h30m")');
      // Whole nanoseconds, sign on both fields, as google.protobuf.Duration requires.
      const nanos = Math.round(ms * 1e6);
      const seconds = Math.trunc(nanos / 1e9);
      return create(DurationSchema, { seconds: BigInt(seconds), nanos: nanos - seconds * 1e9 }) as unknown as CelInput;
    }
    case 'ipaddress':
      if (typeof value !== 'string') return fail(' (an IP address string)');
      try {
        return ipAddress(value);
      } catch {
        return fail(' (an IP address string)');
      }
    default:
      return toAny(value, param);
  }
}

function toAny(value: unknown, param: string): CelInput {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return timestampFromDate(value);
  if (Array.isArray(value)) return value.map((v) => toAny(v, param));
  if (typeof value === 'object') return new Map(Object.entries(value).map(([k, v]) => [k, toAny(v, param)]));
  throw new Error(`parameter ${param} has an unsupported value`);
}
