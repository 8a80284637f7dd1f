/**
 * Configuration: ANVIL_* environment variables, optionally on top of a JSON config file named by ANVIL_CONFIG whose
 * keys are the same names in camelCase without ANVIL_. SETTINGS is the one definition of every setting — its zod
 * schema (type and bounds), default and documentation; the README table, the compose test and the error messages
 * all read it. A bad value stops the start with the variable's name and what it expects.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseMasterKey } from '../policy/index.ts';
import type { UpstreamConfig } from '../storage/upstream/index.ts';
import { autoWorkers } from './cpu-quota.ts';
import { readSmallFile } from './small-file.ts';

/** One setting: how its text is parsed and checked, what it means, and what a wrong value is told it expects. */
interface Setting<T> {
  schema: z.ZodType<T>;
  /** What a valid value looks like, for error messages ("an integer from 100 to 600000"). */
  expects: string;
  /** Shown in the README and `anvil` help; one line. */
  doc: string;
  /** The default, as the README shows it (`—` for none). */
  shown: string;
}

const setting = <T>(schema: z.ZodType<T>, expects: string, doc: string, shown = '—'): Setting<T> => ({ schema, expects, doc, shown });

const text = (max = 4096) => z.string().min(1).max(max).optional();
const bool = (fallback: boolean) => z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] }).default(fallback);
const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const ADDRESS = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/;
const address = z.string().refine((a) => Number(ADDRESS.exec(a)?.[3] ?? NaN) <= 65535);
const url = z.url({ protocol: /^https?$/ }).optional();
const workers = z.union([z.literal('auto').transform(() => autoWorkers()), z.coerce.number().int().min(1).max(256)]).default(() => autoWorkers());

