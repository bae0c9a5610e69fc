/**
 * The selected run: actions, progress, a preview plot of the primary stream,
 * the start document as a compact key/value table and the streams' data keys.
 */
import * as React from 'react';

import { IRunDetail, IRunSummary, IStreamInfo } from './api';
import type { PanelActions } from './actions';
import { DerivedSections } from './derivedView';
import { formatDuration, formatTime, formatValue, plural } from './format';
import { ScansModel } from './model';
import { IPeakMarks, PreviewPlot } from './previewPlot';
import { cellText, cellTitle, CommentAdder, CommentItem, TagChips } from './tableCells';
import { PreviewFile, WatchSection } from './watchedView';

/** Start-document keys shown first, in this order; the rest follow sorted. */
const FIRST_KEYS = ['scan_id', 'plan_name', 'sample', 'operator', 'purpose', 'detectors', 'motors'];

export function StatusBadge(props: { status: string }): JSX.Element {
  return (
    <span className="jp-scandeck-status-badge" data-status={props.status}>
      {props.status}
    </span>
  );
}

/** Progress of a live run: a bar of num_events / num_points, indeterminate without num_points. */
export function Progress(props: { run: IRunSummary }): JSX.Element {
  const { num_events: events, num_points: points } = props.run;
  const known = typeof points === 'number' && points > 0;
  const fraction = known ? Math.min(1, events / points) : null;
  return (
    <div className="jp-scandeck-progress-row">
      <div
        className="jp-scandeck-progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={known ? points : undefined}
        aria-valuenow={known ? events : undefined}
        data-indeterminate={known ? undefined : 'true'}
      >
        <div
          className="jp-scandeck-progress-fill"
          style={fraction === null ? undefined : { width: `${(fraction * 100).toFixed(1)}%` }}
        />
      </div>
      <span className="jp-scandeck-event-count">
        {known
          ? `${events.toLocaleString()} / ${points.toLocaleString()}`
          : plural(events, 'event')}
      </span>
    </div>
  );
}

