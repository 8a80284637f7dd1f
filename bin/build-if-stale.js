#!/usr/bin/env node
// Compiles the TypeScript sources to dist/ (tsc -p tsconfig.build.json) and bundles the web console into
// dist/console (build-console.js) when dist/ is missing or older than any source, so `npm install && npm start`
// works on a fresh clone and a development checkout never runs stale code.
// A published or Docker install ships dist/ without sources and is left alone. Plain JavaScript: it runs before
// anything is compiled.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConsole } from './build-console.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['gateway', 'policy', 'storage'];
const INPUTS = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'bin/build-console.js'];
/** Source files by extension: TypeScript, and the console's TSX, stylesheet and page. */
const SOURCE_FILE = /\.(ts|tsx|css|html)$/;
const STAMP = join(ROOT, 'dist', '.built');
const LOCK = join(ROOT, '.dist-build.lock');

function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (SOURCE_FILE.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of SOURCES) walk(join(ROOT, dir));
  for (const file of INPUTS) if (existsSync(join(ROOT, file))) newest = Math.max(newest, statSync(join(ROOT, file)).mtimeMs);
  return newest;
}

/** Whether dist/ needs (re)building: sources are present and newer than the last build. */
export function isStale() {
  if (!existsSync(join(ROOT, SOURCES[0]))) return false;
  if (!existsSync(STAMP)) return true;
  return newestSource() > statSync(STAMP).mtimeMs;
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Builds dist/ when stale; concurrent callers wait for one build (a lock directory) instead of racing it. */
export function buildIfStale({ quiet = false } = {}) {
  if (!isStale()) return false;
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      // A lock older than five minutes belongs to a build that died.
      if (Date.now() - statSync(LOCK).mtimeMs > 300_000) rmSync(LOCK, { recursive: true, force: true });
      sleep(200);
    }
  }
  try {
    if (!isStale()) return false;
    if (!quiet) process.stderr.write('Compiling TypeScript to dist/ ...\n');
    // typescript's exports map hides bin/; its package.json is exported, and bin/tsc sits beside it.
    const tsc = join(dirname(createRequire(join(ROOT, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc');
    const out = join(ROOT, `.dist-${process.pid}`);
    rmSync(out, { recursive: true, force: true });
    execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit', cwd: ROOT });
    buildConsole(join(out, 'console'));
    writeFileSync(join(out, '.built'), new Date().toISOString() + '\n');
    rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
    renameSync(out, join(ROOT, 'dist'));
    return true;
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) buildIfStale();
