import { describe, expect, it } from 'vitest';

import { cellEdges, colorAt, fraction, valueRange, VIRIDIS } from '../src/heatmap';

describe('colorAt', () => {
  it('gives the stops at their own positions and clamps outside [0, 1]', () => {
    VIRIDIS.forEach((stop, i) => expect(colorAt(i / (VIRIDIS.length - 1))).toBe(stop));
    expect(colorAt(-3)).toBe(VIRIDIS[0]);
    expect(colorAt(7)).toBe(VIRIDIS[VIRIDIS.length - 1]);
    expect(colorAt(NaN)).toBe(VIRIDIS[0]);
  });

  it('interpolates each channel between neighbouring stops', () => {
    const mid = colorAt(0.5 / (VIRIDIS.length - 1));
    const channel = (hex: string, k: number) => parseInt(hex.slice(1 + 2 * k, 3 + 2 * k), 16);
    for (let k = 0; k < 3; k++) {
      const [a, b] = [channel(VIRIDIS[0], k), channel(VIRIDIS[1], k)];
      expect(channel(mid, k)).toBe(Math.round(a + (b - a) / 2));
    }
  });
});

describe('cellEdges', () => {
  it('puts edges midway between setpoints and half a step beyond the ends', () => {
    const centers = [-1, -0.5, 0, 0.5, 1];
    const edges = cellEdges(centers);
    expect(edges).toHaveLength(centers.length + 1);
    centers.forEach((c, i) => expect((edges[i] + edges[i + 1]) / 2).toBeCloseTo(c));
    expect(edges[1] - edges[0]).toBeCloseTo(centers[1] - centers[0]);
  });

  it('follows descending setpoints and gives one setpoint a cell', () => {
    const edges = cellEdges([2, 1, 0]);
    expect(edges[0]).toBeGreaterThan(edges[3]);
    expect(cellEdges([4])).toEqual([3.5, 4.5]);
    expect(cellEdges([])).toEqual([]);
  });
});

describe('valueRange and fraction', () => {
  it('skips nulls and non-finite numbers, in flat and nested arrays', () => {
    expect(valueRange([null, 3, -2, Infinity])).toEqual([-2, 3]);
    expect(
      valueRange([
        [null, 4],
        [1, null]
      ])
    ).toEqual([1, 4]);
    expect(valueRange([[null], []]).every(Number.isNaN)).toBe(true);
  });

  it('places a value in its range, the middle for a range of one value', () => {
    expect(fraction(5, 0, 10)).toBe(0.5);
    expect(fraction(0, 0, 10)).toBe(0);
    expect(fraction(3, 3, 3)).toBe(0.5);
  });
});
