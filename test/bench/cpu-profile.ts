/**
 * Reading a V8 `.cpuprofile` (what `node --cpu-prof` writes): where the samples of a time window went, by function
 * (self and inclusive time) and by part of the program (gateway/, policy/, storage/, the AWS SDK, Koa, Node itself,
 * garbage collection, idle).
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO } from './servers.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** The JSON V8 writes: a call tree, and which tree node each sample landed in, at which time (µs deltas). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Share of the window's samples, by name. */
export type Shares = Array<{ name: string; share: number }>;

/** What a window of samples shows. */
export interface ProfileSummary {
  samples: number;
  /** Share of samples per program part. */
  parts: Shares;
  /** Functions by their own samples. */
  self: Shares;
  /** Functions by the samples of everything they called too (project code and chosen libraries only). */
  inclusive: Shares;
}

/** The part of the program a call frame belongs to. */
export function partOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'garbage collection';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'native (program)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) {
    // node:internal/streams/readable → node streams; node:internal/crypto/hash → node crypto; node:_http_server → node http.
    const [first, second] = url.slice(5).split('/');
    const area = first === 'internal' && second ? second : first!;
    return `node ${area.replace(/^_?(http|stream)_?.*$/, '$1').replace(/\.js$/, '')}`;
  }
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!.startsWith('@smithy/') || m[1]!.startsWith('@aws-sdk/') || m[1]!.startsWith('@aws-crypto/') ? `AWS SDK (${m[1]})` : m[1]!;
  // dist/gateway/… (the built gateway) counts as gateway/….
  const path = (url.startsWith('file://') ? relative(REPO, new URL(url).pathname) : url).replace(/^dist\//, '');
  return path.split('/')[0] ?? path;
}

function frameName(frame: ProfileNode['callFrame']): string {
  const where = frame.url ? `${frame.url.startsWith('file://') ? relative(REPO, new URL(frame.url).pathname) : frame.url}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'} ${where}`.trim();
}

function top(counts: Map<string, number>, total: number, limit: number): Shares {
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([name, n]) => ({ name, share: n / total }));
}

/** Summarizes the samples taken between `fromUs` and `toUs` (the profile's monotonic clock, as process.hrtime). */
export function summarize(profile: CpuProfile, window: { fromUs?: number; toUs?: number } = {}, limit = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const parts = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let t = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if ((window.fromUs !== undefined && t < window.fromUs) || (window.toUs !== undefined && t > window.toUs)) return;
    total++;
    const leaf = byId.get(id)!;
    const part = partOf(leaf.callFrame);
    parts.set(part, (parts.get(part) ?? 0) + 1);
    self.set(frameName(leaf.callFrame), (self.get(frameName(leaf.callFrame)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const frame = byId.get(n)!.callFrame;
      if (!frame.url || frame.url.startsWith('node:')) continue;
      const name = frameName(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  });
  return { samples: total, parts: top(parts, total, limit), self: top(self, total, limit), inclusive: top(inclusive, total, limit) };
}

/** Reads a `.cpuprofile` file. */
export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

/** The summary as text lines, shares in percent. */
export function formatSummary(s: ProfileSummary): string {
  const block = (title: string, shares: Shares) => [title, ...shares.map((x) => `  ${(x.share * 100).toFixed(1).padStart(5)}%  ${x.name}`)];
  return [`${s.samples} samples`, ...block('by part', s.parts), ...block('self', s.self), ...block('inclusive (JS frames)', s.inclusive)].join('\n');
}
