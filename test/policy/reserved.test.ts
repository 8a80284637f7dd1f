import test from 'ava';
import { isReservedKey, listPrefixTouchesReserved, RESERVED_PREFIX } from '../../policy/index.ts';

const KEYS: [string, boolean][] = [
  ['_anvil', true],
  ['_anvil/', true],
  ['_anvil/x', true],
  ['_anvil/deep/er', true],
  ['_anvilx', false],
  ['_anvil-x/y', false],
  // What a path-normalising store (MinIO) would store as a reserved key is reserved too.
  ['/_anvil', true],
  ['/_anvil/x', true],
  ['//_anvil/uploads/x', true],
  ['./_anvil/x', true],
  ['a/../_anvil/x', true],
  ['../_anvil', true],
  ['_anvil//x', true],
  ['_anvil\\x', true],
  ['a/_anvil/x', false],
  ['a/./_anvil/x', false],
  ['x/../_anvilx', false],
  ['_ANVIL/x', false],
  ['', false],
];

for (const [key, reserved] of KEYS) {
  test(`isReservedKey(${JSON.stringify(key)}) is ${reserved}`, (t) => {
    t.is(isReservedKey(key), reserved);
  });
}

const PREFIXES: [string, boolean][] = [
  ['_anvil', true],
  ['_anvil/', true],
  ['_anvil/sub', true],
  ['_anvi', false],
  ['_', false],
  ['', false],
  ['_anvilx', false],
  ['x/_anvil/', false],
  ['/_anvil/', true],
  ['//_anvil', true],
];

for (const [prefix, touches] of PREFIXES) {
  test(`listPrefixTouchesReserved(${JSON.stringify(prefix)}) is ${touches}`, (t) => {
    t.is(listPrefixTouchesReserved(prefix), touches);
  });
}

test('the reserved prefix is _anvil/', (t) => {
  t.is(RESERVED_PREFIX, '_anvil/');
});
