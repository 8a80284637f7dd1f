/**
 * The console's denial page in Chromium on a 10,000-line window, beside the same page showing a 100-line window read
 * from the same log (the access-key filter leaves 100 of the 10,000 lines, so the gateway reads the same file for
 * both): time from "Show" to the histogram and table on screen, and to the oldest line after scrolling to the end.
 * The gateway runs in its own process, as `npm start` runs it, on a data directory whose denial log was written
 * first. The ratio is what to compare across changes: how much more 100 times the lines cost the page.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DenialLog, PolicyDatabase } from '../../policy/index.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { ROOT } from '../helpers/gateway.ts';
import { startGatewayProcess } from './servers.ts';

const LINES = 10_000;
const RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** One measured row: the 10,000-line window and the 100-line one, medians in milliseconds. */
export interface ConsoleRow {
  label: string;
  many: number;
  few: number;
}

/** The rows as a Markdown table with the ratio. */
export function formatConsoleTable(rows: ConsoleRow[]): string {
  const lines = ['| console, denials page in Chromium | 10,000-line window | 100-line window (same log) | ratio |', '|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.label} | ${r.many.toFixed(0)} ms | ${r.few.toFixed(0)} ms | ${(r.many / r.few).toFixed(2)} |`);
  return lines.join('\n');
}

/** The console section of `npm run bench`: medians of RUNS. */
export async function consoleBench(options: { log: (line: string) => void }): Promise<ConsoleRow[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'anvil-bench-console-'));
  // Written through the data directory's policy database, closed before the gateway process opens it.
  const database = await PolicyDatabase.open({ dataDir });
  const log = new DenialLog({ database });
  options.log(`console: ${LINES} denial lines, Chromium`);
  const now = Date.now();
  for (let i = 0; i < LINES; i++) {
    log.write({
      time: new Date(now - 3_000_000 + i * 300).toISOString(), requestId: `REQ${i}`, tenant: 'acme', accessKeyId: i % 100 === 0 ? 'AKIAFEWLINES0000000' : `AKIA${String(i % 37).padStart(16, '0')}`,
      action: 'GetObject', bucket: 'data', key: `k/${i}`, layer: (['scope', 'credential', 'signature', 'relationship'] as const)[i % 4]!, reason: `line ${i}`,
    });
  }
  await log.close();
  await database.close();
  const gateway = await startGatewayProcess({ name: 'gateway', dataDir });
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext({ viewport: { width: 1360, height: 900 } })).newPage();
    await page.goto(`${gateway.url}/_anvil/console/`);
    await page.getByLabel('Access key ID').fill(ROOT.accessKeyId);
    await page.getByLabel('Secret access key').fill(ROOT.secretAccessKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`${LINES} denials, newest first`).waitFor({ timeout: 60_000 });
    const measure = async (accessKey: string, expected: number) => {
      const show: number[] = [];
      const scroll: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        await page.getByLabel('Access key').fill(accessKey);
        show.push(await page.evaluate(async (n) => {
          const button = document.querySelector('form.filters button[type=submit]') as HTMLButtonElement;
          // The button reads "Loading…" from the click until the answer is rendered; an observer sees every change.
          const rendered = new Promise<void>((resolve) => {
            let loading = false;
            const observer = new MutationObserver(() => {
              if (button.textContent === 'Loading…') loading = true;
              else if (loading) {
                observer.disconnect();
                resolve();
              }
            });
            observer.observe(button, { childList: true, characterData: true, subtree: true });
          });
          const start = performance.now();
          button.click();
          await rendered;
          await new Promise((r) => requestAnimationFrame(r));
          if (!document.querySelector('.count')?.textContent?.startsWith(`${n} denials`)) throw new Error('unexpected window');
          return performance.now() - start;
        }, expected));
        scroll.push(await page.evaluate(async (n) => {
          const region = document.querySelector('[aria-label="Denial lines"]') as HTMLElement;
          const start = performance.now();
          region.scrollTop = region.scrollHeight;
          while (!document.querySelector(`tr[aria-rowindex="${n + 1}"]`)) await new Promise((r) => requestAnimationFrame(r));
          const took = performance.now() - start;
          region.scrollTop = 0;
          return took;
        }, expected));
      }
      return { show: median(show), scroll: median(scroll) };
    };
    const few = await measure('AKIAFEWLINES0000000', LINES / 100);
    const many = await measure('', LINES);
    return [
      { label: 'Show: query, histogram and table on screen', many: many.show, few: few.show },
      { label: 'scroll to the oldest line', many: many.scroll, few: few.scroll },
    ];
  } finally {
    await browser.close();
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