function KeyValueTable(props: { rows: Array<[string, unknown]>; className?: string }): JSX.Element {
  return (
    <table className={`jp-scandeck-kv ${props.className ?? ''}`}>
      <tbody>
        {props.rows.map(([key, value]) => {
          const text = formatValue(value);
          const full = formatValue(value, 4000);
          return (
            <tr key={key} data-key={key}>
              <th>{key}</th>
              <td title={full !== text ? full : undefined}>{text}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function startRows(start: Record<string, unknown>): Array<[string, unknown]> {
  const rows: Array<[string, unknown]> = [];
  for (const key of FIRST_KEYS) {
    if (key in start) {
      rows.push([key, start[key]]);
    }
  }
  const rest = Object.keys(start)
    .filter(k => !FIRST_KEYS.includes(k) && k !== 'uid' && k !== 'time')
    .sort();
  for (const key of rest) {
    rows.push([key, start[key]]);
  }
  return rows;
}

function StreamTable(props: { stream: IStreamInfo }): JSX.Element {
  const { stream } = props;
  return (
    <div className="jp-scandeck-stream" data-stream={stream.name}>
      <div className="jp-scandeck-stream-title">
        <span className="jp-scandeck-stream-name">{stream.name}</span>
        <span className="jp-scandeck-dim">{plural(stream.num_events, 'event')}</span>
      </div>
      <table className="jp-scandeck-keys">
        <thead>
          <tr>
            <th>key</th>
            <th>shape</th>
            <th>dtype</th>
            <th>units</th>
          </tr>
        </thead>
        <tbody>
          {stream.data_keys.map(dk => (
            <tr key={dk.key} data-key={dk.key} title={dk.source ?? undefined}>
              <td>
                {dk.key}
                {dk.external ? <span className="jp-scandeck-dim"> (file)</span> : null}
              </td>
              <td>{dk.shape.length ? `[${dk.shape.join(', ')}]` : 'scalar'}</td>
              <td>{dk.dtype}</td>
              <td>{dk.units ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RunActions(props: { actions: PanelActions; disabled: boolean }): JSX.Element {
  const { actions, disabled } = props;
  return (
    <div className="jp-scandeck-actions">
      <button
        className="jp-scandeck-button jp-mod-accept"
        data-action="insert"
        disabled={disabled}
        title="Insert a cell that loads this run below the active cell of the notebook"
        onClick={() => void actions.insertCode()}
      >
        Insert code
      </button>
      <button
        className="jp-scandeck-button"
        data-action="bind"
        disabled={disabled}
        title="Insert and run a %%bind cell that re-runs as this run's events arrive"
        onClick={() => void actions.bindCell()}
      >
        Bind live cell
      </button>
      <button
        className="jp-scandeck-button"
        data-action="copy"
        disabled={disabled}
        title="Copy the run's uid"
        onClick={() => void actions.copyUid()}
      >
        Copy UID
      </button>
    </div>
  );
}

/** `cen` and `fwhm` of the run's computed cells, when both are there and fresh enough to mark. */
export function peakMarks(detail: IRunDetail | null): IPeakMarks | null {
  const cen = detail?.cells?.cen;
  if (!cen || typeof cen.value !== 'number' || !['ok', 'running'].includes(cen.state)) {
    return null;
  }
  const fwhm = detail?.cells?.fwhm;
  const width =
    fwhm && typeof fwhm.value === 'number' && ['ok', 'running'].includes(fwhm.state)
      ? fwhm.value
      : null;
  return { cen: cen.value, fwhm: width };
}

/** The selected run's tags (chips, editable) and comments (history, and a field to add one). */
function Annotations(props: { model: ScansModel; uid: string }): JSX.Element | null {
  const { model, uid } = props;
  if (!model.factsSupported) {
    return null;
  }
  const notes = model.annotations?.uid === uid ? model.annotations : null;
  return (
    <div className="jp-scandeck-annotations" data-uid={uid}>
      <div className="jp-scandeck-section-title">Tags</div>
      {model.annotationsError ? (
        <div className="jp-scandeck-error">{model.annotationsError}</div>
      ) : (
        <TagChips
          tags={notes?.tags ?? []}
          editable={notes !== null}
          onAdd={tags => model.addTags(uid, tags)}
          onRemove={tag => model.removeTag(uid, tag)}
        />
      )}
      <div className="jp-scandeck-section-title">Comments</div>
      <ul className="jp-scandeck-comments">
        {(notes?.comments ?? []).map((c, i) => (
          <CommentItem key={i} {...c} />
        ))}
      </ul>
      {notes !== null && (
        <CommentAdder onAdd={text => model.addComment(uid, text)} label="Add comment" />
      )}
    </div>
  );
}

export function DetailView(props: {
  model: ScansModel;
  actions: PanelActions;
}): JSX.Element | null {
  const { model, actions } = props;
  const uid = model.selected;
  if (!uid) {
    return null;
  }
  const detail: IRunDetail | null = model.detail?.run.uid === uid ? model.detail : null;
  // The list has the freshest summary (pushed); the detail may be a second older.
  const run = model.displayRuns.find(r => r.uid === uid) ?? detail?.run ?? null;
  return (
    <div className="jp-scandeck-detail" data-uid={uid} data-status={run?.status ?? ''}>
      <div className="jp-scandeck-detail-header">
        <span className="jp-scandeck-detail-title">
          {run?.scan_id !== null && run?.scan_id !== undefined ? `Scan ${run.scan_id}` : 'Run'}
          {run?.plan_name ? ` · ${run.plan_name}` : ''}
        </span>
        {run && <StatusBadge status={run.status} />}
        <button
          className="jp-scandeck-close"
          title="Close the details"
          aria-label="Close the details"
          onClick={() => model.select(null)}
        >
          ×
        </button>
      </div>
      <div className="jp-scandeck-uid" title={uid}>
        {uid}
      </div>
      <RunActions actions={actions} disabled={false} />
      {run?.status === 'running' && !run.files && <Progress run={run} />}
      {model.detailError && <div className="jp-scandeck-error">{model.detailError}</div>}
      {detail && <DerivedSections model={model} detail={detail} part="origin" />}
      {model.preview ? (
        <>
          <PreviewPlot preview={model.preview} marks={peakMarks(detail)} />
          <PreviewFile preview={model.preview} />
        </>
      ) : model.previewError ? (
        <div className="jp-scandeck-preview jp-scandeck-preview-empty">{model.previewError}</div>
      ) : (
        !model.detailError && (
          <div className="jp-scandeck-preview jp-scandeck-preview-empty">Loading…</div>
        )
      )}
      {run && (
        <KeyValueTable
          className="jp-scandeck-summary"
          rows={[
            ['status', run.status],
            ['started', formatTime(run.time)],
            ['duration', formatDuration(run.duration)],
            ['events', run.num_points ? `${run.num_events} of ${run.num_points}` : run.num_events]
          ]}
        />
      )}
      {detail && <WatchSection detail={detail} files={run?.files} />}
      {detail && <DerivedSections model={model} detail={detail} part="derived" />}
      <Annotations model={model} uid={uid} />
      {detail?.cells && Object.keys(detail.cells).length > 0 && (
        <>
          <div className="jp-scandeck-section-title">Computed</div>
          <table className="jp-scandeck-kv jp-scandeck-cells">
            <tbody>
              {Object.entries(detail.cells).map(([name, cell]) => (
                <tr key={name} data-key={name} data-state={cell.state}>
                  <th>{name}</th>
                  <td
                    className="jp-scandeck-tcell"
                    data-state={cell.state}
                    title={cellTitle(undefined, cell)}
                  >
                    {cell.state === 'failed' ? `⚠ ${cell.error ?? 'failed'}` : cellText(cell.value)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {detail && (
        <>
          <div className="jp-scandeck-section-title">Start document</div>
          <KeyValueTable className="jp-scandeck-start" rows={startRows(detail.start)} />
          {detail.stop && (
            <>
              <div className="jp-scandeck-section-title">Stop document</div>
              <KeyValueTable
                className="jp-scandeck-stop"
                rows={Object.keys(detail.stop)
                  .filter(k => !['uid', 'time', 'run_start'].includes(k))
                  .sort()
                  .map(k => [k, detail.stop![k]])}
              />
            </>
          )}
          <div className="jp-scandeck-section-title">Streams</div>
          {detail.streams.length === 0 && <div className="jp-scandeck-dim">No streams yet.</div>}
          {detail.streams.map(stream => (
            <StreamTable key={stream.name} stream={stream} />
          ))}
        </>
      )}
    </div>
  );
}
