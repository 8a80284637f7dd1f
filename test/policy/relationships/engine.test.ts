/**
 * Runs every zed validation file in cases/ (https://authzed.com/docs/spicedb/modeling/validation-testing-debugging)
 * through runValidationFile: assertions and expected relations must all hold, so a case can be pasted between
 * SpiceDB's playground or `zed validate` and this project (an `anvil:` block holds what only this engine has).
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runValidationPath } from '../../../policy/relationships/index.ts';

const DIR = join(import.meta.dirname, 'cases');

for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
  test(file, async (t) => {
    const report = await runValidationPath(join(DIR, file));
    const failures = report.failures.map((f) => `line ${f.line ?? '?'}: ${f.message}${f.path ? ` [${f.path.join(' → ')}]` : ''}`);
    t.deepEqual(failures, [], file);
    t.true(report.assertions > 0, `${file} asserts something`);
  });
}
