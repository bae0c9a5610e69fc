// The map preview rendered to markup (react-dom/server): cells, points and the colour bar.
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import { IMap } from '../src/api';
import { colorAt } from '../src/heatmap';
import { MapPlot } from '../src/previewPlot';

function render(map: IMap): string {
  return renderToStaticMarkup(React.createElement(MapPlot, { map, stream: 'primary' }));
}

function fills(markup: string, cls: string): string[] {
  return [...markup.matchAll(new RegExp(`class="${cls}"[^>]*fill="(#[0-9a-f]{6})"`, 'g'))].map(
    m => m[1]
  );
}

const grid: IMap = {
  kind: 'grid',
  x: { name: 'motor2', values: [-1, 0, 1] },
  y: { name: 'motor1', values: [0, 1] },
  z: {
    name: 'det4',
    values: [
      [0, 5, 10],
      [2, null, null]
    ]
  },
  shape: [2, 3]
};

describe('MapPlot', () => {
  it('draws one cell per measured value, low to high along the colour map', () => {
    const markup = render(grid);
    const cells = fills(markup, 'jp-scandeck-cell');
    expect(cells).toEqual([colorAt(0), colorAt(0.5), colorAt(1), colorAt(0.2)]);
    expect(markup).toContain('class="jp-scandeck-map-unmeasured"');
    expect(markup).toContain('data-kind="grid"');
    expect(markup).toContain('motor2 = 0, motor1 = 0, det4 = 5');
  });

  it('has a colour bar over the range of values, labelled with the field', () => {
    const markup = render(grid);
    expect(markup).toMatch(/class="jp-scandeck-colorbar" data-min="0" data-max="10"/);
    const bar = markup.slice(markup.indexOf('jp-scandeck-colorbar'));
    expect(bar).toContain(`fill="${colorAt(0.5 / 48)}"`);
    expect(bar).toContain('>det4</text>');
  });

  it('scatters points of other 2-D scans, skipping missing values', () => {
    const markup = render({
      kind: 'scatter',
      x: { name: 'motor1', values: [0, 1, 2] },
      y: { name: 'motor2', values: [3, 4, null] },
      z: { name: 'det4', values: [1, 3, 2] }
    });
    expect(fills(markup, 'jp-scandeck-point')).toEqual([colorAt(0), colorAt(1)]);
    expect(markup).toContain('data-kind="scatter"');
    expect(markup).not.toContain('jp-scandeck-cell');
  });

  it('says so when nothing was measured yet', () => {
    const markup = render({ ...grid, z: { name: 'det4', values: [[null, null, null]] } });
    expect(markup).toContain('No det4 values to map in the primary stream yet.');
  });
});
