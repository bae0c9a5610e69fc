/**
 * The Runs tab: catalog chooser, search box (errors with a caret), the run list
 * (live runs on top, pages loaded as the list scrolls) and the selected run.
 */
import * as React from 'react';
import { useEffect, useRef, useState } from 'react';

import { IRunSummary } from './api';
import type { PanelActions } from './actions';
import { DetailView, Progress, StatusBadge } from './detailView';
import { caretWindow, formatFullTime, formatTime, plural } from './format';
import { ScansModel } from './model';

/** Load the next page when the list is scrolled within this many pixels of its end. */
const LOAD_MORE_MARGIN = 300;

function CaretLine(props: { query: string; position: number }): JSX.Element {
  const { text, column } = caretWindow(props.query, props.position);
  return (
    <pre className="jp-scandeck-search-error-caret" data-position={props.position}>
      {`${text}\n${' '.repeat(column)}^`}
    </pre>
  );
}

function SearchBox(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const [text, setText] = useState(model.query);
  // Follow the model when the query changes elsewhere (state restored): adjust the
  // state while rendering (React's pattern for it), not in an effect.
  const [followed, setFollowed] = useState(model.query);
  if (model.query !== followed) {
    setFollowed(model.query);
    setText(model.query);
  }
  const error = model.queryError;
  return (
    <div className="jp-scandeck-searchbox">
      <input
        className="jp-scandeck-search"
        type="search"
        spellCheck={false}
        placeholder='Search: sample == "Ni" and plan_name == "scan"'
        aria-label="Search runs"
        aria-invalid={error ? 'true' : 'false'}
        value={text}
        onChange={event => {
          setText(event.target.value);
          model.setQuery(event.target.value);
        }}
        onKeyDown={event => {
          if (event.key === 'Enter') {
            model.search();
          }
        }}
      />
      {error && (
        <div className="jp-scandeck-search-error" role="alert" data-error={error.kind}>
          <div className="jp-scandeck-search-error-message">{error.message.split('\n')[0]}</div>
          {error.position !== null && (
            <CaretLine query={error.query ?? model.query} position={error.position} />
          )}
        </div>
      )}
    </div>
  );
}

interface IRunRowProps {
  run: IRunSummary;
  selected: boolean;
  checked: boolean;
  onSelect: (uid: string) => void;
  onCheck: (uid: string, on?: boolean) => void;
}

const RunRow = React.memo(function RunRow(props: IRunRowProps): JSX.Element {
  const { run, selected, checked } = props;
  const running = run.status === 'running';
  const who = [run.sample, run.operator].filter(Boolean).join(' · ');
  // The full values on hover: a narrow panel cuts them with an ellipsis.
  const whoTitle = [
    run.sample ? `sample: ${run.sample}` : '',
    run.operator ? `operator: ${run.operator}` : ''
  ]
    .filter(Boolean)
    .join('\n');
  return (
    <li
      className="jp-scandeck-run"
      data-uid={run.uid}
      data-status={run.status}
      data-selected={selected ? 'true' : 'false'}
      data-checked={checked ? 'true' : 'false'}
      role="option"
      aria-selected={selected}
      title={run.purpose ?? undefined}
      onClick={event => {
        if (event.ctrlKey || event.metaKey) {
          props.onCheck(run.uid);
        } else {
          props.onSelect(run.uid);
        }
      }}
    >
      <input
        type="checkbox"
        className="jp-scandeck-run-check"
        aria-label={`Select scan ${run.scan_id ?? run.uid} for reruns`}
        checked={checked}
        onClick={event => event.stopPropagation()}
        onChange={event => props.onCheck(run.uid, event.target.checked)}
      />
      <div className="jp-scandeck-run-main">
        <div className="jp-scandeck-run-line">
          <span className="jp-scandeck-run-scan">{run.scan_id ?? '–'}</span>
          <span className="jp-scandeck-run-plan" title={run.plan_name ?? undefined}>
            {run.plan_name ?? ''}
          </span>
          <span className="jp-scandeck-run-who" title={whoTitle || undefined}>
            {who}
          </span>
          <StatusBadge status={run.status} />
        </div>
        <div className="jp-scandeck-run-line jp-scandeck-dim">
          <span className="jp-scandeck-run-time" title={formatFullTime(run.time)}>
            {formatTime(run.time)}
          </span>
          <span className="jp-scandeck-run-uid" title={run.uid}>
            {run.uid.slice(0, 8)}
          </span>
          {!running && (
            <span className="jp-scandeck-run-events">{plural(run.num_events, 'event')}</span>
          )}
        </div>
        {running && <Progress run={run} />}
      </div>
    </li>
  );
});

