import { describe, expect, it } from 'vitest';

import { queryString } from '../src/api';
import { compareValues, sortValue } from '../src/tableSort';
import { cellText, cellTitle } from '../src/tableCells';

describe('the run table helpers', () => {
  it('sorts numbers as numbers, text naturally, and missing values last either way', () => {
    const values = [3, null, -1.5, 10, 'b', 'a10', 'a9'].map(sortValue);
    const up = [...values].sort((a, b) => compareValues(a, b, false));
    const down = [...values].sort((a, b) => compareValues(a, b, true));
    expect(up).toEqual([-1.5, 3, 10, 'a9', 'a10', 'b', null]);
    expect(down).toEqual(['b', 'a10', 'a9', 10, 3, -1.5, null]);
  });

  it('sorts tags by their text and booleans as numbers', () => {
    expect(sortValue(['Ni', 'redo'])).toBe('Ni, redo');
    expect(sortValue([])).toBeNull();
    expect(sortValue(true)).toBe(1);
    expect(sortValue(NaN)).toBeNull();
  });

  it('shows values short and says what a stale or failed cell means', () => {
    expect(cellText(0.123456789)).toBe('0.123457');
    expect(cellText(['Ni', 'redo'])).toBe('Ni, redo');
    expect(cellText(null)).toBe('');
    const info = { name: 'peak', title: 'Peak', units: 'mm', kind: 'computed' };
    expect(cellTitle(info, { value: 1.5, state: 'stale', error: null })).toMatch(
      /^stale: code changed/
    );
    expect(cellTitle(info, { value: null, state: 'failed', error: 'ValueError: no beam' })).toBe(
      'failed: ValueError: no beam'
    );
    expect(cellTitle(info, { value: 2, state: 'ok', error: null })).toBe('Peak (mm): 2');
  });

  it('repeats a key for a list and leaves null out of a query string', () => {
    expect(queryString({ catalog: '', uid: ['a,b', 'c'], before: null })).toBe(
      '?catalog=&uid=a%2Cb&uid=c'
    );
    expect(queryString({})).toBe('');
  });
});