/** Every setting the gateway reads, by environment variable. */
export const SETTINGS = {
  ANVIL_CONFIG: setting(text(), 'a file path', 'JSON config file; its keys are the names below in camelCase without ANVIL_ (the environment wins)'),
  ANVIL_ADDRESS: setting(address.default('127.0.0.1:9000'), 'host:port, e.g. 0.0.0.0:9000 or [::1]:9000 (port 0-65535)', 'host:port to listen on (`[::1]:9000` for IPv6)', '`127.0.0.1:9000`'),
  ANVIL_DATA_DIR: setting(z.string().min(1).default('./data'), 'a directory path', 'data directory: objects, index, policy store, logs', '`./data`'),
  ANVIL_REGION: setting(z.string().regex(/^[a-z0-9-]{1,64}$/).default('us-east-1'), 'a region name such as us-east-1', 'region the gateway answers for (SigV4 scope, GetBucketLocation)', '`us-east-1`'),
  ANVIL_DOMAIN: setting(z.string().regex(/^[a-z0-9.-]{1,253}$/i).optional(), 'a DNS name such as s3.example.com', 'base domain for virtual-hosted-style requests (`bucket.<domain>`); path-style always works'),
  ANVIL_ROOT_ACCESS_KEY: setting(z.string().regex(/^[A-Za-z0-9]{16,128}$/).optional(), '16 to 128 letters and digits', 'root access key id (set both or neither)', 'generated'),
  ANVIL_ROOT_SECRET_KEY: setting(z.string().min(16).max(128).optional(), '16 to 128 characters', 'root secret key', 'generated'),
  ANVIL_MASTER_KEY: setting(z.string().regex(/^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/).optional(), '32 bytes as 64 hex digits or 44 base64 characters', '32-byte key encrypting secrets at rest; by default generated into `<data>/master.key` (mode 0600); with `ANVIL_POLICY_DATABASE` never generated: every node needs the same key', 'generated'),
  ANVIL_MASTER_KEY_FILE: setting(text(), 'a file path', 'a file holding the master key (instead of `ANVIL_MASTER_KEY`), e.g. a mounted secret'),
  ANVIL_POLICY_DATABASE: setting(z.string().max(4096).regex(/^postgres(ql)?:\/\//i).optional(), 'a postgres:// URL, e.g. postgres://anvil:secret@db:5432/anvil', 'PostgreSQL database holding the policy every gateway node shares (credentials, tenants, STS, capabilities, tuples, changelog, denial and audit logs); by default SQLite files in the data directory', 'SQLite'),
  ANVIL_POLICY_POOL_SIZE: setting(int(1, 1000, 10), 'an integer from 1 to 1000', 'PostgreSQL connections one node may hold (plus one listening for changes and up to 2 for maintenance statements)', '`10`'),
  ANVIL_POLICY_TIMEOUT_MS: setting(int(100, 600_000, 5_000), 'an integer from 100 to 600000 (milliseconds)', 'with `ANVIL_POLICY_DATABASE`: how long one PostgreSQL interaction of a request (connecting, waiting for a pooled connection, one statement) may take before the request answers 503; migrations, log queries and purges and tenant exports may take 10 minutes', '`5000`'),
  ANVIL_NODE_NAME: setting(z.string().regex(/^[\x21-\x7e]{1,128}$/).optional(), '1 to 128 printable characters without spaces', "this node's name in denial and audit rows", 'host:pid'),
  ANVIL_DENIAL_RETENTION_DAYS: setting(int(0, 36_500, 30), 'an integer from 0 to 36500 (days)', 'denial rows older than this are deleted (hourly; `0` keeps them)', '`30`'),
  ANVIL_AUDIT_RETENTION_DAYS: setting(int(0, 36_500, 365), 'an integer from 0 to 36500 (days)', 'audit rows older than this are deleted (hourly; `0` keeps them)', '`365`'),
  ANVIL_TLS_CERT: setting(text(), 'a PEM certificate file path', 'serve HTTPS with this PEM certificate chain (with `ANVIL_TLS_KEY`); reloaded on SIGHUP or when the file changes'),
  ANVIL_TLS_KEY: setting(text(), 'a PEM private key file path', 'the PEM private key of `ANVIL_TLS_CERT`'),
  ANVIL_HEALTH_ADDRESS: setting(address.optional(), 'host:port, e.g. 0.0.0.0:9090', 'also answer `/_anvil/health/*` (and nothing else) over plain HTTP on this host:port'),
  ANVIL_METRICS_TOKEN: setting(z.string().regex(/^[\x21-\x7e]{16,256}$/).optional(), '16 to 256 printable characters without spaces', 'bearer token that may read `/_anvil/metrics` (SigV4 requests of root always may)'),
  ANVIL_LOG_LEVEL: setting(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), 'one of fatal, error, warn, info, debug, trace, silent', 'least severe level of the JSON log lines on stdout', '`info`'),
  ANVIL_ACCESS_LOG: setting(bool(true), 'true or false', 'one JSON access line per request on stdout', '`true`'),
  ANVIL_DENIALS_STDOUT: setting(bool(false), 'true or false', 'also write each denial as a JSON log line on stdout, for log shippers (they always go to the policy database)', '`false`'),
  ANVIL_SIGV2: setting(bool(true), 'true or false', 'accept AWS Signature V2 (header and presigned URLs) besides SigV4', '`true`'),
  ANVIL_WORKERS: setting(workers, 'an integer from 1 to 256, or `auto` (one per core, within the CPU quota)', 'worker processes serving requests (node:cluster) behind one port; `1` serves from a single process; see "Worker processes"', '`auto` (one per core, within the CPU quota)'),
  ANVIL_SHUTDOWN_TIMEOUT_MS: setting(int(0, 600_000, 30_000), 'an integer from 0 to 600000 (milliseconds)', 'on SIGTERM/SIGINT, how long requests in flight may take to finish before they are cut off', '`30000`'),
  ANVIL_BACKEND: setting(z.enum(['embedded', 'upstream']).default('embedded'), 'embedded or upstream', '`embedded` or `upstream`', '`embedded`'),
  ANVIL_UPSTREAM_ENDPOINT: setting(url, 'an http:// or https:// URL', 'upstream S3 endpoint URL, e.g. `http://127.0.0.1:9100`'),
  ANVIL_UPSTREAM_REGION: setting(z.string().regex(/^[a-z0-9-]{1,64}$/).default('us-east-1'), 'a region name such as us-east-1', 'upstream region', '`us-east-1`'),
  ANVIL_UPSTREAM_ACCESS_KEY: setting(text(256), '1 to 256 characters', 'upstream access key id (independent of the gateway\'s own credentials)'),
  ANVIL_UPSTREAM_SECRET_KEY: setting(text(256), '1 to 256 characters', 'upstream secret key'),
  ANVIL_UPSTREAM_PATH_STYLE: setting(bool(true), 'true or false', 'path-style requests upstream', '`true`'),
  ANVIL_UPSTREAM_MAPPING: setting(z.enum(['bucket', 'prefix']).default('bucket'), 'bucket or prefix', '`bucket`: one upstream bucket per gateway bucket; `prefix`: all gateway buckets inside `ANVIL_UPSTREAM_BUCKET`', '`bucket`'),
  ANVIL_UPSTREAM_BUCKET: setting(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/).optional(), 'an S3 bucket name', 'the single upstream bucket for `prefix` mapping'),
  ANVIL_UPSTREAM_TIMEOUT_MS: setting(int(100, 600_000, 30_000), 'an integer from 100 to 600000 (milliseconds)', 'upstream request timeout', '`30000`'),
  ANVIL_IDLE_TIMEOUT_MS: setting(int(0, 3_600_000, 30_000), 'an integer from 0 to 3600000 (milliseconds)', 'a request body that stops arriving for this long is answered `400 RequestTimeout`; a response the client stops reading for this long is cut off (`0` disables)', '`30000`'),
  ANVIL_MIN_BODY_RATE: setting(int(0, 1_073_741_824, 256), 'an integer from 0 to 1073741824 (bytes per second)', 'a request body still arriving after `ANVIL_IDLE_TIMEOUT_MS` must have brought at least this many bytes for every second read past that (time the gateway is not reading does not count), else it is answered `400 RequestTimeout` (`0` disables)', '`256`'),
  ANVIL_SPACE_RESERVE_MB: setting(int(0, 1_048_576, 64), 'an integer from 0 to 1048576 (MiB)', 'space kept on the data volume for metadata, so deletes and revocations commit when it is full; data writes are refused with `507` near it (`0` disables)', '`64`'),
  ANVIL_CONSOLE: setting(bool(true), 'true or false', 'serve the web console at `/_anvil/console/` (sign-in with an access key and secret; the admin API\'s authority rules)', '`true`'),
  ANVIL_CONSOLE_SESSION_SECONDS: setting(int(60, 28_800, 900), 'an integer from 60 to 28800 (seconds)', 'how long a console session lives without use (renewed while used, never beyond 8 hours from sign-in)', '`900`'),
  ANVIL_OIDC_ALLOW_INSECURE_JWKS: setting(bool(false), 'true or false', 'let OpenID Connect JWKS URLs use `http` and loopback, link-local or private hosts (a local IdP); by default only `https` to public addresses is fetched', '`false`'),
} as const;

