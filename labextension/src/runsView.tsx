/**
 * The Runs tab: catalog chooser, search box (errors with a caret), the run list
 * as a table (live runs on top, pages loaded as the list scrolls; columns picked,
 * sortable, tags and comments edited inline, CSV export) and the selected run.
 */
import * as React from 'react';
import { useEffect, useRef, useState } from 'react';

import { downloadTableCsv, errorMessage, IColumnInfo, IRunSummary, ITableCell } from './api';
import type { PanelActions } from './actions';
import { DerivedFrom, DerivedToggle } from './derivedView';
import { DetailView, Progress, StatusBadge } from './detailView';
import { caretWindow, formatFullTime, formatTime, plural } from './format';
import { ScansModel } from './model';
import { ColumnPicker } from './columnPicker';
import { parentLabel } from './derivedRuns';
import { CommentsCell, SortHeader, TagsCell, ValueCell } from './tableCells';
import { FilesLine } from './watchedView';

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
  /** How deep it is nested under its parent (0: a row of its own). */
  depth: number;
  /** Runs nested under it, and whether they are folded away. */
  derivedCount: number;
  folded: boolean;
  /** For a derived row of its own: its parents that are not rows, named (`scan 12` or a uid's start). */
  from: Array<{ uid: string; label: string }>;
  onToggleDerived: (uid: string) => void;
  selected: boolean;
  checked: boolean;
  columns: string[];
  info: Map<string, IColumnInfo>;
  cells: Record<string, ITableCell> | undefined;
  editable: boolean;
  onSelect: (uid: string) => void;
  onCheck: (uid: string, on?: boolean) => void;
  onAddTags: (uid: string, tags: string[]) => Promise<boolean>;
  onRemoveTag: (uid: string, tag: string) => Promise<boolean>;
  onAddComment: (uid: string, text: string) => Promise<boolean>;
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
  const derived = Array.isArray(run.parent_uids) && run.parent_uids.length > 0;
  return (
    <tr
      className="jp-scandeck-run"
      data-uid={run.uid}
      data-status={run.status}
      data-depth={props.depth}
      data-derived={derived ? 'true' : undefined}
      data-selected={selected ? 'true' : 'false'}
      data-checked={checked ? 'true' : 'false'}
      aria-selected={selected}
      onClick={event => {
        if (event.ctrlKey || event.metaKey) {
          props.onCheck(run.uid);
        } else {
          props.onSelect(run.uid);
        }
      }}
    >
      <td className="jp-scandeck-run-cell" title={run.purpose ?? undefined}>
        <div
          className="jp-scandeck-run-cellbox"
          style={props.depth ? { paddingLeft: `${Math.min(props.depth, 6) * 16}px` } : undefined}
        >
          {props.depth > 0 && (
            <span className="jp-scandeck-derived-mark" title="Derived from the run above">
              ↳
            </span>
          )}
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
              {!running && !run.files && (
                <span className="jp-scandeck-run-events">{plural(run.num_events, 'event')}</span>
              )}
              {props.derivedCount > 0 && (
                <DerivedToggle
                  uid={run.uid}
                  count={props.derivedCount}
                  folded={props.folded}
                  onToggle={props.onToggleDerived}
                />
              )}
              {props.from.length > 0 && (
                <DerivedFrom parents={props.from} onSelect={props.onSelect} />
              )}
            </div>
            {run.files ? (
              <div className="jp-scandeck-run-line jp-scandeck-dim jp-scandeck-files-line">
                <FilesLine files={run.files} />
              </div>
            ) : (
              running && <Progress run={run} />
            )}
          </div>
        </div>
      </td>
      {props.columns.map(name => {
        const cell = props.cells?.[name];
        if (name === 'tags') {
          return (
            <TagsCell
              key={name}
              cell={cell}
              editable={props.editable}
              onAdd={tags => props.onAddTags(run.uid, tags)}
              onRemove={tag => props.onRemoveTag(run.uid, tag)}
            />
          );
        }
        if (name === 'comments') {
          return (
            <CommentsCell
              key={name}
              cell={cell}
              editable={props.editable}
              onAdd={text => props.onAddComment(run.uid, text)}
            />
          );
        }
        return <ValueCell key={name} column={name} info={props.info.get(name)} cell={cell} />;
      })}
    </tr>
  );
});

const NONE: Array<{ uid: string; label: string }> = [];

/** The parents of a derived row of its own, named (only such rows get a new array: the others stay memoized). */
function parentNames(uids: string[], model: ScansModel): Array<{ uid: string; label: string }> {
  return uids.length
    ? uids.map(uid => ({ uid, label: parentLabel(uid, model.derived.parentRefs) }))
    : NONE;
}

