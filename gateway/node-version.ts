/**
 * The Node.js versions the gateway runs on, checked first thing at start so an old runtime fails with a clear
 * message instead of a missing API deep in a request. package.json's `engines` states the same minimum.
 */

/** Oldest Node.js the code runs on: zlib.crc32 (CRC32 checksums) arrived in 20.15; 22 LTS is tested beside 20. */
export const MIN_NODE_VERSION = '20.15.0';

/** Why `version` cannot run the gateway, or undefined when it can. */
export function nodeVersionProblem(version: string = process.versions.node): string | undefined {
  const have = version.split('.').map(Number);
  const need = MIN_NODE_VERSION.split('.').map(Number);
  for (let i = 0; i < need.length; i++) {
    if ((have[i] ?? 0) > need[i]!) return undefined;
    if ((have[i] ?? 0) < need[i]!) {
      return `Anvil needs Node.js ${MIN_NODE_VERSION} or newer (22 LTS recommended); this is Node.js ${version}.`;
    }
  }
  return undefined;
}

/** Exits with status 1 and the reason when this Node.js is too old. */
export function requireSupportedNode(): void {
  const problem = nodeVersionProblem();
  if (problem === undefined) return;
  process.stderr.write(problem + '\n');
  process.exit(1);
}
