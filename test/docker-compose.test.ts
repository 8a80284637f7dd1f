/**
 * The compose file and the Dockerfile, checked for what would break them: every variable compose passes to a
 * gateway is one the configuration reads and parses, the ports line up with ANVIL_ADDRESS, the data directory is a
 * volume, the upstream endpoint names the MinIO service and port, .env.example defines what compose needs, and the
 * image is multi-stage, runs the compiled build as a non-root user and is what compose builds. The production profile:
 * the gateway replicas share one PostgreSQL policy database and master key, keep their own data volumes, reach a
 * MinIO cluster of at least four drives, and are reached only through the load balancer. Where a Docker engine
 * answers, the image is built and run; elsewhere that test is skipped with the reason printed.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ENV_VARS, loadConfig } from '../gateway/config.ts';

interface Service {
  build?: string | { context: string };
  image?: string;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  command?: string | string[];
  depends_on?: Record<string, unknown>;
  profiles?: string[];
  configs?: Array<{ source: string; target: string }>;
}
// Merge keys (`<<: *gateway-node`) as compose reads them.
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs: Record<string, { content: string }>;
};
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

const gateways = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

test('compose defines the gateway over MinIO, the embedded variant and the production replicas', (t) => {
  t.deepEqual(gateways.map(([name]) => name).sort(), ['gateway', 'gateway-1', 'gateway-2', 'gateway-embedded']);
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
    // The published port (or, behind the load balancer, the exposed one) is the port the gateway listens on, on all
    // interfaces inside the container.
    t.is(config.host, '0.0.0.0');
    const [, containerPort] = /(\d+)$/.exec((service.ports ?? service.expose)![0]!)!;
    t.is(Number(containerPort), config.port);
    // The data directory is a named volume, so credentials and logs survive a restart.
    const dataVolume = service.volumes!.find((v) => v.endsWith(':/data'))!;
    t.truthy(compose.volumes[dataVolume.split(':')[0]!] !== undefined);
    // Built from this directory's Dockerfile, no checkout mounted, probed on the readiness endpoint, and given more
    // time to stop than the gateway takes to drain.
    t.is(service.build, '.');
    t.false(service.volumes!.some((v) => v.startsWith('.:') || v.includes('node_modules')));
    t.regex(JSON.stringify(service.healthcheck?.test), /\/_anvil\/health\/ready/);
    t.true(Number.parseInt(service.stop_grace_period!, 10) * 1000 > config.shutdownTimeoutMs);
    if (config.backend === 'upstream') {
      const host = new URL(config.upstream.endpoint!).hostname;
      const minio = compose.services[host]!;
      t.truthy(minio, `${host} is a compose service`);
      const address = /--address \S*:(\d+)/.exec(String(minio.command))![1];
      t.is(config.upstream.endpoint, `http://${host}:${address}`);
      t.is(config.upstream.accessKey, interpolate(minio.environment!.MINIO_ROOT_USER!));
      t.is(config.upstream.secretKey, interpolate(minio.environment!.MINIO_ROOT_PASSWORD!));
    }
  });
}

test('production profile: replicas share one PostgreSQL and master key, own their data, sit behind the load balancer', (t) => {
  const services = compose.services;
  const production = Object.entries(services).filter(([, s]) => s.profiles?.includes('production')).map(([name]) => name).sort();
  t.deepEqual(production, ['gateway-1', 'gateway-2', 'load-balancer', 'minio-1', 'minio-2', 'postgres']);
  for (const name of production) t.regex(JSON.stringify(services[name]!.healthcheck?.test), /\w/, `${name} has a health check`);
  const nodes = ['gateway-1', 'gateway-2'].map((name) => ({ name, service: services[name]!, env: Object.fromEntries(Object.entries(services[name]!.environment!).map(([k, v]) => [k, interpolate(String(v))])) }));
  const configs = nodes.map((n) => loadConfig(n.env));
  // One policy database, on the postgres service, with the credentials postgres is started with.
  const db = new URL(configs[0]!.policyDatabase!);
  t.is(configs[1]!.policyDatabase, configs[0]!.policyDatabase);
  t.is(db.hostname, 'postgres');
  const pgEnv = services.postgres!.environment!;
  t.is(decodeURIComponent(db.username), interpolate(pgEnv.POSTGRES_USER!));
  t.is(decodeURIComponent(db.password), interpolate(pgEnv.POSTGRES_PASSWORD!));
  t.is(db.pathname, `/${interpolate(pgEnv.POSTGRES_DB!)}`);
  // The same master key (it must be given: with PostgreSQL none is generated), distinct names and data volumes.
  t.truthy(configs[0]!.masterKey);
  t.is(configs[1]!.masterKey, configs[0]!.masterKey);
  t.not(configs[0]!.nodeName, configs[1]!.nodeName);
  t.not(nodes[0]!.service.volumes![0], nodes[1]!.service.volumes![0]);
  for (const n of nodes) {
    t.is(n.service.ports, undefined, `${n.name} is reached only through the load balancer`);
    t.deepEqual(Object.keys(n.service.depends_on ?? {}).sort(), ['minio-1', 'minio-2', 'postgres']);
  }
  // A distributed MinIO: every node serves the same pool of at least four drives (erasure coded).
  const commands = ['minio-1', 'minio-2'].map((m) => String(services[m]!.command));
  t.is(commands[1], commands[0]);
  const pool = /server (\S+)/.exec(commands[0]!)![1]!;
  const expand = (text: string): string[] => {
    const m = /\{(\d+)\.\.\.(\d+)\}/.exec(text);
    if (!m) return [text];
    return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => text.replace(m[0], String(Number(m[1]) + i))).flatMap(expand);
  };
  t.true(expand(pool).length >= 4, `${pool} names at least four drives`);
  // The load balancer publishes the S3 port and sends to both replicas on the port they listen on.
  const lb = services['load-balancer']!;
  t.deepEqual(lb.ports, ['127.0.0.1:9000:9000']);
  const lbConfig = compose.configs[lb.configs![0]!.source]!.content;
  for (const [i, n] of nodes.entries()) t.true(lbConfig.includes(`server ${n.name}:${configs[i]!.port}`), `${n.name} is balanced to`);
  // .env.example defines what the profile needs.
  for (const name of ['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB', 'ANVIL_MASTER_KEY']) t.truthy(dotenv[name], name);
});

/** The Dockerfile's stages: each FROM line opens one, with the instructions under it. */
const stages = readFileSync('Dockerfile', 'utf8')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((l) => /^[A-Z]+ /.test(l))
  .reduce<string[][]>((all, line) => (line.startsWith('FROM ') ? [...all, [line]] : (all.at(-1)?.push(line), all)), []);

