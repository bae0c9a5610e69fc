import { describe, expect, it } from 'vitest';

import {
  caretWindow,
  errorText,
  formatDuration,
  formatFullTime,
  formatIso,
  formatTick,
  formatTime,
  formatValue,
  plural
} from '../src/format';
import { niceTicks } from '../src/previewPlot';

/** Seconds since the epoch of a local date and time (so the tests run in any time zone). */
function local(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  return new Date(y, mo - 1, d, h, mi, s).getTime() / 1000;
}

describe('formatTime', () => {
  const now = new Date(2026, 11, 6, 15, 0, 0);

  it('shows only the time of day for a run started today', () => {
    expect(formatTime(local(2026, 12, 6, 9, 5, 7), now)).toBe('09:05:07');
  });

  it('shows the date too for an older run', () => {
    expect(formatTime(local(2026, 1, 2, 23, 59, 0), now)).toBe('2026-01-02 23:59:00');
  });
});

describe('formatFullTime', () => {
  it('gives the local date, time, UTC offset and zone of the moment', () => {
    const saved = process.env.TZ;
    try {
      process.env.TZ = 'America/Santiago'; // UTC-3 in (southern) summer, UTC-4 in winter
      expect(formatFullTime(1796538023)).toBe('2026-12-06 03:20:23 UTC-03:00 (America/Santiago)');
      expect(formatFullTime(1782000000)).toBe('2026-06-20 20:00:00 UTC-04:00 (America/Santiago)');
      process.env.TZ = 'Asia/Tokyo';
      expect(formatFullTime(1796538023)).toBe('2026-12-06 15:20:23 UTC+09:00 (Asia/Tokyo)');
    } finally {
      if (saved === undefined) {
        delete process.env.TZ;
      } else {
        process.env.TZ = saved;
      }
    }
  });

  it('is a dash for a time that is not one', () => {
    expect(formatFullTime(NaN)).toBe('–');
    expect(formatFullTime(Infinity)).toBe('–');
  });
});

describe('formatIso', () => {
  it('is a dash when there is no timestamp and the text itself when it is not a date', () => {
    expect(formatIso(null)).toBe('–');
    expect(formatIso('')).toBe('–');
    expect(formatIso('not a date')).toBe('not a date');
  });

  it('formats a valid timestamp like formatTime', () => {
    const iso = new Date(2020, 4, 17, 8, 30, 0).toISOString();
    expect(formatIso(iso)).toBe('2020-05-17 08:30:00');
  });
});

describe('formatDuration', () => {
  it('uses the unit that fits the size', () => {
    expect(formatDuration(0.85)).toBe('850 ms');
    expect(formatDuration(3.14159)).toBe('3.14 s');
    expect(formatDuration(12.5)).toBe('12.5 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
  });

  it('is a dash for a missing or infinite duration', () => {
    expect(formatDuration(null)).toBe('–');
    expect(formatDuration(undefined)).toBe('–');
    expect(formatDuration(Infinity)).toBe('–');
    expect(formatDuration(NaN)).toBe('–');
  });
});

describe('formatValue', () => {
  it('writes scalars as they are, objects as JSON and nothing as null', () => {
    expect(formatValue('Ni')).toBe('Ni');
    expect(formatValue(2.5)).toBe('2.5');
    expect(formatValue(false)).toBe('false');
    expect(formatValue(null)).toBe('null');
    expect(formatValue(undefined)).toBe('null');
    expect(formatValue({ motor: [1, 2] })).toBe('{"motor":[1,2]}');
  });

  it('cuts long values to `max` characters with an ellipsis', () => {
    const text = formatValue('x'.repeat(200), 10);
    expect(text).toHaveLength(10);
    expect(text).toBe('xxxxxxxxx…');
    expect(formatValue('x'.repeat(10), 10)).toBe('x'.repeat(10));
  });

  it('falls back to String() for a value JSON cannot write', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(formatValue(cyclic)).toBe('[object Object]');
  });
});

