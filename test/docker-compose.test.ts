/**
 * There is no Docker engine here, so the compose file is checked for what would break it: every variable it passes
 * to a gateway is one the configuration reads and parses, the ports line up with ANVIL_ADDRESS, the data directory
 * is a volume, the upstream endpoint names the MinIO service and port, and .env.example defines what compose needs.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ENV_VARS, loadConfig } from '../gateway/config.ts';

interface Service {
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  command?: string | string[];
  depends_on?: Record<string, unknown>;
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const dotenv = Object.fromEntries(
  readFileSync('.env.example', 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** Resolves ${VAR}, ${VAR:?msg} and ${VAR:-default} the way compose does, from .env.example. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Z_]+)(?::[?-][^}]*)?\}/g, (_, name: string) => {
    if (!(name in dotenv)) throw new Error(`.env.example does not define ${name}`);
    return dotenv[name]!;
  });
}

const gateways = Object.entries(compose.services).filter(([, s]) => JSON.stringify(s.command ?? '').includes('npm start'));

test('compose defines the gateway over MinIO and the embedded variant', (t) => {
  t.deepEqual(gateways.map(([name]) => name).sort(), ['gateway', 'gateway-embedded']);
  t.truthy(compose.services.minio);
  t.deepEqual(Object.keys(compose.services.gateway!.depends_on ?? {}), ['minio']);
});

for (const [name, service] of gateways) {
  test(`${name}: every variable is one the configuration reads, and it loads`, (t) => {
    const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
    for (const key of Object.keys(env)) t.true(key in ENV_VARS, `${key} is not read by gateway/config.ts`);
    const config = loadConfig(env);
    t.is(config.dataDir, '/data');
    t.is(config.rootAccessKey, dotenv.ANVIL_ROOT_ACCESS_KEY);
    // The published port maps onto the port the gateway listens on, on all interfaces inside the container.
    t.is(config.host, '0.0.0.0');
    const [, containerPort] = /:(\d+)$/.exec(service.ports![0]!)!;
    t.is(Number(containerPort), config.port);
    // The data directory is a named volume, so credentials and logs survive a restart.
    const dataVolume = service.volumes!.find((v) => v.endsWith(':/data'))!;
    t.truthy(compose.volumes[dataVolume.split(':')[0]!] !== undefined);
    if (config.backend === 'upstream') {
      const minio = compose.services.minio!;
      const address = /--address \S*:(\d+)/.exec(String(minio.command))![1];
      t.is(config.upstream.endpoint, `http://minio:${address}`);
      t.is(config.upstream.accessKey, interpolate(minio.environment!.MINIO_ROOT_USER!));
      t.is(config.upstream.secretKey, interpolate(minio.environment!.MINIO_ROOT_PASSWORD!));
    }
  });
}
