// The standing analyses of the Provenance tab: state texts, published values, and markup
// that shows whatever a run or record holds as text.
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { IStanding } from '../src/api';
import { canStop, StandingModel, stateTitle, valueTexts } from '../src/standingModel';
import { AnalysisView } from '../src/standingView';

const HOSTILE = '<img src=x onerror="alert(1)">';

function analysis(over: Partial<IStanding> = {}): IStanding {
  return {
    id: '5c1e0000aaaa',
    record: '1a2b3c4d5e6f',
    name: 'peak',
    query: 'sample == "Ni"',
    catalog: '',
    status: 'success',
    managed: true,
    counts: { open: 0, pending: 1, running: 1, done: 3, failed: 1 },
    holder: 'host:123',
    here: true,
    state: 'running',
    error: null,
    latest: [
      {
        uid: 'u1',
        scan_id: 12,
        state: 'done',
        record_id: 'r1',
        message: '',
        values: { cen: 0.25, ok: true }
      },
      {
        uid: 'u2',
        scan_id: null,
        state: 'failed',
        record_id: 'r2',
        message: 'cell 2: AssertionError: seven events\nmore',
        values: {}
      }
    ],
    ...over
  };
}

function render(a: IStanding): string {
  const model = new StandingModel(() => undefined);
  return renderToStaticMarkup(React.createElement(AnalysisView, { analysis: a, standing: model }));
}

describe('standing analyses', () => {
  it('shows published values as name = JSON, cut to a length', () => {
    expect(valueTexts({ cen: 0.25, label: 'Ni', peaks: [1, 2], none: null })).toEqual([
      'cen = 0.25',
      'label = "Ni"',
      'peaks = [1,2]',
      'none = null'
    ]);
    expect(valueTexts({ long: 'x'.repeat(100) }, 20)[0]).toHaveLength(20);
    expect(valueTexts(undefined)).toEqual([]);
  });

  it('offers Stop for what this server runs or would resume, never for another process', () => {
    expect(canStop(analysis())).toBe(true);
    expect(canStop(analysis({ state: 'stopped', here: false, managed: false }))).toBe(false);
    expect(canStop(analysis({ state: 'failed', here: false, managed: true }))).toBe(true);
    expect(canStop(analysis({ state: 'elsewhere', here: false, managed: false }))).toBe(false);
    expect(stateTitle(analysis({ state: 'standby', holder: 'beamline:42' }))).toContain(
      'beamline:42'
    );
    expect(stateTitle(analysis({ state: 'stopped', holder: null }))).toBe(
      'Stopped: nothing reruns it.'
    );
  });

  it('renders counts, the latest runs with their state and values, and a Stop button', () => {
    const html = render(analysis());
    expect(html).toContain('3 done');
    expect(html).toContain('1 failed');
    expect(html).toContain('2 pending');
    expect(html).toContain('scan 12');
    expect(html).toContain('scan u2'); // no scan_id: the uid's start
    expect(html).toContain('cen = 0.25');
    expect(html).toContain('data-status="ok"');
    expect(html).toContain('>cell 2: AssertionError: seven events</span>'); // its first line
    expect(html).toContain('data-action="stop-standing"');
    expect(render(analysis({ state: 'elsewhere', here: false }))).not.toContain('stop-standing');
  });

  it('renders what a run or record holds as text, never as markup', () => {
    const html = render(
      analysis({
        name: HOSTILE,
        query: HOSTILE,
        error: HOSTILE,
        state: 'failed',
        latest: [
          {
            uid: HOSTILE,
            scan_id: null,
            state: 'failed',
            record_id: null,
            message: HOSTILE,
            values: { [HOSTILE]: HOSTILE }
          }
        ]
      })
    );
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x');
  });
});