describe('formatTick and niceTicks', () => {
  it('uses as many decimals as the step needs', () => {
    expect(formatTick(0.5, 0.25)).toBe('0.50');
    expect(formatTick(1.5, 0.5)).toBe('1.5');
    expect(formatTick(20, 5)).toBe('20');
    expect(formatTick(0, 0.1)).toBe('0');
    expect(formatTick(0.0002, 0.0001)).toBe('2.0e-4');
  });

  it('shortens large ticks with k, M and G', () => {
    expect(formatTick(50000, 10000)).toBe('50k');
    expect(formatTick(1500000, 500000)).toBe('1.5M');
    expect(formatTick(-2e9, 1e9)).toBe('-2G');
  });

  it('picks round ticks that cover the range', () => {
    expect(niceTicks(0, 10)).toEqual({ ticks: [0, 2, 4, 6, 8, 10], step: 2 });
    const { ticks, step } = niceTicks(-0.3, 0.95);
    expect(step).toBe(0.25);
    expect(ticks.map(t => formatTick(t, step))).toEqual(['-0.25', '0', '0.25', '0.50', '0.75']);
  });

  it('widens a single value and gives up on infinities', () => {
    const { ticks } = niceTicks(5, 5);
    expect(ticks[0]).toBeLessThanOrEqual(5);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(5);
    expect(ticks.length).toBeGreaterThan(1);
    expect(niceTicks(0, Infinity).ticks).toEqual([]);
  });
});

describe('plural', () => {
  it('adds an s except for one', () => {
    expect(plural(1, 'run')).toBe('1 run');
    expect(plural(0, 'run')).toBe('0 runs');
    expect(plural(3, 'event')).toBe('3 events');
  });
});

describe('caretWindow (the caret under a bad query)', () => {
  /** The character the caret points at. */
  const under = (w: { text: string; column: number }) => w.text[w.column];

  it('keeps a short query whole with the caret at the position', () => {
    expect(caretWindow('sample == ', 7)).toEqual({ text: 'sample == ', column: 7 });
    expect(caretWindow('a and', 99)).toEqual({ text: 'a and', column: 5 });
    expect(caretWindow('a and', -3)).toEqual({ text: 'a and', column: 0 });
  });

  it('shows a window of a long query that still points at the same character', () => {
    const query = 'plan_name == "scan" and sample == "Ni" and operator == @bad and purpose == "x"';
    const position = query.indexOf('@');
    const w = caretWindow(query, position);
    expect(under(w)).toBe('@');
    expect(w.text.startsWith('...')).toBe(true);
    expect(w.text.endsWith('...')).toBe(true);
    expect(w.text.length).toBe(26 + 6);
  });

  it('drops the leading dots at the start and the trailing ones at the end', () => {
    const query = 'x'.repeat(40) + '!';
    const atStart = caretWindow('!' + 'x'.repeat(40), 0);
    expect(atStart.text.startsWith('...')).toBe(false);
    expect(under(atStart)).toBe('!');
    const atEnd = caretWindow(query, query.length - 1);
    expect(atEnd.text.endsWith('...')).toBe(false);
    expect(under(atEnd)).toBe('!');
  });
});

describe('errorText', () => {
  it('says which cell failed and why, from a record error', () => {
    const error = {
      cell_index: 2,
      cell_source: 'assert x',
      ename: 'AssertionError',
      evalue: 'seven events'
    };
    expect(errorText(error)).toBe('cell 2: AssertionError: seven events');
  });
  it('takes a message or a plain string as it is', () => {
    expect(errorText({ message: 'kernel died' })).toBe('kernel died');
    expect(errorText('no such kernel')).toBe('no such kernel');
  });
  it('keeps hostile text as text', () => {
    expect(errorText({ ename: '<img src=x onerror=alert(1)>', evalue: '' })).toBe(
      '<img src=x onerror=alert(1)>'
    );
  });
});
