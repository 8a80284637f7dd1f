/**
 * The console's page and its bundle: the files bin/build-console.js writes to dist/console at build time (Preact
 * bundled by esbuild; nothing is fetched from anywhere at run time), read into memory once when the gateway starts
 * so a rebuild of dist/ under a running gateway cannot tear a page. Served with a strict Content-Security-Policy.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';

/** One file of the console, ready to send. */
export interface ConsoleFile {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Headers every console answer carries: scripts, styles and connections only from the gateway itself, no framing,
 * no inline script, no referrer (paths carry access key ids).
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The repository (or installed package) root: the nearest directory above this file holding package.json. */
function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Where the build puts the console: dist/console under the package root, from the sources and from dist/ alike. */
export function consoleDir(): string {
  return join(packageRoot(), 'dist', 'console');
}

/** The built console by URL path (`/` is the page), or an empty map when it was never built. */
export function loadConsoleAssets(dir = consoleDir()): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (TYPES[extname(entry.name)] !== undefined) {
        const body = readFileSync(join(dir, rel));
        files.set(`/${rel}`, { body, type: TYPES[extname(entry.name)]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
      }
    }
  };
  walk('');
  files.set('/', files.get('/index.html')!);
  return files;
}
