/** Configuration: environment over config file, defaults, and clear errors for bad values. */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseAddress } from '../gateway/config.ts';

test('defaults: loopback port 9000, ./data, embedded store', (t) => {
  const c = loadConfig({});
  t.is(c.host, '127.0.0.1');
  t.is(c.port, 9000);
  t.is(c.dataDir, join(process.cwd(), 'data'));
  t.is(c.backend, 'embedded');
  t.is(c.region, 'us-east-1');
});

test('a JSON config file in camelCase, with the environment winning', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anvil-conf-'));
  const file = join(dir, 'anvil.json');
  writeFileSync(file, JSON.stringify({ address: '127.0.0.1:9500', dataDir: '/srv/anvil', upstreamMapping: 'prefix', denialsStdout: true }));
  const c = loadConfig({ ANVIL_CONFIG: file, ANVIL_ADDRESS: '[::1]:9600' });
  t.is(c.host, '::1');
  t.is(c.port, 9600);
  t.is(c.dataDir, '/srv/anvil');
  t.is(c.upstream.mapping, 'prefix');
  t.true(c.denialsToStdout);
  writeFileSync(file, JSON.stringify({ adress: 'typo' }));
  t.throws(() => loadConfig({ ANVIL_CONFIG: file }), { message: /unknown setting "adress"/ });
});

test('bad values are refused with the setting named', (t) => {
  t.throws(() => parseAddress('9000'), { message: /host:port/ });
  t.throws(() => parseAddress('127.0.0.1:70000'), { message: /port out of range/ });
  t.throws(() => loadConfig({ ANVIL_BACKEND: 's3' }), { message: /ANVIL_BACKEND/ });
  t.throws(() => loadConfig({ ANVIL_ROOT_ACCESS_KEY: 'only-one' }), { message: /both/ });
  t.throws(() => loadConfig({ ANVIL_ACCESS_LOG: 'maybe' }), { message: /true or false/ });
});
