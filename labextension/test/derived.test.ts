// Derived runs in the run table: nesting under a loaded parent, folding, loops, the
// "from" mark, the pipeline line, and the detail's sections rendered as text.
import { Signal } from '@lumino/signaling';
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { IRunDetail, IRunSummary, ITablePage } from '../src/api';
import type { PushClient } from '../src/push';

const { getColumns, getTable, getRun, getPreview } = vi.hoisted(() => ({
  getColumns: vi.fn(),
  getTable: vi.fn(),
  getRun: vi.fn(),
  getPreview: vi.fn()
}));
vi.mock('../src/api', async importOriginal => ({
  ...(await importOriginal<typeof import('../src/api')>()),
  getColumns,
  getTable,
  getRun,
  getPreview
}));

import { DerivedRows, groupRuns, parentLabel, pipelineLine } from '../src/derivedRuns';
import { DerivedSections } from '../src/derivedView';
import { ScansModel } from '../src/model';

function run(uid: string, time: number, parents?: unknown, status = 'success'): IRunSummary {
  const out: IRunSummary = {
    uid,
    scan_id: null,
    time,
    plan_name: 'scan',
    status,
    num_events: 0,
    num_points: null,
    duration: null
  };
  if (parents !== undefined) {
    out.parent_uids = parents as string[];
  }
  return out;
}

const layout = (rows: ReturnType<typeof groupRuns>) =>
  rows.map(
    r => `${'  '.repeat(r.depth)}${r.run.uid}${r.derivedCount ? ` (${r.derivedCount})` : ''}`
  );

describe('grouping derived runs under their parents', () => {
  it('nests each derived run right after its loaded parent, in the list order', () => {
    const runs = [
      run('d2', 50, ['p']),
      run('q', 40),
      run('d1', 30, ['p']),
      run('p', 20),
      run('dd', 60, ['d1'])
    ];
    expect(layout(groupRuns(runs, new Set()))).toEqual([
      'q',
      'p (2)',
      '  d2',
      '  d1 (1)',
      '    dd'
    ]);
    const rows = groupRuns(runs, new Set());
    expect(rows.find(r => r.run.uid === 'dd')?.nestedUnder).toBe('d1');
    expect(rows.every(r => r.absentParents.length === 0)).toBe(true);
  });

  it('folds a parent: its derived runs, and theirs, are left out', () => {
    const runs = [run('p', 20), run('d', 30, ['p']), run('dd', 40, ['d'])];
    const rows = groupRuns(runs, new Set(['p']));
    expect(layout(rows)).toEqual(['p (1)']);
    expect(rows[0].folded).toBe(true);
  });

  it('lists a derived run whose parents are not loaded as a row of its own, naming them', () => {
    const rows = groupRuns([run('d', 30, ['gone', 'p2']), run('x', 10)], new Set());
    expect(layout(rows)).toEqual(['d', 'x']);
    expect(rows[0].absentParents).toEqual(['gone', 'p2']);
    const refs = new Map([['p2', { uid: 'p2', scan_id: 12 }]]);
    expect(parentLabel('p2', refs)).toBe('scan 12');
    expect(parentLabel('0123456789abcdef', refs)).toBe('01234567');
  });

  it('nests under the first loaded parent of several, and survives loops and junk', () => {
    const many = groupRuns([run('a', 1), run('b', 2), run('m', 3, ['gone', 'b', 'a'])], new Set());
    expect(layout(many)).toEqual(['a', 'b (1)', '  m']);
    expect(many[2].absentParents).toEqual(['gone']);
    // a -> b -> a, and a run naming itself: every run is still listed once.
    const loop = groupRuns(
      [run('a', 1, ['b']), run('b', 2, ['a']), run('s', 3, ['s']), run('j', 4, 'p')],
      new Set()
    );
    expect(loop.map(r => r.run.uid).sort()).toEqual(['a', 'b', 'j', 's']);
    expect(layout(loop)).toEqual(['b (1)', '  a', 's', 'j']);
  });

  it('keeps a sorted order among siblings, and the same rows for the same runs', () => {
    const derived = new DerivedRows();
    const runs = [run('p', 1), run('d1', 2, ['p']), run('d2', 3, ['p'])];
    const rows = derived.rows(runs);
    expect(derived.rows(runs)).toBe(rows);
    const reversed = [runs[0], runs[2], runs[1]];
    expect(layout(derived.rows(reversed))).toEqual(['p (2)', '  d2', '  d1']);
    derived.toggle('p');
    expect(layout(derived.rows(reversed))).toEqual(['p (2)']);
  });

  it('says a pipeline in one line', () => {
    expect(
      pipelineLine([
        { type: 'live', stream: 'primary', run: 'abc' },
        { type: 'map', function: 'normalise' },
        { type: 'accumulate', function: 'total' },
        { type: 'to_run', stream: 'primary' }
      ])
    ).toBe('live(primary) → map(normalise) → accumulate(total) → to_run(primary)');
  });
});

