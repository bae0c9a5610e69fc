/**
 * The run table's pieces: a cell with its state marked (stale, failed, running,
 * pending), the tag chips and comment editor of a row, and the sortable header.
 * Everything a run carries is rendered as text (React escapes it).
 */
import * as React from 'react';
import { useState } from 'react';

import { IColumnInfo, ITableCell } from './api';
import { formatIso, formatTime } from './format';

/** A cell's value as text: numbers to 6 significant digits, lists joined. */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    if (!isFinite(value)) {
      return String(value);
    }
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'boolean' || typeof value === 'string') {
    return String(value);
  }
  if (Array.isArray(value)) {
    return value.map(v => cellText(v)).join(', ');
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** The tooltip of a cell: its full value, and what its state means. */
export function cellTitle(column: IColumnInfo | undefined, cell: ITableCell): string {
  const name = column
    ? `${column.title || column.name}${column.units ? ` (${column.units})` : ''}`
    : '';
  const full = cellText(cell.value);
  switch (cell.state) {
    case 'stale':
      return `stale: code changed since this value was computed; it is being recomputed\n${name}: ${full}`;
    case 'failed':
      return `failed: ${cell.error ?? 'the column raised an error'}`;
    case 'running':
      return `computed while the run was running; final when it ends\n${name}: ${full}`;
    case 'pending':
      return 'not computed yet';
    case 'missing':
      return `this run has no ${column?.name ?? 'value here'}`;
    default:
      return full ? `${name}: ${full}` : name;
  }
}

/** A plain (not tags, not comments) cell of the table. */
export function ValueCell(props: {
  column: string;
  info?: IColumnInfo;
  cell?: ITableCell;
}): JSX.Element {
  const cell: ITableCell = props.cell ?? { value: null, state: 'pending', error: null };
  let text = cellText(cell.value);
  if (props.info?.name === 'time' && typeof cell.value === 'number') {
    text = formatTime(cell.value);
  }
  if (cell.state === 'pending') {
    text = '…';
  } else if (cell.state === 'missing') {
    text = '–';
  }
  return (
    <td
      className="jp-scandeck-tcell"
      data-column={props.column}
      data-state={cell.state}
      title={cellTitle(props.info, cell)}
    >
      {cell.state === 'failed' && (
        <span className="jp-scandeck-cell-warning" aria-hidden="true">
          ⚠
        </span>
      )}
      {cell.state === 'failed' ? <span className="jp-scandeck-dim">failed</span> : text}
    </td>
  );
}

function stop(event: React.SyntheticEvent): void {
  event.stopPropagation();
}

/** An inline text field: Enter submits, Escape cancels; it closes once the submit succeeded. */
function InlineInput(props: {
  className: string;
  placeholder: string;
  label: string;
  onSubmit: (text: string) => Promise<boolean>;
  onClose: () => void;
}): JSX.Element {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <input
      className={props.className}
      type="text"
      autoFocus
      spellCheck={false}
      disabled={busy}
      value={text}
      placeholder={props.placeholder}
      aria-label={props.label}
      onClick={stop}
      onChange={event => setText(event.target.value)}
      onBlur={() => {
        if (!busy && !text.trim()) {
          props.onClose();
        }
      }}
      onKeyDown={event => {
        event.stopPropagation();
        if (event.key === 'Escape') {
          props.onClose();
        } else if (event.key === 'Enter' && text.trim()) {
          setBusy(true);
          void props.onSubmit(text).then(ok => {
            setBusy(false);
            if (ok) {
              setText('');
              props.onClose();
            }
          });
        }
      }}
    />
  );
}

/** A run's tags as chips (× removes one, + adds some: comma-separated). */
export function TagChips(props: {
  tags: string[];
  editable: boolean;
  onAdd: (tags: string[]) => Promise<boolean>;
  onRemove: (tag: string) => Promise<boolean>;
}): JSX.Element {
  const [adding, setAdding] = useState(false);
  return (
    <span className="jp-scandeck-tags">
      {props.tags.map(tag => (
        <span key={tag} className="jp-scandeck-tag" data-tag={tag} title={tag}>
          <span className="jp-scandeck-tag-text">{tag}</span>
          {props.editable && (
            <button
              className="jp-scandeck-tag-remove"
              data-action="untag"
              title={`Remove the tag ${tag}`}
              aria-label={`Remove the tag ${tag}`}
              onClick={event => {
                event.stopPropagation();
                void props.onRemove(tag);
              }}
            >
              ×
            </button>
          )}
        </span>
      ))}
      {props.editable &&
        (adding ? (
          <InlineInput
            className="jp-scandeck-tag-input"
            placeholder="tag, tag…"
            label="New tags, separated by commas"
            onSubmit={text =>
              props.onAdd(
                text
                  .split(',')
                  .map(t => t.trim())
                  .filter(Boolean)
              )
            }
            onClose={() => setAdding(false)}
          />
        ) : (
          <button
            className="jp-scandeck-tag-add"
            data-action="add-tag"
            title="Add tags"
            aria-label="Add tags"
            onClick={event => {
              event.stopPropagation();
              setAdding(true);
            }}
          >
            +
          </button>
        ))}
    </span>
  );
}

