/**
 * A small SVG line plot of a run's primary stream (no plotting library):
 * axes with a few round ticks, one polyline per y series, colours from the theme.
 */
import * as React from 'react';

import { IPreview } from './api';
import { formatTick } from './format';

const WIDTH = 320;
const HEIGHT = 180;
const MARGIN = { left: 46, right: 10, top: 10, bottom: 34 };
/** Series colours are CSS classes (theme variables), see style/base.css. */
export const SERIES_COUNT = 6;

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; step: number } {
  if (!isFinite(lo) || !isFinite(hi)) {
    return { ticks: [], step: 1 };
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map(m => m * power).find(s => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return { ticks, step };
}

function extent(values: Array<number | null>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (typeof v === 'number' && isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return [lo, hi];
}

/** The polyline point lists of a series, split where a value is missing. */
function segments(
  xs: Array<number | null>,
  ys: Array<number | null>,
  sx: (v: number) => number,
  sy: (v: number) => number
): string[] {
  const out: string[] = [];
  let current: string[] = [];
  const n = Math.min(xs.length, ys.length);
  for (let i = 0; i < n; i++) {
    const x = xs[i];
    const y = ys[i];
    if (typeof x === 'number' && typeof y === 'number' && isFinite(x) && isFinite(y)) {
      current.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    } else if (current.length) {
      out.push(current.join(' '));
      current = [];
    }
  }
  if (current.length) {
    out.push(current.join(' '));
  }
  return out;
}

export function PreviewPlot(props: { preview: IPreview }): JSX.Element {
  const { preview } = props;
  if (preview.y.length === 0 || preview.x.values.length === 0) {
    return (
      <div className="jp-scandeck-preview jp-scandeck-preview-empty">
        No numeric data to plot in the {preview.stream} stream yet.
      </div>
    );
  }
  const [x0, x1] = extent(preview.x.values);
  let [y0, y1] = [Infinity, -Infinity];
  for (const series of preview.y) {
    const [lo, hi] = extent(series.values);
    y0 = Math.min(y0, lo);
    y1 = Math.max(y1, hi);
  }
  const xt = niceTicks(x0, x1, 4);
  const yt = niceTicks(y0, y1, 4);
  const xlo = Math.min(x0, xt.ticks[0] ?? x0);
  const xhi = Math.max(x1, xt.ticks[xt.ticks.length - 1] ?? x1);
  const ylo = Math.min(y0, yt.ticks[0] ?? y0);
  const yhi = Math.max(y1, yt.ticks[yt.ticks.length - 1] ?? y1);
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const sx = (v: number) => left + ((v - xlo) / (xhi - xlo || 1)) * (right - left);
  const sy = (v: number) => bottom - ((v - ylo) / (yhi - ylo || 1)) * (bottom - top);
  const yLabel = preview.y.length === 1 ? preview.y[0].name : '';

  return (
    <div className="jp-scandeck-preview" data-stream={preview.stream}>
      <svg
        className="jp-scandeck-plot"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="xMidYMid meet"
        role="img"
        aria-label={`${preview.y.map(s => s.name).join(', ')} against ${preview.x.name}`}
      >
        <g className="jp-scandeck-plot-grid">
          {yt.ticks.map(t => (
            <line key={`gy${t}`} x1={left} x2={right} y1={sy(t)} y2={sy(t)} />
          ))}
        </g>
        <g className="jp-scandeck-plot-axis">
          <line x1={left} x2={right} y1={bottom} y2={bottom} />
          <line x1={left} x2={left} y1={top} y2={bottom} />
          {xt.ticks.map(t => (
            <g key={`x${t}`}>
              <line x1={sx(t)} x2={sx(t)} y1={bottom} y2={bottom + 4} />
              <text x={sx(t)} y={bottom + 14} textAnchor="middle">
                {formatTick(t, xt.step)}
              </text>
            </g>
          ))}
          {yt.ticks.map(t => (
            <g key={`y${t}`}>
              <line x1={left - 4} x2={left} y1={sy(t)} y2={sy(t)} />
              <text x={left - 6} y={sy(t) + 3} textAnchor="end">
                {formatTick(t, yt.step)}
              </text>
            </g>
          ))}
          <text
            className="jp-scandeck-plot-label"
            x={(left + right) / 2}
            y={HEIGHT - 4}
            textAnchor="middle"
          >
            {preview.x.name}
          </text>
          {yLabel && (
            <text
              className="jp-scandeck-plot-label"
              transform={`translate(11 ${(top + bottom) / 2}) rotate(-90)`}
              textAnchor="middle"
            >
              {yLabel}
            </text>
          )}
        </g>
        {preview.y.map((series, i) => (
          <g
            key={series.name}
            className={`jp-scandeck-series jp-scandeck-series-${i % SERIES_COUNT}`}
            data-series={series.name}
          >
            {segments(preview.x.values, series.values, sx, sy).map((points, j) => {
              if (points.includes(' ')) {
                return <polyline key={j} points={points} />;
              }
              const [cx, cy] = points.split(',');
              return <circle key={j} cx={cx} cy={cy} r={2} />;
            })}
          </g>
        ))}
      </svg>
      {preview.y.length > 1 && (
        <div className="jp-scandeck-legend">
          {preview.y.map((series, i) => (
            <span key={series.name} className="jp-scandeck-legend-item">
              <span className={`jp-scandeck-swatch jp-scandeck-series-${i % SERIES_COUNT}`} />
              {series.name}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}
