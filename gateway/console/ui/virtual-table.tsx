/**
 * A table that renders only the rows in view (fixed row height), so a 10,000-line denial window scrolls as fast as
 * a 40-line one. The scrolling region is focusable (arrow keys and Page Up/Down scroll it), and aria-rowcount and
 * aria-rowindex tell assistive technology where the visible rows sit in the whole table. Twenty lines of arithmetic
 * instead of a virtualisation library: the rows have one fixed height, so nothing needs measuring.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

/** One column: its heading, width and how a row shows in it. */
export interface Column<T> {
  title: string;
  width: string;
  cell: (row: T) => ComponentChildren;
}

const ROW_HEIGHT = 30;
const OVERSCAN = 10;

/** A scrolling table of `rows` rendering only those in view. */
export function VirtualTable<T>(props: { rows: readonly T[]; columns: Column<T>[]; label: string; height?: number; rowKey: (row: T, index: number) => string }) {
  const height = props.height ?? 480;
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(props.rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
  const visible = props.rows.slice(first, last);
  return (
    <div class="virtual" style={{ maxHeight: `${height}px` }} tabIndex={0} role="region" aria-label={props.label} onScroll={(e) => setTop((e.currentTarget as HTMLElement).scrollTop)}>
      <table aria-rowcount={props.rows.length + 1} style={{ tableLayout: 'fixed' }}>
        <colgroup>{props.columns.map((c) => <col key={c.title} style={{ width: c.width }} />)}</colgroup>
        <thead>
          <tr aria-rowindex={1}>{props.columns.map((c) => <th key={c.title} scope="col">{c.title}</th>)}</tr>
        </thead>
        <tbody>
          {first > 0 && <tr aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />}
          {visible.map((row, i) => (
            <tr key={props.rowKey(row, first + i)} aria-rowindex={first + i + 2} style={{ height: `${ROW_HEIGHT}px` }}>
              {props.columns.map((c) => <td key={c.title}>{c.cell(row)}</td>)}
            </tr>
          ))}
          {last < props.rows.length && <tr aria-hidden="true" style={{ height: `${(props.rows.length - last) * ROW_HEIGHT}px` }} />}
        </tbody>
      </table>
    </div>
  );
}