function RunTable(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const ref = useRef<HTMLDivElement>(null);
  const rows = model.tableRows;
  const columns = model.columns;
  const info = new Map(model.columnInfo.map(c => [c.name, c]));

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
  const onAddTags = React.useCallback(
    (uid: string, tags: string[]) => model.addTags(uid, tags),
    [model]
  );
  const onRemoveTag = React.useCallback(
    (uid: string, tag: string) => model.removeTag(uid, tag),
    [model]
  );
  const onAddComment = React.useCallback(
    (uid: string, text: string) => model.addComment(uid, text),
    [model]
  );
  const onToggleDerived = React.useCallback((uid: string) => model.toggleDerived(uid), [model]);
  const onSort = (column: string) => model.sortBy(column);
  const loaded = model.displayRuns.length;

  return (
    <div className="jp-scandeck-runs" ref={ref} onScroll={() => maybeLoadMore(true)}>
      {rows.length === 0 && !model.loading && !model.listError && (
        <div className="jp-scandeck-empty">
          {model.query.trim() ? 'No run matches the search.' : 'No runs in this catalog yet.'}
        </div>
      )}
      <table
        className="jp-scandeck-run-table"
        role="grid"
        aria-multiselectable="true"
        data-sort={model.sortKey ?? ''}
        data-sort-direction={model.sortKey ? (model.sortDescending ? 'desc' : 'asc') : ''}
      >
        <thead>
          <tr>
            <SortHeader
              column="time"
              label="Run"
              title="Scan, plan, sample · operator, status; start time, uid, events"
              sortKey={model.sortKey}
              descending={model.sortDescending}
              loaded={loaded}
              onSort={onSort}
              className="jp-scandeck-run-th"
            />
            {columns.map(name => {
              const c = info.get(name);
              const label = c?.title || name;
              return (
                <SortHeader
                  key={name}
                  column={name}
                  label={c?.units ? `${label} [${c.units}]` : label}
                  title={c && c.title !== name ? `${c.title} (${name})` : name}
                  sortKey={model.sortKey}
                  descending={model.sortDescending}
                  loaded={loaded}
                  onSort={onSort}
                />
              );
            })}
          </tr>
        </thead>
        <tbody className="jp-scandeck-run-list">
          {rows.map(({ run, depth, derivedCount, folded, absentParents }) => (
            <RunRow
              key={run.uid}
              run={run}
              depth={depth}
              derivedCount={derivedCount}
              folded={folded}
              from={depth === 0 ? parentNames(absentParents, model) : NONE}
              onToggleDerived={onToggleDerived}
              selected={run.uid === model.selected}
              checked={model.checked.has(run.uid)}
              columns={columns}
              info={info}
              cells={model.cells.get(run.uid)}
              editable={model.factsSupported}
              onSelect={onSelect}
              onCheck={onCheck}
              onAddTags={onAddTags}
              onRemoveTag={onRemoveTag}
              onAddComment={onAddComment}
            />
          ))}
        </tbody>
      </table>
      {model.loading && <div className="jp-scandeck-loading">Loading…</div>}
      {model.listError && <div className="jp-scandeck-error">{model.listError}</div>}
    </div>
  );
}

function TableToolbar(props: { model: ScansModel }): JSX.Element {
  const { model } = props;
  const [picking, setPicking] = useState(false);
  const [exporting, setExporting] = useState(false);
  return (
    <>
      <button
        className="jp-scandeck-button"
        data-action="columns"
        aria-expanded={picking}
        title="Choose the table's columns"
        onClick={() => setPicking(!picking)}
      >
        Columns
      </button>
      <button
        className="jp-scandeck-button"
        data-action="export-csv"
        disabled={exporting || Boolean(model.queryError)}
        title="Download every run of the current search, with these columns, as CSV"
        onClick={() => {
          setExporting(true);
          void downloadTableCsv(model.catalog, model.query, model.columns)
            .then(name => model.notify(`Exported ${name}`, 'success'))
            .catch(error => model.notify(errorMessage(error), 'error'))
            .finally(() => setExporting(false));
        }}
      >
        Export CSV
      </button>
      {picking && (
        <ColumnPicker
          available={model.available}
          shown={model.columns}
          onChange={names => model.setColumns(names)}
          onClose={() => setPicking(false)}
        />
      )}
    </>
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
        <TableToolbar model={model} />
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
      {model.columnsError && (
        <div className="jp-scandeck-error jp-scandeck-columns-error" role="alert">
          {model.columnsError}
        </div>
      )}
      <RunTable model={model} />
      <DetailView model={model} actions={actions} />
    </div>
  );
}
