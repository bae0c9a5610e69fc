/** The run table's column picker: a checkbox per column the catalog offers, grouped by kind. */
import * as React from 'react';
import { useState } from 'react';

import { IColumnInfo } from './api';

const KIND_LABELS: Array<[string, string]> = [
  ['computed', 'Computed columns'],
  ['builtin', 'Built-in columns'],
  ['published', 'Published by notebooks (scandeck.glue)'],
  ['annotation', 'Tags and comments'],
  ['run', 'Run'],
  ['start', 'Start document'],
  ['stop', 'Stop document'],
  ['data', 'Data (min and max over the run)']
];

/** The column picker: a checkbox per column the catalog offers, grouped by kind. */
export function ColumnPicker(props: {
  available: IColumnInfo[];
  shown: string[];
  onChange: (names: string[] | null) => void;
  onClose: () => void;
}): JSX.Element {
  const shown = new Set(props.shown);
  const [filter, setFilter] = useState('');
  const wanted = filter.trim().toLowerCase();
  const toggle = (name: string, on: boolean) => {
    const next = props.shown.filter(n => n !== name);
    if (on) {
      next.push(name);
    }
    props.onChange(next);
  };
  return (
    <div className="jp-scandeck-column-picker" role="dialog" aria-label="Columns">
      <div className="jp-scandeck-column-picker-head">
        <input
          className="jp-scandeck-column-filter"
          type="search"
          placeholder="Filter columns"
          aria-label="Filter columns"
          value={filter}
          onChange={event => setFilter(event.target.value)}
        />
        <button
          className="jp-scandeck-link"
          data-action="default-columns"
          title="Show the catalog's default columns"
          onClick={() => props.onChange(null)}
        >
          default
        </button>
        <button className="jp-scandeck-close" aria-label="Close" onClick={props.onClose}>
          ×
        </button>
      </div>
      <div className="jp-scandeck-column-picker-list">
        {KIND_LABELS.map(([kind, label]) => {
          const columns = props.available.filter(
            c => c.kind === kind && (!wanted || c.name.toLowerCase().includes(wanted))
          );
          if (!columns.length) {
            return null;
          }
          return (
            <fieldset key={kind} className="jp-scandeck-column-group" data-kind={kind}>
              <legend>{label}</legend>
              {columns.map(c => (
                <label key={c.name} className="jp-scandeck-column-option" title={c.name}>
                  <input
                    type="checkbox"
                    data-column={c.name}
                    checked={shown.has(c.name)}
                    onChange={event => toggle(c.name, event.target.checked)}
                  />
                  {c.title && c.title !== c.name ? `${c.title} (${c.name})` : c.name}
                  {c.units ? <span className="jp-scandeck-dim"> [{c.units}]</span> : null}
                </label>
              ))}
            </fieldset>
          );
        })}
      </div>
    </div>
  );
}
