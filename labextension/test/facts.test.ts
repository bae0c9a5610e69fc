import { Signal } from '@lumino/signaling';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { IRunSummary, ITablePage } from '../src/api';
import type { PushClient } from '../src/push';

// The model's server calls here: the table's pages and the cells of pushed runs.
const { getColumns, getTable, getTableCells } = vi.hoisted(() => ({
  getColumns: vi.fn(),
  getTable: vi.fn(),
  getTableCells: vi.fn()
}));
vi.mock('../src/api', async importOriginal => ({
  ...(await importOriginal<typeof import('../src/api')>()),
  getColumns,
  getTable,
  getTableCells
}));

import { ScansModel } from '../src/model';

function run(uid: string, time: number, status = 'success'): IRunSummary {
  return {
    uid,
    scan_id: null,
    time,
    plan_name: 'scan',
    status,
    num_events: 0,
    num_points: null,
    duration: null
  };
}

const ok = (value: unknown) => ({ value, state: 'ok', error: null });

function tablePage(runs: IRunSummary[], peaks: Record<string, unknown>): ITablePage {
  return {
    runs,
    live: [],
    total: runs.length,
    next: null,
    columns: [{ name: 'peak', title: 'Peak', units: 'mm', kind: 'computed' }],
    cells: Object.fromEntries(Object.entries(peaks).map(([uid, v]) => [uid, { peak: ok(v) }]))
  };
}

function fakePush() {
  const sender = {};
  const factsChanged = new Signal<object, string[]>(sender);
  const runChanged = new Signal<object, IRunSummary>(sender);
  const push = {
    runChanged,
    factsChanged,
    jobChanged: new Signal(sender),
    reconnected: new Signal(sender),
    stateChanged: new Signal(sender),
    start: vi.fn(),
    stop: vi.fn()
  };
  return { push: push as unknown as PushClient, factsChanged, runChanged };
}

describe('ScansModel run table', () => {
  beforeEach(() => {
    getTable.mockReset();
    getTableCells.mockReset();
    vi.useFakeTimers();
    vi.stubGlobal('window', globalThis);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('fetches the cells of pushed runs it shows, once for a burst of pushes', async () => {
    const { push, factsChanged } = fakePush();
    const model = new ScansModel(push);
    model.catalog = 'demo';
    model.defaultColumns = ['peak'];
    getTable.mockResolvedValueOnce(tablePage([run('b', 20), run('a', 10)], { a: 1, b: 2 }));
    await model.reload();
    expect(getTable).toHaveBeenCalledWith('demo', '', ['peak'], 50);
    expect(model.cells.get('a')?.peak.value).toBe(1);

    getTableCells.mockResolvedValueOnce(tablePage([run('a', 10)], { a: 5 }));
    factsChanged.emit(['a', 'not-shown']);
    factsChanged.emit(['a']);
    await vi.runAllTimersAsync();
    expect(getTableCells).toHaveBeenCalledTimes(1);
    expect(getTableCells).toHaveBeenCalledWith('demo', ['peak'], ['a']);
    expect(model.cells.get('a')?.peak.value).toBe(5);
  });

  it('fetches the row of a run that ended, not of every progress push', async () => {
    const { push, runChanged } = fakePush();
    const model = new ScansModel(push);
    model.defaultColumns = ['peak'];
    getTable.mockResolvedValueOnce(tablePage([run('a', 10, 'running')], { a: null }));
    await model.reload();
    runChanged.emit({ ...run('a', 10, 'running'), num_events: 3 });
    await vi.runAllTimersAsync();
    expect(getTableCells).not.toHaveBeenCalled();
    getTableCells.mockResolvedValueOnce(tablePage([run('a', 10)], { a: 7 }));
    runChanged.emit(run('a', 10, 'success'));
    await vi.runAllTimersAsync();
    expect(getTableCells).toHaveBeenCalledWith('', ['peak'], ['a']);
    expect(model.cells.get('a')?.peak.value).toBe(7);
  });

  it('sorts the loaded rows by a column, missing values last, and back', async () => {
    const model = new ScansModel(fakePush().push);
    model.defaultColumns = ['peak'];
    getTable.mockResolvedValueOnce(
      tablePage([run('c', 30), run('b', 20), run('a', 10)], { a: 2, b: null, c: 0.5 })
    );
    await model.reload();
    model.sortBy('peak');
    expect(model.tableRuns.map(r => r.uid)).toEqual(['c', 'a', 'b']);
    model.sortBy('peak');
    expect(model.tableRuns.map(r => r.uid)).toEqual(['a', 'c', 'b']);
    model.sortBy(null);
    expect(model.tableRuns.map(r => r.uid)).toEqual(['c', 'b', 'a']);
  });

  it('leaves out picked columns the catalog no longer offers, and says so', async () => {
    const model = new ScansModel(fakePush().push);
    model.pickedColumns = { '': ['peak', 'gone', 'tags', 'data.theta.max'], other: ['gone'] };
    getColumns.mockResolvedValueOnce({
      columns: [
        { name: 'peak', title: 'Peak', units: null, kind: 'computed' },
        { name: 'tags', title: 'tags', units: null, kind: 'annotation' }
      ],
      facts: true,
      default: ['peak', 'tags']
    });
    await model.loadColumns();
    expect(model.columns).toEqual(['peak', 'tags', 'data.theta.max']);
    expect(model.pickedColumns.other).toEqual(['gone']); // another catalog's choice is its own
    expect(model.notice?.text).toContain('gone');
  });
});
