/**
 * A small SVG plot of a run's primary stream (no plotting library): a line plot
 * (axes with a few round ticks, one polyline per y series, colours from the theme),
 * or for 2-D scans a map: a grid scan's heatmap, or points coloured by value, with
 * a colour bar.
 */
import * as React from 'react';

import { IMap, IPreview } from './api';
import { formatTick } from './format';
import { cellEdges, colorAt, fraction, valueRange } from './heatmap';

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

/** One axis of a plot: its name (none drawn when empty), its ticks and the scale placing them. */
interface IAxis {
  name: string;
  ticks: { ticks: number[]; step: number };
  scale: (v: number) => number;
}

/**
 * The axes of a plot (the line plot's and the map's): the frame's bottom and left
 * lines, ticks with their labels, the x name under the plot and the y name up its
 * left side. `height` is the SVG's, the x name sitting at its bottom.
 */
function Axes(props: {
  frame: { left: number; right: number; top: number; bottom: number };
  height: number;
  x: IAxis;
  y: IAxis;
}): JSX.Element {
  const { frame, height, x, y } = props;
  const { left, right, top, bottom } = frame;
  return (
    <g className="jp-scandeck-plot-axis">
      <line x1={left} x2={right} y1={bottom} y2={bottom} />
      <line x1={left} x2={left} y1={top} y2={bottom} />
      {x.ticks.ticks.map(t => (
        <g key={`x${t}`}>
          <line x1={x.scale(t)} x2={x.scale(t)} y1={bottom} y2={bottom + 4} />
          <text x={x.scale(t)} y={bottom + 14} textAnchor="middle">
            {formatTick(t, x.ticks.step)}
          </text>
        </g>
      ))}
      {y.ticks.ticks.map(t => (
        <g key={`y${t}`}>
          <line x1={left - 4} x2={left} y1={y.scale(t)} y2={y.scale(t)} />
          <text x={left - 6} y={y.scale(t) + 3} textAnchor="end">
            {formatTick(t, y.ticks.step)}
          </text>
        </g>
      ))}
      <text
        className="jp-scandeck-plot-label"
        x={(left + right) / 2}
        y={height - 4}
        textAnchor="middle"
      >
        {x.name}
      </text>
      {y.name && (
        <text
          className="jp-scandeck-plot-label"
          transform={`translate(11 ${(top + bottom) / 2}) rotate(-90)`}
          textAnchor="middle"
        >
          {y.name}
        </text>
      )}
    </g>
  );
}

/** Peak statistics to mark on a line plot: a vertical line at `cen`, a bar `fwhm` wide. */
export interface IPeakMarks {
  cen: number;
  fwhm: number | null;
}

