/**
 * "Standing analyses" of the Provenance tab: every analysis of the server's store
 * (record, query, state, counts, the latest reruns with their published values), a
 * form that starts one for the picked record, and Stop buttons. The list is polled
 * while the tab shows; everything from a run or record is rendered as text.
 */
import * as React from 'react';
import { useEffect, useRef, useState } from 'react';

import { IStanding, IStandingRun } from './api';
import { StatusBadge } from './detailView';
import { caretWindow, formatValue } from './format';
import { ScansModel } from './model';
import { canStop, EXIT_STATUSES, StandingModel, stateTitle, valueTexts } from './standingModel';

/** How often the list is fetched while the tab shows. */
export const POLL_MS = 2000;

const RUN_STATE: Record<string, string> = { done: 'ok', failed: 'failed', running: 'running' };

export function RunLine(props: { run: IStandingRun }): JSX.Element {
  const { run } = props;
  const label =
    run.scan_id !== null && run.scan_id !== undefined ? String(run.scan_id) : run.uid.slice(0, 8);
  const values = valueTexts(run.values);
  return (
    <li className="jp-scandeck-standing-run" data-uid={run.uid} data-state={run.state}>
      <span className="jp-scandeck-standing-scan" title={run.uid}>
        scan {label}
      </span>
      <StatusBadge status={RUN_STATE[run.state] ?? run.state} />
      {values.map(text => (
        <span key={text} className="jp-scandeck-chip jp-scandeck-standing-value" title={text}>
          {text}
        </span>
      ))}
      {run.state === 'failed' && run.message && (
        <span className="jp-scandeck-standing-message jp-scandeck-dim" title={run.message}>
          {formatValue(run.message.split('\n')[0], 120)}
        </span>
      )}
    </li>
  );
}

export function AnalysisView(props: { analysis: IStanding; standing: StandingModel }): JSX.Element {
  const { analysis: a, standing } = props;
  const pending = a.counts.pending + a.counts.running;
  const stopping = standing.stopping.has(a.id);
  return (
    <li
      className="jp-scandeck-standing-item"
      data-standing-id={a.id}
      data-state={a.state}
      data-record-id={a.record}
    >
      <div className="jp-scandeck-record-line">
        <span className="jp-scandeck-record-name">{a.name}</span>
        <span className="jp-scandeck-dim" title={a.record}>
          {a.record.slice(0, 8)}
        </span>
        <span
          className="jp-scandeck-status-badge jp-scandeck-standing-state"
          data-status={
            a.state === 'running' ? 'running' : a.state === 'failed' ? 'failed' : a.state
          }
          title={stateTitle(a)}
        >
          {a.state}
        </span>
      </div>
      <div className="jp-scandeck-standing-query" title={a.query || 'every run'}>
        {a.query || 'every run'}
        <span className="jp-scandeck-dim"> · ending {a.status}</span>
      </div>
      <div className="jp-scandeck-standing-counts jp-scandeck-dim">
        <span data-count="done">{a.counts.done} done</span> ·{' '}
        <span data-count="failed">{a.counts.failed} failed</span> ·{' '}
        <span data-count="pending">{pending} pending</span>
        {a.holder && a.state !== 'running'
          ? ` · ${a.state === 'elsewhere' ? 'run by' : 'held by'} ${a.holder}`
          : ''}
      </div>
      {a.error && <div className="jp-scandeck-error">{formatValue(a.error, 300)}</div>}
      {a.latest.length > 0 && (
        <ul className="jp-scandeck-standing-runs">
          {a.latest.map(run => (
            <RunLine key={run.uid} run={run} />
          ))}
        </ul>
      )}
      {canStop(a) && a.state !== 'stopping' && (
        <button
          className="jp-scandeck-button jp-mod-warn"
          data-action="stop-standing"
          disabled={stopping}
          onClick={() => void standing.stop(a.id)}
        >
          {stopping ? 'Stopping…' : 'Stop'}
        </button>
      )}
    </li>
  );
}

function StartForm(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const prov = model.provenance;
  const standing = prov.standing;
  const record = prov.records.find(r => r.id === prov.selectedRecord) ?? null;
  const [query, setQuery] = useState('');
  const [status, setStatus] = useState<string>('success');
  const catalog = model.catalogs.find(c => c.name === model.catalog);
  const error = standing.startError;
  const submit = (): void => {
    void standing.start(record?.id ?? null, query.trim(), status, model.catalog);
  };
  return (
    <form
      className="jp-scandeck-standing-form"
      onSubmit={event => {
        event.preventDefault();
        submit();
      }}
    >
      <div className="jp-scandeck-dim">
        {record
          ? `Rerun ${record.name || record.notebook} (${record.id.slice(0, 8)}) on every new run of ${catalog?.label ?? (model.catalog || 'the default catalog')} that matches:`
          : 'Pick a record below to rerun it on every new matching run.'}
      </div>
      <div className="jp-scandeck-standing-fields">
        <input
          className="jp-scandeck-standing-query-input"
          type="text"
          placeholder='query, e.g. sample == "Ni" (empty: every run)'
          aria-label="Query of the runs to rerun on"
          spellCheck={false}
          value={query}
          onChange={event => setQuery(event.target.value)}
        />
        <select
          className="jp-scandeck-standing-status"
          aria-label="Exit status of the runs to rerun on"
          title="The exit status a run must end with"
          value={status}
          onChange={event => setStatus(event.target.value)}
        >
          {EXIT_STATUSES.map(s => (
            <option key={s} value={s}>
              {s === 'any' ? 'any ending' : `ending ${s}`}
            </option>
          ))}
        </select>
        <button
          type="submit"
          className="jp-scandeck-button jp-mod-accept"
          data-action="start-standing"
          disabled={!record || standing.starting}
        >
          {standing.starting ? 'Starting…' : 'Start'}
        </button>
      </div>
      {error && (
        <div className="jp-scandeck-error jp-scandeck-standing-error" role="alert">
          {error.message}
          {error.query !== null && error.position !== null && (
            <pre className="jp-scandeck-search-error-caret" data-position={error.position}>
              {(({ text, column }) => `${text}\n${' '.repeat(column)}^`)(
                caretWindow(error.query, error.position)
              )}
            </pre>
          )}
        </div>
      )}
    </form>
  );
}

/** Fetch the list now and every `POLL_MS` while the page and the panel are visible. */
function usePolling(standing: StandingModel, element: React.RefObject<HTMLElement>): void {
  useEffect(() => {
    void standing.load();
    const timer = window.setInterval(() => {
      const shown = element.current !== null && element.current.offsetParent !== null;
      if (document.visibilityState === 'visible' && shown) {
        void standing.load();
      }
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [standing, element]);
}

export function StandingView(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const standing = model.provenance.standing;
  const element = useRef<HTMLDivElement>(null);
  usePolling(standing, element);
  return (
    <div className="jp-scandeck-standing" ref={element}>
      <div className="jp-scandeck-section-title jp-scandeck-pad">Standing analyses</div>
      <StartForm model={model} />
      {standing.error && <div className="jp-scandeck-error">{standing.error}</div>}
      {standing.loaded && standing.analyses.length === 0 && (
        <div className="jp-scandeck-empty">
          No standing analyses: pick a record, give a query and Start.
        </div>
      )}
      {standing.analyses.length > 0 && (
        <ul className="jp-scandeck-standing-list">
          {standing.analyses.map(a => (
            <AnalysisView key={a.id} analysis={a} standing={standing} />
          ))}
        </ul>
      )}
    </div>
  );
}
