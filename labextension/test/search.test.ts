import { Signal } from '@lumino/signaling';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { PushClient } from '../src/push';

// The model's only server call here is `getTable` (the run table's pages): replace it,
// keep the rest of api.ts.
const getRuns = vi.hoisted(() => vi.fn());
vi.mock('../src/api', async importOriginal => ({
  ...(await importOriginal<typeof import('../src/api')>()),
  getTable: getRuns
}));

import { ScandeckAPIError } from '../src/api';
import { ScansModel } from '../src/model';

function quietPush(): PushClient {
  const sender = {};
  return {
    runChanged: new Signal(sender),
    jobChanged: new Signal(sender),
    factsChanged: new Signal(sender),
    reconnected: new Signal(sender),
    stateChanged: new Signal(sender),
    start: vi.fn(),
    stop: vi.fn()
  } as unknown as PushClient;
}

const refused = () =>
  new ScandeckAPIError("'=' is not an operator", 400, 'QuerySyntaxError', 7, 'sample = "Cu"');

describe('ScansModel search', () => {
  beforeEach(() => {
    getRuns.mockReset();
    vi.useFakeTimers();
    vi.stubGlobal('window', globalThis); // the model's debounce timers; tests run in node
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('runs the search typing scheduled at once on Enter, once', async () => {
    const model = new ScansModel(quietPush());
    getRuns.mockRejectedValue(refused());
    model.setQuery('sample = "Cu"');
    model.search();
    await vi.runAllTimersAsync();
    expect(getRuns).toHaveBeenCalledTimes(1);
    expect(model.queryError?.kind).toBe('QuerySyntaxError');

    model.search(); // Enter again on the refused text: the answer would be the same
    await vi.runAllTimersAsync();
    expect(getRuns).toHaveBeenCalledTimes(1);

    getRuns.mockResolvedValue({ runs: [], live: [], total: 0, next: null, hint: null });
    model.setQuery('sample == "Cu"');
    await vi.runAllTimersAsync(); // typing paused: the debounced search
    model.search(); // Enter on an answered, valid query: a refresh
    await vi.runAllTimersAsync();
    expect(getRuns.mock.calls.map(call => call[1])).toEqual([
      'sample = "Cu"',
      'sample == "Cu"',
      'sample == "Cu"'
    ]);
    model.dispose();
  });

  it('keeps the hint of an empty answer and drops it with the next answer', async () => {
    const model = new ScansModel(quietPush());
    const hint = 'no run has the field smaple (did you mean sample?)';
    getRuns.mockResolvedValueOnce({ runs: [], live: [], total: 0, next: null, hint });
    model.setQuery('smaple == "Cu"');
    model.search();
    await vi.runAllTimersAsync();
    expect(model.searchHint).toBe(hint);
    expect(model.queryError).toBeNull();

    getRuns.mockRejectedValueOnce(refused());
    model.setQuery('sample = "Cu"');
    model.search();
    await vi.runAllTimersAsync();
    expect(model.searchHint).toBeNull();
    model.dispose();
  });
});