function fakePush() {
  const sender = {};
  const runChanged = new Signal<object, IRunSummary>(sender);
  const push = {
    runChanged,
    factsChanged: new Signal(sender),
    jobChanged: new Signal(sender),
    reconnected: new Signal(sender),
    stateChanged: new Signal(sender),
    start: vi.fn(),
    stop: vi.fn()
  };
  return { push: push as unknown as PushClient, runChanged };
}

function page(runs: IRunSummary[], live: IRunSummary[] = [], parents = {}): ITablePage {
  return { runs, live, total: runs.length, next: null, columns: [], cells: {}, parents };
}

function detailOf(r: IRunSummary, extra: Partial<IRunDetail> = {}): IRunDetail {
  return { run: r, start: {}, stop: null, streams: [], code: null, ...extra };
}

describe('the Scans model with derived runs', () => {
  beforeEach(() => {
    getTable.mockReset();
    getRun.mockReset();
    getPreview.mockReset();
    getColumns.mockReset();
    vi.useFakeTimers();
    vi.stubGlobal('window', globalThis);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('nests a pushed derived run under its running parent as it grows, then ends', async () => {
    const { push, runChanged } = fakePush();
    const model = new ScansModel(push);
    getTable.mockResolvedValueOnce(page([run('old', 5)], [run('p', 10, undefined, 'running')]));
    await model.reload();
    runChanged.emit({ ...run('d', 11, ['p'], 'running'), num_events: 3 });
    expect(layout(model.tableRows)).toEqual(['p (1)', '  d', 'old']);
    runChanged.emit({ ...run('d', 11, ['p'], 'running'), num_events: 8 });
    expect(model.tableRows[1].run.num_events).toBe(8);
    runChanged.emit(run('p', 10));
    runChanged.emit({ ...run('d', 11, ['p']), num_events: 12 });
    const rows = model.tableRows;
    expect(layout(rows)).toEqual(['p (1)', '  d', 'old']);
    expect(rows.map(r => r.run.status)).toEqual(['success', 'success', 'success']);
    model.toggleDerived('p');
    expect(layout(model.tableRows)).toEqual(['p (1)', 'old']);
  });

  it('keeps the parents a page names for derived runs listed alone', async () => {
    const model = new ScansModel(fakePush().push);
    getTable.mockResolvedValueOnce(
      page([run('d', 30, ['p'])], [], { p: { uid: 'p', scan_id: 7, plan_name: 'scan' } })
    );
    await model.reload();
    expect(model.tableRows[0].absentParents).toEqual(['p']);
    expect(parentLabel('p', model.derived.parentRefs)).toBe('scan 7');
    getTable.mockResolvedValueOnce(page([run('x', 1)]));
    await model.reload();
    expect(model.derived.parentRefs.size).toBe(0);
  });

  it('asks for the first page again when a new derived run names a parent it cannot name', async () => {
    const { push, runChanged } = fakePush();
    const model = new ScansModel(push);
    model.ready = true;
    getTable.mockResolvedValueOnce(page([run('p', 10)]));
    await model.reload();
    runChanged.emit(run('d', 11, ['p'], 'running')); // its parent is a row: nothing to ask
    await vi.runAllTimersAsync();
    expect(getTable).toHaveBeenCalledTimes(1);
    getTable.mockResolvedValueOnce(
      page([run('d', 11, ['p'], 'running'), run('e', 12, ['far']), run('p', 10)], [], {
        far: { uid: 'far', scan_id: 3 }
      })
    );
    runChanged.emit(run('e', 12, ['far']));
    await vi.runAllTimersAsync();
    expect(getTable).toHaveBeenCalledTimes(2);
    expect(parentLabel('far', model.derived.parentRefs)).toBe('scan 3');
    expect(model.tableRows.find(r => r.run.uid === 'e')?.absentParents).toEqual(['far']);
  });

  it('fetches the selected parent again when a run derived from it starts', async () => {
    const { push, runChanged } = fakePush();
    const model = new ScansModel(push);
    getTable.mockResolvedValueOnce(page([run('p', 10)]));
    await model.reload();
    getRun.mockResolvedValue(detailOf(run('p', 10)));
    getPreview.mockRejectedValue(new Error('no preview here'));
    model.select('p');
    await vi.runAllTimersAsync();
    expect(getRun).toHaveBeenCalledTimes(1);
    getRun.mockResolvedValue(detailOf(run('p', 10), { derived: [run('d', 11, ['p'], 'running')] }));
    runChanged.emit(run('d', 11, ['p'], 'running'));
    await vi.runAllTimersAsync();
    expect(getRun).toHaveBeenCalledTimes(2);
    expect(model.detail?.derived?.map(r => r.uid)).toEqual(['d']);
  });
});

describe('the detail of derived runs', () => {
  it('shows parents, pipeline and derived runs as text, never as markup', () => {
    const model = { displayRuns: [], select: vi.fn() } as unknown as ScansModel;
    const render = (part: 'origin' | 'derived') =>
      renderToStaticMarkup(React.createElement(DerivedSections, { model, detail, part }));
    const detail = detailOf(run('d', 2, ['p']), {
      parents: [
        { uid: 'p', scan_id: 4, plan_name: '<img src=x onerror=alert(1)>', status: 'success' },
        { uid: 'gone-0123', missing: true }
      ],
      pipeline: {
        summary: '<script>alert(1)</script>',
        format: 'scandeck.pipeline/1',
        more_steps: false,
        steps: [
          { type: 'map', function: '<b>normalise</b>', qualname: 'm.<b>normalise</b>' },
          { type: 'to_run', stream: 'primary' }
        ]
      },
      derived: [run('dd', 3, ['d'], 'running')]
    });
    const markup = render('origin') + render('derived');
    expect(markup).not.toMatch(/<img|<b>|<script/);
    expect(markup).toContain('Scan 4 · &lt;img src=x onerror=alert(1)&gt;');
    expect(markup).toContain('gone-012 (not in this catalog)');
    expect(markup).toContain('map(&lt;b&gt;normalise&lt;/b&gt;)');
    expect(markup).toContain('data-line="map(&lt;b&gt;normalise&lt;/b&gt;) → to_run(primary)"');
    expect(markup).toContain('data-uid="dd" data-status="running"');
  });

  it('shows nothing for a run with no lineage', () => {
    const model = { displayRuns: [], select: vi.fn() } as unknown as ScansModel;
    const detail = detailOf(run('x', 1), { parents: [], pipeline: null, derived: [] });
    for (const part of ['origin', 'derived'] as const) {
      expect(
        renderToStaticMarkup(React.createElement(DerivedSections, { model, detail, part }))
      ).toBe('');
    }
  });
});
