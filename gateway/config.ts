/**
 * Configuration: ANVIL_* environment variables, optionally on top of a JSON config file named by ANVIL_CONFIG.
 * The table below is the single list of settings; the README and the docker-compose test read the same names.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { UpstreamConfig } from '../storage/upstream/index.ts';

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
  /** 32-byte master key (base64 or hex) for secrets at rest; generated into the data directory when absent. */
  masterKey?: string;
  /** Also write denial lines to stdout. */
  denialsToStdout: boolean;
  /** Access log lines (one per request) to stdout. */
  accessLog: boolean;
  backend: 'embedded' | 'upstream';
  upstream: UpstreamConfig;
  /** Let OpenID Connect JWKS URLs use http and loopback, link-local or private hosts (a local IdP, tests). */
  oidcAllowInsecureJwks: boolean;
}


/** Every environment variable the gateway reads, with its config-file key and a one-line description. */
export const ENV_VARS = {
  ANVIL_CONFIG: 'path of a JSON config file whose keys are the names below without ANVIL_ and in camelCase',
  ANVIL_ADDRESS: 'host:port to listen on (default 127.0.0.1:9000)',
  ANVIL_DATA_DIR: 'data directory (default ./data)',
  ANVIL_REGION: 'region the gateway answers for (default us-east-1)',
  ANVIL_DOMAIN: 'base domain for virtual-hosted-style requests (default none: path-style only)',
  ANVIL_ROOT_ACCESS_KEY: 'root access key id; with ANVIL_ROOT_SECRET_KEY the root credential is exactly these',
  ANVIL_ROOT_SECRET_KEY: 'root secret key',
  ANVIL_MASTER_KEY: '32-byte key (base64 or hex) encrypting secrets at rest (default: generated into the data dir)',
  ANVIL_DENIALS_STDOUT: 'also print denial lines to stdout (true/false, default false)',
  ANVIL_ACCESS_LOG: 'print one line per request to stdout (true/false, default false)',
  ANVIL_BACKEND: 'embedded (default) or upstream',
  ANVIL_UPSTREAM_ENDPOINT: 'upstream S3 endpoint URL, e.g. http://127.0.0.1:9100',
  ANVIL_UPSTREAM_REGION: 'upstream region (default us-east-1)',
  ANVIL_UPSTREAM_ACCESS_KEY: 'upstream access key id',
  ANVIL_UPSTREAM_SECRET_KEY: 'upstream secret key',
  ANVIL_UPSTREAM_PATH_STYLE: 'use path-style requests upstream (default true)',
  ANVIL_UPSTREAM_MAPPING: 'bucket (one upstream bucket per gateway bucket, default) or prefix',
  ANVIL_UPSTREAM_BUCKET: 'the single upstream bucket when ANVIL_UPSTREAM_MAPPING=prefix',
  ANVIL_UPSTREAM_TIMEOUT_MS: 'upstream request timeout in milliseconds (default 30000)',
  ANVIL_OIDC_ALLOW_INSECURE_JWKS: 'let OIDC JWKS URLs use http and loopback/link-local/private hosts (true/false, default false)',
} as const;

type Source = Record<string, string | undefined>;

function fileSource(path: string): Source {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const out: Source = {};
  for (const [k, v] of Object.entries(raw)) {
    // camelCase → ANVIL_SCREAMING_CASE, so the file and the environment share one table.
    const name = 'ANVIL_' + k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
    if (!(name in ENV_VARS)) throw new Error(`unknown setting "${k}" in ${path}`);
    out[name] = v === null || v === undefined ? undefined : String(v);
  }
  return out;
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new Error(`expected true or false, got "${value}"`);
}

/** Splits `host:port` (IPv6 hosts in brackets) into its parts. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (!m) throw new Error(`ANVIL_ADDRESS must be host:port, got "${address}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port out of range in "${address}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Reads the configuration from the environment (and the file ANVIL_CONFIG names); environment wins. */
export function loadConfig(env: Source = process.env): GatewayConfig {
  const file = env.ANVIL_CONFIG ? fileSource(env.ANVIL_CONFIG) : {};
  const get = (name: keyof typeof ENV_VARS): string | undefined => {
    const v = env[name] ?? file[name];
    return v === '' ? undefined : v;
  };
  const { host, port } = parseAddress(get('ANVIL_ADDRESS') ?? '127.0.0.1:9000');
  const backend = get('ANVIL_BACKEND') ?? 'embedded';
  if (backend !== 'embedded' && backend !== 'upstream') throw new Error('ANVIL_BACKEND must be embedded or upstream');
  const mapping = get('ANVIL_UPSTREAM_MAPPING') ?? 'bucket';
  if (mapping !== 'bucket' && mapping !== 'prefix') throw new Error('ANVIL_UPSTREAM_MAPPING must be bucket or prefix');
  const rootAccessKey = get('ANVIL_ROOT_ACCESS_KEY');
  const rootSecretKey = get('ANVIL_ROOT_SECRET_KEY');
  if ((rootAccessKey === undefined) !== (rootSecretKey === undefined)) {
    throw new Error('set both ANVIL_ROOT_ACCESS_KEY and ANVIL_ROOT_SECRET_KEY, or neither');
  }
  return {
    host,
    port,
    dataDir: resolve(get('ANVIL_DATA_DIR') ?? './data'),
    region: get('ANVIL_REGION') ?? 'us-east-1',
    domain: get('ANVIL_DOMAIN') ?? '',
    rootAccessKey,
    rootSecretKey,
    masterKey: get('ANVIL_MASTER_KEY'),
    denialsToStdout: bool(get('ANVIL_DENIALS_STDOUT'), false),
    accessLog: bool(get('ANVIL_ACCESS_LOG'), false),
    backend,
    oidcAllowInsecureJwks: bool(get('ANVIL_OIDC_ALLOW_INSECURE_JWKS'), false),
    upstream: {
      endpoint: get('ANVIL_UPSTREAM_ENDPOINT'),
      region: get('ANVIL_UPSTREAM_REGION') ?? 'us-east-1',
      accessKey: get('ANVIL_UPSTREAM_ACCESS_KEY'),
      secretKey: get('ANVIL_UPSTREAM_SECRET_KEY'),
      forcePathStyle: bool(get('ANVIL_UPSTREAM_PATH_STYLE'), true),
      mapping,
      bucket: get('ANVIL_UPSTREAM_BUCKET'),
      requestTimeoutMs: Number(get('ANVIL_UPSTREAM_TIMEOUT_MS') ?? 30000),
    },
  };
}