function RunList(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const ref = useRef<HTMLDivElement>(null);
  const runs = model.displayRuns;

  const maybeLoadMore = (scrolled: boolean) => {
    const el = ref.current;
    if (!el || model.loading || model.next === null) {
      return;
    }
    if (!scrolled && model.listError) {
      return; // after a failed page, only the user's scrolling tries again
    }
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - LOAD_MORE_MARGIN) {
      void model.loadMore();
    }
  };
  // A first page shorter than the list's height shows no scroll bar: fill it.
  useEffect(() => maybeLoadMore(false));

  const onSelect = React.useCallback((uid: string) => model.select(uid), [model]);
  const onCheck = React.useCallback(
    (uid: string, on?: boolean) => model.toggleChecked(uid, on),
    [model]
  );

  return (
    <div className="jp-scandeck-runs" ref={ref} onScroll={() => maybeLoadMore(true)}>
      {runs.length === 0 && !model.loading && !model.listError && (
        <div className="jp-scandeck-empty">
          {model.query.trim() ? 'No run matches the search.' : 'No runs in this catalog yet.'}
        </div>
      )}
      <ul className="jp-scandeck-run-list" role="listbox" aria-multiselectable="true">
        {runs.map(run => (
          <RunRow
            key={run.uid}
            run={run}
            selected={run.uid === model.selected}
            checked={model.checked.has(run.uid)}
            onSelect={onSelect}
            onCheck={onCheck}
          />
        ))}
      </ul>
      {model.loading && <div className="jp-scandeck-loading">Loading…</div>}
      {model.listError && <div className="jp-scandeck-error">{model.listError}</div>}
    </div>
  );
}

export function RunsView(props: { model: ScansModel; actions: PanelActions }): JSX.Element {
  const { model, actions } = props;
  const shown = model.displayRuns.length;
  return (
    <div className="jp-scandeck-runs-view">
      <div className="jp-scandeck-toolbar">
        <select
          className="jp-scandeck-catalog"
          aria-label="Catalog"
          value={model.catalog}
          onChange={event => model.setCatalog(event.target.value)}
        >
          {model.catalogs.map(c => (
            <option key={c.name} value={c.name} title={c.description ?? c.uri ?? ''}>
              {c.label || c.name || 'Default store'}
            </option>
          ))}
        </select>
      </div>
      <SearchBox model={model} />
      <div className="jp-scandeck-listinfo">
        <span className="jp-scandeck-run-count" data-shown={shown} data-total={model.total}>
          {shown.toLocaleString()} of {model.total.toLocaleString()}
        </span>
        {model.searchHint && shown === 0 && (
          <span className="jp-scandeck-search-hint" role="status" title={model.searchHint}>
            {model.searchHint}
          </span>
        )}
        {model.checked.size > 0 && (
          <span className="jp-scandeck-checked-count">
            {model.checked.size} checked
            <button
              className="jp-scandeck-link"
              data-action="clear-checked"
              onClick={() => model.clearChecked()}
            >
              clear
            </button>
          </span>
        )}
      </div>
      <RunList model={model} />
      <DetailView model={model} actions={actions} />
    </div>
  );
}