export function PreviewPlot(props: { preview: IPreview; marks?: IPeakMarks | null }): JSX.Element {
  const { preview } = props;
  // The marks belong to the scan's motor axis, not to event numbers.
  const marks = preview.x.name !== 'seq_num' ? (props.marks ?? null) : null;
  if (preview.map) {
    return <MapPlot map={preview.map} stream={preview.stream} />;
  }
  if (preview.y.length === 0 || preview.x.values.length === 0) {
    return (
      <div className="jp-scandeck-preview jp-scandeck-preview-empty">
        No numeric data to plot in the {preview.stream} stream yet.
      </div>
    );
  }
  let [x0, x1] = extent(preview.x.values);
  if (marks && isFinite(x0)) {
    x0 = Math.min(x0, marks.cen - (marks.fwhm ?? 0) / 2);
    x1 = Math.max(x1, marks.cen + (marks.fwhm ?? 0) / 2);
  }
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
        <Axes
          frame={{ left, right, top, bottom }}
          height={HEIGHT}
          x={{ name: preview.x.name, ticks: xt, scale: sx }}
          y={{ name: yLabel, ticks: yt, scale: sy }}
        />
        {marks && (
          <g className="jp-scandeck-peak" data-cen={marks.cen} data-fwhm={marks.fwhm ?? ''}>
            {marks.fwhm !== null && marks.fwhm > 0 && (
              <rect
                className="jp-scandeck-peak-fwhm"
                x={sx(marks.cen - marks.fwhm / 2)}
                y={top}
                width={Math.max(1, sx(marks.cen + marks.fwhm / 2) - sx(marks.cen - marks.fwhm / 2))}
                height={bottom - top}
              >
                <title>{`fwhm = ${formatTick(marks.fwhm, marks.fwhm / 100)}`}</title>
              </rect>
            )}
            <line
              className="jp-scandeck-peak-cen"
              x1={sx(marks.cen)}
              x2={sx(marks.cen)}
              y1={top}
              y2={bottom}
            >
              <title>{`cen = ${marks.cen}`}</title>
            </line>
          </g>
        )}
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

const MAP_HEIGHT = 200;
const MAP_MARGIN = { left: 46, right: 64, top: 10, bottom: 34 };
/** Slices of the colour bar (stacked rectangles: no gradient ids to keep unique). */
const BAR_SLICES = 48;

function label(name: string, value: number | null): string {
  return `${name} = ${value === null ? 'not measured' : String(value)}`;
}

/**
 * A 2-D scan: a grid scan's cells (unmeasured ones left grey) or points coloured by
 * value, the fast motor across and the slow one up, with a colour bar of the values.
 */
export function MapPlot(props: { map: IMap; stream: string }): JSX.Element {
  const { map, stream } = props;
  const [z0, z1] = valueRange(map.z.values);
  if (!isFinite(z0)) {
    return (
      <div className="jp-scandeck-preview jp-scandeck-preview-empty">
        No {map.z.name} values to map in the {stream} stream yet.
      </div>
    );
  }
  const xs = map.kind === 'grid' ? cellEdges(map.x.values.map(Number)) : map.x.values;
  const ys = map.kind === 'grid' ? cellEdges(map.y.values.map(Number)) : map.y.values;
  let [x0, x1] = valueRange(xs);
  let [y0, y1] = valueRange(ys);
  const xt = niceTicks(x0, x1, 4);
  const yt = niceTicks(y0, y1, 4);
  if (map.kind === 'scatter') {
    // Points sit inside the axes: widen to the outer ticks as the line plot does.
    [x0, x1] = [Math.min(x0, xt.ticks[0] ?? x0), Math.max(x1, xt.ticks[xt.ticks.length - 1] ?? x1)];
    [y0, y1] = [Math.min(y0, yt.ticks[0] ?? y0), Math.max(y1, yt.ticks[yt.ticks.length - 1] ?? y1)];
  }
  const left = MAP_MARGIN.left;
  const right = WIDTH - MAP_MARGIN.right;
  const top = MAP_MARGIN.top;
  const bottom = MAP_HEIGHT - MAP_MARGIN.bottom;
  const sx = (v: number) => left + fraction(v, x0, x1) * (right - left);
  const sy = (v: number) => bottom - fraction(v, y0, y1) * (bottom - top);
  const inX = (t: number) => t >= Math.min(x0, x1) && t <= Math.max(x0, x1);
  const inY = (t: number) => t >= Math.min(y0, y1) && t <= Math.max(y0, y1);
  const colour = (v: number) => colorAt(fraction(v, z0, z1));
  const zt = niceTicks(z0, z1, 4);
  const barX = right + 10;
  const barY = (v: number) => bottom - fraction(v, z0, z1) * (bottom - top);

  let marks: JSX.Element[] = [];
  if (map.kind === 'grid') {
    map.z.values.forEach((row, j) =>
      row.forEach((v, i) => {
        if (v === null) {
          return;
        }
        const [xa, xb] = [sx(xs[i] as number), sx(xs[i + 1] as number)];
        const [ya, yb] = [sy(ys[j] as number), sy(ys[j + 1] as number)];
        // A hair wider than the cell, so neighbours leave no seam of background between them.
        marks.push(
          <rect
            key={`${j}-${i}`}
            className="jp-scandeck-cell"
            x={Math.min(xa, xb)}
            y={Math.min(ya, yb)}
            width={Math.abs(xb - xa) + 0.4}
            height={Math.abs(yb - ya) + 0.4}
            fill={colour(v)}
          >
            <title>
              {`${map.x.name} = ${map.x.values[i]}, ${map.y.name} = ${map.y.values[j]}, ${label(map.z.name, v)}`}
            </title>
          </rect>
        );
      })
    );
  } else {
    marks = map.z.values.flatMap((v, i) => {
      const x = map.x.values[i];
      const y = map.y.values[i];
      if (v === null || x === null || y === null) {
        return [];
      }
      return [
        <circle key={i} className="jp-scandeck-point" cx={sx(x)} cy={sy(y)} r={3} fill={colour(v)}>
          <title>{`${map.x.name} = ${x}, ${map.y.name} = ${y}, ${label(map.z.name, v)}`}</title>
        </circle>
      ];
    });
  }
  const slices = Array.from({ length: BAR_SLICES }, (_, k) => k);
  const sliceHeight = (bottom - top) / BAR_SLICES;

  return (
    <div className="jp-scandeck-preview" data-stream={stream} data-kind={map.kind}>
      <svg
        className="jp-scandeck-plot jp-scandeck-map"
        viewBox={`0 0 ${WIDTH} ${MAP_HEIGHT}`}
        preserveAspectRatio="xMidYMid meet"
        role="img"
        aria-label={`${map.z.name} ${map.kind === 'grid' ? 'heatmap' : 'scatter'} over ${map.x.name} and ${map.y.name}`}
      >
        {map.kind === 'grid' && (
          <rect
            className="jp-scandeck-map-unmeasured"
            x={left}
            y={top}
            width={right - left}
            height={bottom - top}
          />
        )}
        {/* Cells edge to edge: crisp edges, or anti-aliasing leaves faint seams between them. */}
        <g
          className="jp-scandeck-map-marks"
          shapeRendering={map.kind === 'grid' ? 'crispEdges' : undefined}
        >
          {marks}
        </g>
        <Axes
          frame={{ left, right, top, bottom }}
          height={MAP_HEIGHT}
          x={{ name: map.x.name, ticks: { ...xt, ticks: xt.ticks.filter(inX) }, scale: sx }}
          y={{ name: map.y.name, ticks: { ...yt, ticks: yt.ticks.filter(inY) }, scale: sy }}
        />
        <g className="jp-scandeck-colorbar" data-min={z0} data-max={z1}>
          {slices.map(k => (
            <rect
              key={k}
              x={barX}
              y={bottom - (k + 1) * sliceHeight}
              width={10}
              height={sliceHeight + 0.4}
              fill={colorAt((k + 0.5) / BAR_SLICES)}
            />
          ))}
          <rect
            className="jp-scandeck-colorbar-frame"
            x={barX}
            y={top}
            width={10}
            height={bottom - top}
          />
          {zt.ticks
            .filter(t => t >= z0 && t <= z1)
            .map(t => (
              <g key={`z${t}`} className="jp-scandeck-plot-axis">
                <line x1={barX + 10} x2={barX + 13} y1={barY(t)} y2={barY(t)} />
                <text x={barX + 15} y={barY(t) + 3} textAnchor="start">
                  {formatTick(t, zt.step)}
                </text>
              </g>
            ))}
          <text
            className="jp-scandeck-plot-label"
            transform={`translate(${WIDTH - 3} ${(top + bottom) / 2}) rotate(-90)`}
            textAnchor="middle"
          >
            {map.z.name}
          </text>
        </g>
      </svg>
    </div>
  );
}
