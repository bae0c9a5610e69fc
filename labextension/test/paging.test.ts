import { Signal } from '@lumino/signaling';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import type { IRunsPage, IRunSummary } from '../src/api';
import type { PushClient } from '../src/push';

// The model's only server call here is `getTable` (the run table's pages): replace it,
// keep the rest of api.ts.
const getRuns = vi.hoisted(() => vi.fn());
vi.mock('../src/api', async importOriginal => ({
  ...(await importOriginal<typeof import('../src/api')>()),
  getTable: getRuns
}));

import { ScandeckAPIError } from '../src/api';
import { PAGE_SIZE, ScansModel } from '../src/model';

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

function page(runs: IRunSummary[], next: string | null, live: IRunSummary[] = []): IRunsPage {
  return { runs, live, total: 120, next };
}

/** A push channel that never connects; `run` pushes a run message. */
function fakePush() {
  const sender = {};
  const runChanged = new Signal<object, IRunSummary>(sender);
  const push = {
    runChanged,
    jobChanged: new Signal(sender),
    factsChanged: new Signal(sender),
    reconnected: new Signal(sender),
    stateChanged: new Signal(sender),
    start: vi.fn(),
    stop: vi.fn()
  };
  return { push: push as unknown as PushClient, run: (r: IRunSummary) => runChanged.emit(r) };
}

describe('ScansModel paging', () => {
  beforeEach(() => getRuns.mockReset());

  it('loads the first page with live runs on top, newest first, without duplicates', async () => {
    const model = new ScansModel(fakePush().push);
    model.catalog = 'demo';
    getRuns.mockResolvedValueOnce(
      page([run('c', 30, 'running'), run('b', 20), run('a', 10)], 'cursor-1', [
        run('d', 25, 'running'),
        run('c', 30, 'running')
      ])
    );
    await model.reload();
    expect(getRuns).toHaveBeenCalledWith('demo', '', [], PAGE_SIZE);
    expect(model.displayRuns.map(r => r.uid)).toEqual(['c', 'd', 'b', 'a']);
    expect(model.next).toBe('cursor-1');
    expect(model.loading).toBe(false);
  });

  it('asks for the next page with the cursor and appends only runs not yet shown', async () => {
    const model = new ScansModel(fakePush().push);
    getRuns.mockResolvedValueOnce(page([run('c', 30), run('b', 20)], 'cursor-1'));
    await model.reload();
    getRuns.mockResolvedValueOnce(page([run('b', 20), run('a', 10)], null));
    await model.loadMore();
    expect(getRuns).toHaveBeenLastCalledWith('', '', [], PAGE_SIZE, 'cursor-1');
    expect(model.runs.map(r => r.uid)).toEqual(['c', 'b', 'a']);
    expect(model.next).toBeNull();
    await model.loadMore(); // at the end: no request
    expect(getRuns).toHaveBeenCalledTimes(2);
  });

  it('keeps a bad query as queryError and loads no more pages for it', async () => {
    const model = new ScansModel(fakePush().push);
    getRuns.mockResolvedValueOnce(page([run('a', 10)], 'cursor-1'));
    await model.reload();
    getRuns.mockRejectedValueOnce(
      new ScandeckAPIError('bad query', 400, 'QuerySyntaxError', 3, 'a =')
    );
    await model.reload();
    expect(model.queryError?.position).toBe(3);
    expect(model.listError).toBeNull();
    await model.loadMore();
    expect(getRuns).toHaveBeenCalledTimes(2);
  });

  it('drops the answer of a reload that a newer reload overtook', async () => {
    const model = new ScansModel(fakePush().push);
    let answerOld: (p: IRunsPage) => void = () => undefined;
    getRuns.mockReturnValueOnce(new Promise<IRunsPage>(resolve => (answerOld = resolve)));
    const old = model.reload();
    getRuns.mockResolvedValueOnce(page([run('new', 20)], null));
    await model.reload();
    answerOld(page([run('old', 10)], 'cursor-old'));
    await old;
    expect(model.runs.map(r => r.uid)).toEqual(['new']);
    expect(model.next).toBeNull();
  });

  it('puts a pushed finished run at its place by time, but not beyond the loaded pages', async () => {
    const { push, run: pushRun } = fakePush();
    const model = new ScansModel(push);
    getRuns.mockResolvedValueOnce(page([run('c', 30), run('a', 10)], 'cursor-1'));
    await model.reload();
    pushRun(run('b', 20));
    expect(model.runs.map(r => r.uid)).toEqual(['c', 'b', 'a']);
    expect(model.total).toBe(121);
    pushRun(run('old', 5)); // older than the last loaded run: it comes with a later page
    expect(model.runs.map(r => r.uid)).toEqual(['c', 'b', 'a']);
    pushRun(run('live', 40, 'running'));
    expect(model.displayRuns[0].uid).toBe('live');
  });
});
