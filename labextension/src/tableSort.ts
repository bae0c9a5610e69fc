/** The run table's client-side sort: by a cell's value or a run-summary field, missing values last. */
import type { IRunSummary, ITableCell } from './api';

/** A value the table sorts by: numbers as numbers, everything else as text; null sorts last. */
export function sortValue(value: unknown): number | string | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (typeof value === 'number') {
    return isFinite(value) ? value : null;
  }
  if (typeof value === 'boolean') {
    return value ? 1 : 0;
  }
  if (Array.isArray(value)) {
    return value.length ? value.map(String).join(', ') : null;
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Compare two sort values, missing ones last whatever the direction. */
export function compareValues(
  a: number | string | null,
  b: number | string | null,
  descending: boolean
): number {
  if (a === null || b === null) {
    return a === b ? 0 : a === null ? 1 : -1;
  }
  let order: number;
  if (typeof a === 'number' && typeof b === 'number') {
    order = a - b;
  } else if (typeof a === 'number') {
    order = -1; // numbers before text
  } else if (typeof b === 'number') {
    order = 1;
  } else {
    order = a.localeCompare(b, undefined, { numeric: true });
  }
  return descending ? -order : order;
}

/** What a run row sorts by for a run-summary column (`scan_id`, `plan_name`...). */
const RUN_KEYS: Record<string, (r: IRunSummary) => unknown> = {
  time: r => r.time,
  scan_id: r => r.scan_id,
  plan_name: r => r.plan_name,
  status: r => r.status,
  sample: r => r.sample,
  operator: r => r.operator,
  duration: r => r.duration,
  events: r => r.num_events
};

/**
 * The rows in table order: running runs stay on top (as the server lists them), the
 * others sorted by `key` (a column's cell, else the run summary's field), ties kept in
 * their loaded order.
 */
export function sortRuns(
  runs: IRunSummary[],
  key: string,
  descending: boolean,
  cells: Map<string, Record<string, ITableCell>>
): IRunSummary[] {
  const live = runs.filter(r => r.status === 'running');
  const rest = runs.filter(r => r.status !== 'running');
  const valueOf = (run: IRunSummary): number | string | null => {
    const cell = cells.get(run.uid)?.[key];
    if (cell !== undefined) {
      return cell.state === 'failed' ? null : sortValue(cell.value);
    }
    const field = RUN_KEYS[key];
    return field ? sortValue(field(run)) : null;
  };
  const keyed = rest.map((run, i) => ({ run, value: valueOf(run), i }));
  keyed.sort((a, b) => compareValues(a.value, b.value, descending) || a.i - b.i);
  return [...live, ...keyed.map(k => k.run)];
}
