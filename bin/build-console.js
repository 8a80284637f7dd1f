#!/usr/bin/env node
// Bundles the web console (gateway/console/ui: Preact components in TSX, one stylesheet, one page) with esbuild into
// dist/console, or the directory given: index.html, assets/console.js and assets/console.css, minified, with every
// dependency inside, so the gateway serves it without fetching anything at run time. build-if-stale.js calls it
// after tsc; `npm run dev` calls it alone. Plain JavaScript: it runs before anything is compiled.
import { buildSync } from 'esbuild';
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const UI = join(ROOT, 'gateway', 'console', 'ui');

/** Writes the console into `outDir` (replaced as a whole, so a reader never sees half a build). */
export function buildConsole(outDir = join(ROOT, 'dist', 'console')) {
  const tmp = `${outDir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  buildSync({
    entryPoints: { console: join(UI, 'main.tsx'), 'console-style': join(UI, 'console.css') },
    outdir: join(tmp, 'assets'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
  });
  renameSync(join(tmp, 'assets', 'console-style.css'), join(tmp, 'assets', 'console.css'));
  copyFileSync(join(UI, 'index.html'), join(tmp, 'index.html'));
  mkdirSync(dirname(outDir), { recursive: true });
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) buildConsole(process.argv[2]);