test('Dockerfile: multi-stage; the runtime stage holds only the compiled build and runs it as a non-root user', (t) => {
  t.true(stages.length >= 2, 'a build stage and a runtime stage');
  const runtime = stages.at(-1)!;
  const copies = runtime.filter((l) => l.startsWith('COPY '));
  t.true(copies.every((l) => l.startsWith('COPY --from=build ')), 'the runtime stage copies from the build stage only');
  t.false(copies.some((l) => / \/src\/(gateway|policy|storage|test)\b/.test(l)), 'no TypeScript sources');
  t.true(copies.some((l) => l.includes('/src/dist ')));
  const user = runtime.filter((l) => l.startsWith('USER ')).at(-1);
  t.truthy(user);
  t.notRegex(user!, /^USER (root|0)\b/);
  t.is(runtime.filter((l) => l.startsWith('CMD ')).at(-1), 'CMD ["node", "dist/gateway/main.js"]', 'exec form: node itself receives SIGTERM');
  t.regex(runtime.join('\n'), /HEALTHCHECK .*\/_anvil\/health\/ready/);
  t.false(readFileSync('.dockerignore', 'utf8').split('\n').includes('bin'), 'the bin is in the image');
});

/** Why the Docker build cannot run here, or undefined when a Docker engine answers. */
function dockerUnavailable(): string | undefined {
  const probe = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 });
  if (probe.error) return `no docker client (${(probe.error as NodeJS.ErrnoException).code})`;
  if (probe.status !== 0) return `no Docker engine answers: ${(probe.stderr || probe.stdout).trim().split('\n').at(-1)}`;
  return undefined;
}

const unavailable = dockerUnavailable();
if (unavailable) {
  console.log(`Docker build test skipped: ${unavailable}`);
  test.skip(`docker build and run (skipped: ${unavailable})`, () => {});
} else {
  test.serial('docker build and run: the image builds, runs as non-root, and refuses a bad configuration by name', (t) => {
    t.timeout(20 * 60_000);
    const tag = `anvil-gateway:test-${process.pid}`;
    execFileSync('docker', ['build', '-t', tag, '.'], { stdio: 'inherit' });
    try {
      t.not(execFileSync('docker', ['run', '--rm', '--entrypoint', 'id', tag, '-u'], { encoding: 'utf8' }).trim(), '0');
      const bad = spawnSync('docker', ['run', '--rm', '-e', 'ANVIL_UPSTREAM_TIMEOUT_MS=abc', tag], { encoding: 'utf8' });
      t.is(bad.status, 78);
      t.regex(bad.stderr, /ANVIL_UPSTREAM_TIMEOUT_MS: expected an integer/);
      t.regex(execFileSync('docker', ['run', '--rm', tag, 'anvil', '--version'], { encoding: 'utf8' }), /^\d+\.\d+\.\d+/);
    } finally {
      spawnSync('docker', ['image', 'rm', '-f', tag]);
    }
  });
}