/** A button that opens a one-line comment field. */
export function CommentAdder(props: {
  onAdd: (text: string) => Promise<boolean>;
  label?: string;
}): JSX.Element {
  const [adding, setAdding] = useState(false);
  return adding ? (
    <InlineInput
      className="jp-scandeck-comment-input"
      placeholder="Comment, Enter to add"
      label="New comment"
      onSubmit={props.onAdd}
      onClose={() => setAdding(false)}
    />
  ) : (
    <button
      className="jp-scandeck-comment-add"
      data-action="add-comment"
      title="Add a comment"
      aria-label="Add a comment"
      onClick={event => {
        event.stopPropagation();
        setAdding(true);
      }}
    >
      {props.label ?? '+'}
    </button>
  );
}

/** The text of a comments cell's value: the newest comment, and how many there are. */
function commentsOf(value: unknown): string[] {
  if (Array.isArray(value)) {
    return value.map(v =>
      v && typeof v === 'object' && 'text' in v
        ? String((v as { text: unknown }).text)
        : cellText(v)
    );
  }
  if (typeof value === 'string' && value) {
    return value.split('\n');
  }
  return [];
}

export function tagsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.map(v => String(v)) : [];
}

/** The tags cell of a row: chips, editable inline. */
export function TagsCell(props: {
  cell?: ITableCell;
  editable: boolean;
  onAdd: (tags: string[]) => Promise<boolean>;
  onRemove: (tag: string) => Promise<boolean>;
}): JSX.Element {
  return (
    <td
      className="jp-scandeck-tcell jp-scandeck-tags-cell"
      data-column="tags"
      data-state={props.cell?.state ?? 'ok'}
      onClick={props.editable ? stop : undefined}
    >
      <TagChips
        tags={tagsOf(props.cell?.value)}
        editable={props.editable}
        onAdd={props.onAdd}
        onRemove={props.onRemove}
      />
    </td>
  );
}

/** The comments cell of a row: the newest comment (all of them on hover) and a + to add one. */
export function CommentsCell(props: {
  cell?: ITableCell;
  editable: boolean;
  onAdd: (text: string) => Promise<boolean>;
}): JSX.Element {
  const comments = commentsOf(props.cell?.value);
  const last = comments[comments.length - 1] ?? '';
  return (
    <td
      className="jp-scandeck-tcell jp-scandeck-comments-cell"
      data-column="comments"
      data-state={props.cell?.state ?? 'ok'}
      data-count={comments.length}
      title={comments.join('\n') || undefined}
      onClick={props.editable ? stop : undefined}
    >
      <span className="jp-scandeck-comment-last">{last}</span>
      {comments.length > 1 && <span className="jp-scandeck-dim"> (+{comments.length - 1})</span>}
      {props.editable && <CommentAdder onAdd={props.onAdd} />}
    </td>
  );
}

/** A column header: click sorts the loaded rows by it (ascending, then descending). */
export function SortHeader(props: {
  column: string;
  label: string;
  title: string;
  sortKey: string | null;
  descending: boolean;
  loaded: number;
  onSort: (column: string) => void;
  className?: string;
}): JSX.Element {
  const active = props.sortKey === props.column;
  const direction = active ? (props.descending ? 'descending' : 'ascending') : 'none';
  const how = active
    ? `Sorted ${direction} among the ${props.loaded} loaded runs (live runs stay on top); click to reverse`
    : `Click to sort the ${props.loaded} loaded runs by ${props.label}`;
  return (
    <th
      className={`jp-scandeck-th ${props.className ?? ''}`}
      data-column={props.column}
      aria-sort={direction}
      title={`${props.title}\n${how}`}
      onClick={() => props.onSort(props.column)}
    >
      <span className="jp-scandeck-th-label">{props.label}</span>
      <span className="jp-scandeck-th-sort">{active ? (props.descending ? '▼' : '▲') : ''}</span>
    </th>
  );
}

/** A comment of the detail's history: text, author, host and time. */
export function CommentItem(props: {
  text: string;
  author: string;
  host: string;
  time: number;
}): JSX.Element {
  return (
    <li className="jp-scandeck-comment">
      <div className="jp-scandeck-comment-text">{props.text}</div>
      <div
        className="jp-scandeck-dim jp-scandeck-comment-meta"
        title={formatIso(new Date(props.time * 1000).toISOString())}
      >
        {props.author}@{props.host} · {formatTime(props.time)}
      </div>
    </li>
  );
}