/** An environment variable the gateway reads. */
export type SettingName = keyof typeof SETTINGS;

type Parsed = { [K in SettingName]: z.output<(typeof SETTINGS)[K]['schema']> };

/** Every environment variable the gateway reads, with its one-line description (the compose test reads it). */
export const ENV_VARS: Readonly<Record<SettingName, string>> = Object.fromEntries(
  Object.entries(SETTINGS).map(([name, s]) => [name, s.doc]),
) as Record<SettingName, string>;

/** Everything the composition root needs to build a gateway. */
export interface GatewayConfig {
  host: string;
  port: number;
  dataDir: string;
  region: string;
  /** Base domain for virtual-hosted-style addressing (`bucket.<domain>`); empty disables it. */
  domain: string;
  rootAccessKey?: string;
  rootSecretKey?: string;
  /** 32-byte master key (base64 or hex) for secrets at rest; generated into the data directory when absent (SQLite). */
  masterKey?: string;
  /** `postgres://…`: the policy database every node shares; absent, SQLite files in the data directory. */
  policyDatabase?: string;
  /** PostgreSQL connections this node may hold. */
  policyPoolSize: number;
  /** Milliseconds one PostgreSQL interaction of a request may take before it fails as unavailable. */
  policyTimeoutMs: number;
  /** This node's name in denial and audit rows (default host:pid). */
  nodeName?: string;
  /** Days denial rows are kept (0: for ever). */
  denialRetentionDays: number;
  /** Days audit rows are kept (0: for ever). */
  auditRetentionDays: number;
  /** PEM files to serve HTTPS with; plain HTTP when absent. */
  tls?: { certFile: string; keyFile: string };
  /** A plain-HTTP listener that answers only the health endpoints. */
  health?: { host: string; port: number };
  /** Bearer token for /_anvil/metrics. */
  metricsToken?: string;
  logLevel: Parsed['ANVIL_LOG_LEVEL'];
  /** One access line per request. */
  accessLog: boolean;
  /** Also write denial lines to the log on stdout. */
  denialsToStdout: boolean;
  /** Milliseconds requests in flight get to finish on SIGTERM/SIGINT. */
  shutdownTimeoutMs: number;
  /** Worker processes `npm start` runs (gateway/cluster.ts); 1 runs the gateway in the process itself. */
  workers: number;
  /** Accept AWS Signature Version 2 (legacy clients, botocore's `s3` signature version). */
  sigV2: boolean;
  backend: 'embedded' | 'upstream';
  upstream: UpstreamConfig;
  /** Let OpenID Connect JWKS URLs use http and loopback, link-local or private hosts (a local IdP, tests). */
  oidcAllowInsecureJwks: boolean;
  /** Longest a request may wait on its client (a body not arriving, a response not read); 0 disables. */
  idleTimeoutMs: number;
  /** Least average rate, in bytes a second, of a request body still arriving after idleTimeoutMs; 0 disables. */
  minBodyRate: number;
  /** Metadata reserve kept on the data volume (see storage/space-reserve.ts); 0 disables. */
  spaceReserveBytes: number;
  /** The web console: off, or how long its sessions live without use. */
  console: { enabled: boolean; sessionSeconds: number };
}

