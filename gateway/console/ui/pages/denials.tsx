/**
 * Denials: the refused requests of a time window (up to 10,000 lines, what one admin API query returns), as a
 * histogram stacked by layer and a table, filtered by tenant, access key, bucket, key prefix and layer; live follow
 * polls for new lines and adds them as they come.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { DenialLayer, DenialRecord } from '../../../../policy/types.ts';
import { admin, query, shortTime, type Session } from '../api.ts';
import { ErrorNote, TenantPicker } from '../components.tsx';
import { binSizeFor, Histogram, LAYER_COLOURS, type BinSize } from '../histogram.tsx';
import { VirtualTable, type Column } from '../virtual-table.tsx';

/** Most lines one window holds (the admin API's largest query). */
export const WINDOW_LINES = 10_000;

const WINDOWS = { '15m': 15 * 60_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const;
const FOLLOW_MS = 2000;

interface Filters {
  tenant: string;
  accessKey: string;
  bucket: string;
  keyPrefix: string;
  layer: string;
  window: keyof typeof WINDOWS;
  size: BinSize | 'auto';
}

const COLUMNS: Column<DenialRecord>[] = [
  { title: 'Time', width: '12.5em', cell: (d) => shortTime(d.time) },
  { title: 'Layer', width: '10em', cell: (d) => <span class="layer"><span class="swatch" style={{ background: LAYER_COLOURS[d.layer] }} aria-hidden="true" />{d.layer}</span> },
  { title: 'Action', width: '12em', cell: (d) => d.action },
  { title: 'Tenant', width: '7em', cell: (d) => d.tenant ?? '—' },
  { title: 'Access key', width: '13em', cell: (d) => (d.accessKeyId ? <code>{d.accessKeyId}</code> : '—') },
  { title: 'Bucket/key', width: '16em', cell: (d) => (d.bucket ? `${d.bucket}/${d.key ?? ''}` : '—') },
  { title: 'Reason', width: '24em', cell: (d) => <span title={d.reason}>{d.reason}</span> },
  { title: 'Remote', width: '9em', cell: (d) => d.remoteAddress ?? '—' },
];

const lineId = (d: DenialRecord) => `${d.time}|${d.requestId}|${d.action}|${d.layer}|${d.bucket ?? ''}|${d.key ?? ''}`;

/** The denials page: filters, histogram, table and live follow. */
export function DenialsPage(props: { session: Session }) {
  const [filters, setFilters] = useState<Filters>({ tenant: '', accessKey: '', bucket: '', keyPrefix: '', layer: '', window: '24h', size: 'auto' });
  const [records, setRecords] = useState<DenialRecord[]>([]);
  const [range, setRange] = useState({ from: Date.now() - WINDOWS['24h'], to: Date.now() });
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(false);
  const [follow, setFollow] = useState(false);
  const [news, setNews] = useState('');
  const seen = useRef(new Set<string>());

  const params = (f: Filters, since: number) =>
    query({ since: new Date(since).toISOString(), tenant: f.tenant, accessKey: f.accessKey, bucket: f.bucket, keyPrefix: f.keyPrefix, layer: f.layer, limit: WINDOW_LINES });

  const load = async (f: Filters) => {
    const to = Date.now();
    const from = to - WINDOWS[f.window];
    setLoading(true);
    setError(undefined);
    try {
      const { denials } = await admin<{ denials: DenialRecord[] }>('GET', `/denials${params(f, from)}`);
      seen.current = new Set(denials.map(lineId));
      setRecords(denials.reverse());
      setRange({ from, to });
    } catch (e) {
      setError(e);
      setRecords([]);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    void load(filters);
  }, []);

  // Live follow: new lines since the newest shown, prepended; the window's end moves with the clock.
  useEffect(() => {
    if (!follow) return;
    const timer = setInterval(async () => {
      const newest = records[0] ? Date.parse(records[0].time) : range.to;
      try {
        const { denials } = await admin<{ denials: DenialRecord[] }>('GET', `/denials${params(filters, newest)}`);
        const fresh = denials.filter((d) => !seen.current.has(lineId(d)));
        for (const d of fresh) seen.current.add(lineId(d));
        const to = Date.now();
        setRange({ from: to - WINDOWS[filters.window], to });
        if (fresh.length > 0) {
          setRecords((old) => [...fresh.reverse(), ...old].slice(0, WINDOW_LINES));
          setNews(`${fresh.length} new denial${fresh.length === 1 ? '' : 's'}`);
        }
      } catch (e) {
        setError(e);
        setFollow(false);
      }
    }, FOLLOW_MS);
    return () => clearInterval(timer);
  }, [follow, records, filters, range.to]);

  const size = binSizeFor(filters.size, range.to - range.from);
  const histogram = useMemo(() => <Histogram records={records} from={range.from} to={range.to} size={size} />, [records, range, size]);
  const set = (name: keyof Filters) => (e: Event) => setFilters({ ...filters, [name]: (e.currentTarget as HTMLInputElement).value });

  return (
    <section aria-labelledby="page-title">
      <form class="filters" onSubmit={(e) => { e.preventDefault(); void load(filters); }}>
        <TenantPicker session={props.session} value={filters.tenant} onChange={(tenant) => setFilters({ ...filters, tenant })} any id="denials-tenant" />
        <div class="field"><label for="f-key">Access key</label><input id="f-key" value={filters.accessKey} onInput={set('accessKey')} spellcheck={false} /></div>
        <div class="field"><label for="f-bucket">Bucket</label><input id="f-bucket" value={filters.bucket} onInput={set('bucket')} spellcheck={false} /></div>
        <div class="field"><label for="f-prefix">Key prefix</label><input id="f-prefix" value={filters.keyPrefix} onInput={set('keyPrefix')} spellcheck={false} /></div>
        <div class="field">
          <label for="f-layer">Layer</label>
          <select id="f-layer" value={filters.layer} onChange={set('layer')}>
            <option value="">any layer</option>
            {(Object.keys(LAYER_COLOURS) as DenialLayer[]).map((l) => <option key={l} value={l}>{l}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="f-window">Window</label>
          <select id="f-window" value={filters.window} onChange={set('window')}>
            {Object.keys(WINDOWS).map((w) => <option key={w} value={w}>last {w}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="f-size">Per</label>
          <select id="f-size" value={filters.size} onChange={set('size')}>
            <option value="auto">auto</option><option value="minute">minute</option><option value="hour">hour</option><option value="day">day</option>
          </select>
        </div>
        <button type="submit" disabled={loading}>{loading ? 'Loading…' : 'Show'}</button>
        <label class="check"><input type="checkbox" checked={follow} onChange={(e) => setFollow((e.currentTarget as HTMLInputElement).checked)} /> Live follow</label>
      </form>
      <ErrorNote error={error} />
      {histogram}
      <p class="count" role="status">
        {records.length} denial{records.length === 1 ? '' : 's'}, newest first{records.length >= WINDOW_LINES ? ` — the window holds more than ${WINDOW_LINES}; narrow the filters` : ''}.
        <span class="visually-hidden" aria-live="polite">{news}</span>
      </p>
      <VirtualTable rows={records} columns={COLUMNS} label="Denial lines" rowKey={(d, i) => `${lineId(d)}#${i}`} />
    </section>
  );
}
