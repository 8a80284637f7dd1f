/**
 * What an operator reads: text a caller chose (a refused key, a user agent, an audit reason, a tuple id, an error
 * message) reaches the CLI's tables, follow lines and messages with its control characters and bidi overrides shown
 * as escapes, never raw; `--json` stays exact JSON. The CLI runs as a child process against a real gateway.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { printable, printableLines, say, table } from '../gateway/cli/format.ts';
import { denials } from './helpers/admin.ts';
import { anvil, credentialEnv } from './helpers/cli.ts';
import { ROOT, startTestGateway } from './helpers/gateway.ts';

/** Any character a terminal would act on: C0 but newline, DEL, C1, bidi overrides and isolates. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** A key that retitles the terminal (OSC … BEL), recolours it (SGR), reorders it (RLO) and forges a line. */
const EVIL_KEY = '\x1b]0;pwned\x07\x1b[31mRED\x1b[0m\u202eevil\nline2 forged';

test('unit: printable escapes C0, DEL, C1 and bidi controls visibly; printableLines keeps line breaks', (t) => {
  t.is(printable('a\x1b[31mb\x07\n\t\r\x7f\x85\u202e\u2066c'), 'a\\x1b[31mb\\x07\\n\\t\\r\\x7f\\x85\\u202e\\u2066c');
  t.is(printable('photos/2024/ä 🦄.jpg'), 'photos/2024/ä 🦄.jpg');
  t.is(printableLines('line1\nx\x1by\u2067\n'), 'line1\nx\\x1by\\u2067\n');
  t.is(say`Tenant ${'a\nb'} has ${3} buckets.\n`, 'Tenant a\\nb has 3 buckets.\n');
  const out = table(['KEY', 'WHO'], [[EVIL_KEY, 'amy']]);
  t.is(out.split('\n').length, 3, 'a header, one row and the final newline');
  t.false(RAW.test(out));
});

test('denials (table and --follow) and audit show refused keys and reasons escaped; --json stays exact', async (t) => {
  const tg = await startTestGateway();
  const env = { ANVIL_ENDPOINT: tg.gw.url, ...credentialEnv(ROOT) };
  const follower = spawn(process.execPath, ['bin/anvil.js', 'denials', '--follow'], { cwd: join(import.meta.dirname, '..'), env: { PATH: process.env.PATH ?? '', ...env } });
  try {
    let followed = '';
    follower.stdout.setEncoding('utf8').on('data', (chunk: string) => (followed += chunk));
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    await until(() => followed.includes('REASON'));

    // Unsigned, so refused: the key is the caller's choice, the user agent too.
    const res = await fetch(`${tg.gw.url}/paa/${encodeURIComponent(EVIL_KEY)}`);
    t.is(res.status, 403);
    await res.body?.cancel();
    t.true((await denials(tg)).some((d) => d.key === EVIL_KEY), 'the log keeps the key exactly');

    const plain = await anvil(['denials', '--since', '1h'], env);
    t.is(plain.code, 0, plain.stderr);
    t.false(RAW.test(plain.stdout), JSON.stringify(plain.stdout));
    t.true(plain.stdout.includes('paa/\\x1b]0;pwned\\x07\\x1b[31mRED\\x1b[0m\\u202eevil\\nline2 forged'));
    t.is(plain.stdout.trimEnd().split('\n').length, 2, 'a header and one row: no forged line');

    const asJson = await anvil(['denials', '--since', '1h', '--json'], env);
    t.is(JSON.parse(asJson.stdout).find((d: { bucket: string }) => d.bucket === 'paa').key, EVIL_KEY);

    await until(() => followed.includes('forged'));
    t.false(RAW.test(followed), JSON.stringify(followed));
    t.true(followed.includes('\\u202eevil\\nline2 forged'));
    t.is(followed.trimEnd().split('\n').length, 2, 'the follow header and one line');

    // An audit row: the reason is the caller's, shown in DETAILS.
    t.is((await anvil(['tenant', 'create', 'acme'], env)).code, 0);
    const locked = await anvil(['tenant', 'lockdown', 'acme', '--reason', 'leak\u202eevil\u0085x'], env);
    t.is(locked.code, 0, locked.stderr);
    const audit = await anvil(['audit', '--since', '1h'], env);
    t.is(audit.code, 0, audit.stderr);
    t.false(RAW.test(audit.stdout), JSON.stringify(audit.stdout));
    t.true(audit.stdout.includes('leak\\u202e'));
    t.is(JSON.parse((await anvil(['audit', '--since', '1h', '--json'], env)).stdout).find((a: { action: string }) => a.action === 'tenant.lockdown').details.reason, 'leak\u202eevil\u0085x');

    // An error message that quotes the caller's input.
    const bad = await anvil(['credential', 'show', 'AKIA\x1b]0;x\x07'], env);
    t.is(bad.code, 1);
    t.false(RAW.test(bad.stderr), JSON.stringify(bad.stderr));
  } finally {
    follower.kill();
    await tg.close();
  }
});