/** A configuration that cannot start: every bad setting, each with its name and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

type Source = Record<string, string | undefined>;

/** The config-file key of a variable: ANVIL_UPSTREAM_TIMEOUT_MS → upstreamTimeoutMs. */
export function fileKeyOf(name: SettingName): string {
  return name.slice('ANVIL_'.length).toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Largest configuration file read (a JSON object of settings is a few KiB). */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
/** Largest master key file read (the key is 32 bytes, 44 in base64). */
const MAX_KEY_FILE_BYTES = 64 * 1024;

const BY_FILE_KEY = new Map((Object.keys(SETTINGS) as SettingName[]).map((name) => [fileKeyOf(name), name]));

function fileSource(path: string): Source {
  let raw: unknown;
  try {
    raw = JSON.parse(readSmallFile(path, MAX_CONFIG_FILE_BYTES).toString('utf8'));
  } catch (error) {
    throw new ConfigError([`ANVIL_CONFIG: cannot read ${path} as JSON (${(error as Error).message})`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError([`ANVIL_CONFIG: ${path} must hold a JSON object`]);
  const out: Source = {};
  const problems: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const name = BY_FILE_KEY.get(key);
    if (name === undefined || name === 'ANVIL_CONFIG') problems.push(`unknown setting "${key}" in ${path}`);
    else if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) problems.push(`${key} (${name}) in ${path}: expected ${SETTINGS[name].expects}`);
    else out[name] = value === null ? undefined : String(value);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

/** Splits `host:port` (IPv6 hosts in brackets) into its parts. */
export function parseAddress(address: string, name = 'ANVIL_ADDRESS'): { host: string; port: number } {
  const m = ADDRESS.exec(address.trim());
  if (!m || Number(m[3]) > 65535) throw new ConfigError([`${name}: expected ${SETTINGS.ANVIL_ADDRESS.expects}, got "${address}"`]);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
}

/** Settings whose values are secrets: a bad one is described, never echoed (a typo would print most of the key). */
const SECRET_SETTINGS: ReadonlySet<SettingName> = new Set(['ANVIL_ROOT_SECRET_KEY', 'ANVIL_MASTER_KEY', 'ANVIL_METRICS_TOKEN', 'ANVIL_UPSTREAM_SECRET_KEY']);

/** A rejected value as an error message may show it: secrets by length only, a URL's password masked. */
function shownValue(name: SettingName, given: string | undefined): string {
  if (given === undefined) return 'nothing';
  if (SECRET_SETTINGS.has(name)) return `a value of ${given.length} characters (not shown: it is a secret)`;
  return JSON.stringify(given.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*:)[^/@]*@/i, '$1***@'));
}

/** Parses every setting, collecting every problem before failing. */
function parseAll(get: (name: SettingName) => string | undefined): Parsed {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, s] of Object.entries(SETTINGS) as [SettingName, Setting<unknown>][]) {
    const given = get(name);
    const result = s.schema.safeParse(given);
    if (result.success) out[name] = result.data;
    else problems.push(`${name}: expected ${s.expects}, got ${shownValue(name, given)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Parsed;
}

/** Settings that only make sense together. */
function crossChecks(p: Parsed): string[] {
  const problems: string[] = [];
  const pair = (a: SettingName, b: SettingName) => {
    if ((p[a] === undefined) !== (p[b] === undefined)) problems.push(`${a} and ${b}: set both, or neither`);
  };
  pair('ANVIL_ROOT_ACCESS_KEY', 'ANVIL_ROOT_SECRET_KEY');
  pair('ANVIL_TLS_CERT', 'ANVIL_TLS_KEY');
  pair('ANVIL_UPSTREAM_ACCESS_KEY', 'ANVIL_UPSTREAM_SECRET_KEY');
  if (p.ANVIL_MASTER_KEY !== undefined && p.ANVIL_MASTER_KEY_FILE !== undefined) problems.push('ANVIL_MASTER_KEY and ANVIL_MASTER_KEY_FILE: set one, not both');
  if (p.ANVIL_BACKEND === 'upstream' && p.ANVIL_UPSTREAM_ENDPOINT === undefined) {
    problems.push('ANVIL_UPSTREAM_ENDPOINT: expected an http:// or https:// URL when ANVIL_BACKEND=upstream');
  }
  if (p.ANVIL_UPSTREAM_MAPPING === 'prefix' && p.ANVIL_UPSTREAM_BUCKET === undefined) {
    problems.push('ANVIL_UPSTREAM_BUCKET: expected an S3 bucket name when ANVIL_UPSTREAM_MAPPING=prefix');
  }
  return problems;
}

/**
 * The key a master key file (ANVIL_MASTER_KEY_FILE) holds, as text; ConfigError when the file cannot be read, is over
 * 64 KiB or holds no key. The gateway's start and `anvil migrate-policy` read it through here.
 */
export function masterKeyFromFile(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readSmallFile(resolve(path), MAX_KEY_FILE_BYTES).toString('utf8').trim();
  } catch (error) {
    throw new ConfigError([`ANVIL_MASTER_KEY_FILE: cannot read ${path} (${(error as Error).message})`]);
  }
  // Parsed here as the policy store will parse it, so a file holding no key is a bad setting (exit 78, one line
  // that never echoes the file), not a failure of the start.
  try {
    parseMasterKey(text);
  } catch {
    throw new ConfigError([`ANVIL_MASTER_KEY_FILE: ${path} holds no master key (expected 32 bytes as 64 hex digits or base64)`]);
  }
  return text;
}

/**
 * Reads the configuration from the environment (and the file ANVIL_CONFIG names; the environment wins). Empty
 * values count as unset. Throws ConfigError naming every bad setting and what it expects.
 */
export function loadConfig(env: Source = process.env): GatewayConfig {
  const file = env.ANVIL_CONFIG ? fileSource(env.ANVIL_CONFIG) : {};
  const p = parseAll((name) => {
    const value = env[name] ?? file[name];
    return value === '' ? undefined : value;
  });
  const problems = crossChecks(p);
  if (problems.length > 0) throw new ConfigError(problems);
  const { host, port } = parseAddress(p.ANVIL_ADDRESS);
  return {
    host,
    port,
    dataDir: resolve(p.ANVIL_DATA_DIR),
    region: p.ANVIL_REGION,
    domain: p.ANVIL_DOMAIN ?? '',
    rootAccessKey: p.ANVIL_ROOT_ACCESS_KEY,
    rootSecretKey: p.ANVIL_ROOT_SECRET_KEY,
    masterKey: p.ANVIL_MASTER_KEY ?? masterKeyFromFile(p.ANVIL_MASTER_KEY_FILE),
    policyDatabase: p.ANVIL_POLICY_DATABASE,
    policyPoolSize: p.ANVIL_POLICY_POOL_SIZE,
    policyTimeoutMs: p.ANVIL_POLICY_TIMEOUT_MS,
    nodeName: p.ANVIL_NODE_NAME,
    denialRetentionDays: p.ANVIL_DENIAL_RETENTION_DAYS,
    auditRetentionDays: p.ANVIL_AUDIT_RETENTION_DAYS,
    tls: p.ANVIL_TLS_CERT && p.ANVIL_TLS_KEY ? { certFile: resolve(p.ANVIL_TLS_CERT), keyFile: resolve(p.ANVIL_TLS_KEY) } : undefined,
    health: p.ANVIL_HEALTH_ADDRESS ? parseAddress(p.ANVIL_HEALTH_ADDRESS, 'ANVIL_HEALTH_ADDRESS') : undefined,
    metricsToken: p.ANVIL_METRICS_TOKEN,
    logLevel: p.ANVIL_LOG_LEVEL,
    accessLog: p.ANVIL_ACCESS_LOG,
    denialsToStdout: p.ANVIL_DENIALS_STDOUT,
    sigV2: p.ANVIL_SIGV2,
    shutdownTimeoutMs: p.ANVIL_SHUTDOWN_TIMEOUT_MS,
    workers: p.ANVIL_WORKERS,
    backend: p.ANVIL_BACKEND,
    oidcAllowInsecureJwks: p.ANVIL_OIDC_ALLOW_INSECURE_JWKS,
    console: { enabled: p.ANVIL_CONSOLE, sessionSeconds: p.ANVIL_CONSOLE_SESSION_SECONDS },
    upstream: {
      endpoint: p.ANVIL_UPSTREAM_ENDPOINT,
      region: p.ANVIL_UPSTREAM_REGION,
      accessKey: p.ANVIL_UPSTREAM_ACCESS_KEY,
      secretKey: p.ANVIL_UPSTREAM_SECRET_KEY,
      forcePathStyle: p.ANVIL_UPSTREAM_PATH_STYLE,
      mapping: p.ANVIL_UPSTREAM_MAPPING,
      bucket: p.ANVIL_UPSTREAM_BUCKET,
      requestTimeoutMs: p.ANVIL_UPSTREAM_TIMEOUT_MS,
    },
    idleTimeoutMs: p.ANVIL_IDLE_TIMEOUT_MS,
    minBodyRate: p.ANVIL_MIN_BODY_RATE,
    spaceReserveBytes: p.ANVIL_SPACE_RESERVE_MB * 1024 * 1024,
  };
}

/** The README's configuration table, generated from SETTINGS (a test keeps the README equal to it). */
export function settingsTable(): string {
  const rows = (Object.entries(SETTINGS) as [SettingName, Setting<unknown>][]).map(
    ([name, s]) => `| \`${name}\` | \`${fileKeyOf(name)}\` | ${s.shown} | ${s.doc} |`,
  );
  return ['| variable | config-file key | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
