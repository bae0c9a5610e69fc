/**
 * Pure helpers of the map preview (no DOM): a colour map, cell edges from setpoints,
 * the range of values. Kept apart from the React view so `jlpm test` can check them.
 */

/**
 * Viridis at nine evenly spaced points (matplotlib's values): perceptually uniform,
 * readable in light and dark themes and by colour-blind readers.
 */
export const VIRIDIS = [
  '#440154',
  '#472d7b',
  '#3b528b',
  '#2c728e',
  '#21918c',
  '#28ae80',
  '#5ec962',
  '#addc30',
  '#fde725'
];

function channels(hex: string): number[] {
  return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
}

/** The colour of `t` in [0, 1] (clamped; NaN gives the low end), interpolated between the stops. */
export function colorAt(t: number): string {
  const clamped = isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const pos = clamped * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(pos));
  const f = pos - i;
  const a = channels(VIRIDIS[i]);
  const b = channels(VIRIDIS[i + 1]);
  const mixed = a.map((c, k) => Math.round(c + (b[k] - c) * f));
  return `#${mixed.map(c => c.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The edges of the cells centred on `centers` (setpoints, ascending or descending):
 * midway between neighbours, half a step beyond the ends. One setpoint gets a unit-wide cell.
 */
export function cellEdges(centers: number[]): number[] {
  const n = centers.length;
  if (n === 0) {
    return [];
  }
  if (n === 1) {
    return [centers[0] - 0.5, centers[0] + 0.5];
  }
  const edges = [centers[0] - (centers[1] - centers[0]) / 2];
  for (let i = 0; i < n - 1; i++) {
    edges.push((centers[i] + centers[i + 1]) / 2);
  }
  edges.push(centers[n - 1] + (centers[n - 1] - centers[n - 2]) / 2);
  return edges;
}

/** [lowest, highest] finite number of `values` (nested arrays flattened); [NaN, NaN] when none. */
export function valueRange(values: Array<number | null | Array<number | null>>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  const visit = (v: number | null) => {
    if (typeof v === 'number' && isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  };
  for (const v of values) {
    if (Array.isArray(v)) {
      v.forEach(visit);
    } else {
      visit(v);
    }
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

/** Where `v` sits in [lo, hi], 0..1 (0.5 when the range is a single value). */
export function fraction(v: number, lo: number, hi: number): number {
  return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}
