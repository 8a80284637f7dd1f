/**
 * The denial histogram: counts per minute, hour or day across the window, each bar stacked by the layer that
 * refused. Drawn as plain SVG rectangles (a bar chart of a few hundred bins needs no charting library); every segment
 * has a title, and the same numbers are offered as a table for screen readers and keyboard users.
 */
import type { DenialLayer, DenialRecord } from '../../../policy/types.ts';

/** Every layer in request order, with the colour its segments get (each at least 3:1 against white). */
export const LAYER_COLOURS: Record<DenialLayer, string> = {
  signature: '#6a3d9a',
  credential: '#b3261e',
  capability: '#c2185b',
  scope: '#0b57d0',
  tenant: '#8a5a00',
  reserved_namespace: '#202124',
  relationship: '#1e7a34',
  caveat: '#00796b',
};

/** Bin sizes, in milliseconds. */
export const BIN_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** A bin size name. */
export type BinSize = keyof typeof BIN_MS;

/** Most bins drawn: a finer size over a long window falls back to the next coarser one. */
const MAX_BINS = 1500;

/** The size `wanted` (or a good one for the window when `auto`), coarsened until the bins fit. */
export function binSizeFor(wanted: BinSize | 'auto', windowMs: number): BinSize {
  const order: BinSize[] = ['minute', 'hour', 'day'];
  let i = wanted === 'auto' ? (windowMs <= 3 * 3_600_000 ? 0 : windowMs <= 4 * 86_400_000 ? 1 : 2) : order.indexOf(wanted);
  while (i < 2 && windowMs / BIN_MS[order[i]!] > MAX_BINS) i++;
  return order[i]!;
}

interface Bin {
  start: number;
  total: number;
  byLayer: Partial<Record<DenialLayer, number>>;
}

/** The records counted into bins of `size` from `from` to `to` (epoch ms), bin starts aligned to the size. */
export function binDenials(records: readonly DenialRecord[], from: number, to: number, size: BinSize): Bin[] {
  const ms = BIN_MS[size];
  // Days and hours align to local midnight and hours, minutes to minutes.
  const offset = size === 'day' ? new Date(from).getTimezoneOffset() * 60_000 : 0;
  const first = Math.floor((from - offset) / ms) * ms + offset;
  const count = Math.max(1, Math.ceil((to - first) / ms));
  const bins: Bin[] = Array.from({ length: count }, (_, i) => ({ start: first + i * ms, total: 0, byLayer: {} }));
  for (const r of records) {
    const i = Math.floor((Date.parse(r.time) - first) / ms);
    const bin = bins[i];
    if (bin === undefined) continue;
    bin.total++;
    bin.byLayer[r.layer] = (bin.byLayer[r.layer] ?? 0) + 1;
  }
  return bins;
}

function label(start: number, size: BinSize): string {
  const d = new Date(start);
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return size === 'day' ? day : `${day} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const W = 960;
const H = 200;
const LEFT = 44;
const BOTTOM = 24;

/** The histogram of a window's denials, with its summary, legend and the same numbers as a table. */
export function Histogram(props: { records: readonly DenialRecord[]; from: number; to: number; size: BinSize }) {
  const bins = binDenials(props.records, props.from, props.to, props.size);
  const max = Math.max(1, ...bins.map((b) => b.total));
  const plotW = W - LEFT - 8;
  const plotH = H - BOTTOM - 8;
  const barW = plotW / bins.length;
  const y = (n: number) => 8 + plotH - (n / max) * plotH;
  const layers = Object.keys(LAYER_COLOURS) as DenialLayer[];
  const totals = layers.map((l) => ({ layer: l, n: bins.reduce((a, b) => a + (b.byLayer[l] ?? 0), 0) })).filter((x) => x.n > 0);
  const busiest = bins.reduce((a, b) => (b.total > a.total ? b : a), bins[0]!);
  const shown = props.records.length;
  const summary = shown === 0
    ? `No denials from ${label(props.from, 'minute')} to ${label(props.to, 'minute')}.`
    : `${shown} denial${shown === 1 ? '' : 's'} per ${props.size} from ${label(props.from, 'minute')} to ${label(props.to, 'minute')}; the busiest ${props.size}, ${label(busiest.start, props.size)}, had ${busiest.total}.`;
  const ticks = bins.length <= 6 ? bins.map((_, i) => i) : Array.from({ length: 6 }, (_, k) => Math.round((k * (bins.length - 1)) / 5));
  return (
    <figure class="histogram">
      <figcaption id="histogram-summary">{summary}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby="histogram-summary" data-bins={bins.length}>
        <line x1={LEFT} x2={W - 8} y1={y(0)} y2={y(0)} class="axis" />
        {[0, max / 2, max].map((v) => (
          <text key={v} x={LEFT - 6} y={y(v) + 4} text-anchor="end" class="tick">{Number.isInteger(v) ? v : v.toFixed(1)}</text>
        ))}
        {ticks.map((i) => (
          <text key={`x${i}`} x={LEFT + (i + 0.5) * barW} y={H - 6} text-anchor="middle" class="tick">{label(bins[i]!.start, props.size).slice(props.size === 'day' ? 5 : 11)}</text>
        ))}
        {bins.map((bin, i) => {
          let top = bin.total;
          return layers.map((layer) => {
            const n = bin.byLayer[layer];
            if (!n) return null;
            const rect = (
              <rect key={`${i}-${layer}`} x={LEFT + i * barW + barW * 0.1} width={Math.max(1, barW * 0.8)} y={y(top)} height={y(top - n) - y(top)} fill={LAYER_COLOURS[layer]} data-layer={layer}>
                <title>{`${label(bin.start, props.size)} · ${layer}: ${n}`}</title>
              </rect>
            );
            top -= n;
            return rect;
          });
        })}
      </svg>
      <ul class="legend" aria-label="Denials by layer">
        {totals.map(({ layer, n }) => (
          <li key={layer}><span class="swatch" style={{ background: LAYER_COLOURS[layer] }} aria-hidden="true" />{layer} <span class="muted">{n}</span></li>
        ))}
      </ul>
      <details>
        <summary>The histogram as a table</summary>
        <table class="compact">
          <thead><tr><th scope="col">{props.size}</th><th scope="col">denials</th>{totals.map(({ layer }) => <th key={layer} scope="col">{layer}</th>)}</tr></thead>
          <tbody>
            {bins.filter((b) => b.total > 0).map((b) => (
              <tr key={b.start}><th scope="row">{label(b.start, props.size)}</th><td>{b.total}</td>{totals.map(({ layer }) => <td key={layer}>{b.byLayer[layer] ?? 0}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
