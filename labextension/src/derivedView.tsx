/**
 * Derived runs in the Scans panel: a row's "▾ 2 derived" fold button and "from scan 12"
 * mark, and the detail's sections: the parents of a derived run (click selects one),
 * the pipeline it came from as a line of steps, and the runs derived from a run with
 * their live state. Everything from a run is rendered as text (React escapes it).
 */
import * as React from 'react';

import { IParentRef, IPipeline, IRunDetail, IRunSummary } from './api';
import { pipelineLine } from './derivedRuns';
import { formatTime, plural } from './format';
import { ScansModel } from './model';

function Badge(props: { status: string }): JSX.Element {
  return (
    <span className="jp-scandeck-status-badge" data-status={props.status}>
      {props.status}
    </span>
  );
}

/** A parent row's button that folds or unfolds the runs nested under it. */
export function DerivedToggle(props: {
  uid: string;
  count: number;
  folded: boolean;
  onToggle: (uid: string) => void;
}): JSX.Element {
  return (
    <button
      className="jp-scandeck-link jp-scandeck-derived-toggle"
      data-action="toggle-derived"
      aria-expanded={!props.folded}
      title={
        props.folded ? 'Show the runs derived from this one' : 'Hide the runs derived from this one'
      }
      onClick={event => {
        event.stopPropagation();
        props.onToggle(props.uid);
      }}
    >
      {`${props.folded ? '▸' : '▾'} ${props.count.toLocaleString()} derived`}
    </button>
  );
}

/** "from scan 12" on a derived run whose parent is not in the table; a click selects the parent. */
export function DerivedFrom(props: {
  parents: Array<{ uid: string; label: string }>;
  onSelect: (uid: string) => void;
}): JSX.Element {
  const [first, ...others] = props.parents;
  return (
    <span className="jp-scandeck-derived-from">
      <button
        className="jp-scandeck-link"
        data-action="select-parent"
        data-parent={first.uid}
        title={`Derived from ${first.uid}${others.length ? ` and ${others.length} more` : ''}; click to show it`}
        onClick={event => {
          event.stopPropagation();
          props.onSelect(first.uid);
        }}
      >
        {`from ${first.label}`}
      </button>
      {others.length > 0 && <span className="jp-scandeck-dim">{` +${others.length}`}</span>}
    </span>
  );
}

function parentText(ref: IParentRef): string {
  const name = typeof ref.scan_id === 'number' ? `Scan ${ref.scan_id}` : ref.uid.slice(0, 8);
  return ref.plan_name ? `${name} · ${ref.plan_name}` : name;
}

function Parents(props: { parents: IParentRef[]; model: ScansModel }): JSX.Element {
  return (
    <>
      <div className="jp-scandeck-section-title">Derived from</div>
      <ul className="jp-scandeck-derived-list jp-scandeck-parents">
        {props.parents.map(ref => (
          <li key={ref.uid} data-uid={ref.uid}>
            {ref.missing ? (
              <span className="jp-scandeck-dim" title={ref.uid}>
                {`${ref.uid.slice(0, 8)} (not in this catalog)`}
              </span>
            ) : (
              <button
                className="jp-scandeck-link jp-scandeck-derived-run"
                data-action="select-parent"
                data-uid={ref.uid}
                title={`${ref.uid}\nClick to show this run`}
                onClick={() => props.model.select(ref.uid)}
              >
                {parentText(ref)}
              </button>
            )}
            {ref.status && <Badge status={ref.status} />}
          </li>
        ))}
      </ul>
    </>
  );
}

function stepTitle(step: IPipeline['steps'][number]): string {
  const lines = [step.type];
  if (step.qualname) {
    lines.push(`function: ${step.module ? `${step.module}.` : ''}${step.qualname}`);
  }
  if (step.sha256) {
    lines.push(`source sha256: ${step.sha256.slice(0, 16)}…`);
  }
  if (step.run) {
    lines.push(`run: ${step.run}`);
  }
  if (step.key) {
    lines.push(`key: ${step.key}`);
  }
  return lines.join('\n');
}

function Pipeline(props: { pipeline: IPipeline }): JSX.Element {
  const { steps } = props.pipeline;
  return (
    <>
      <div className="jp-scandeck-section-title">Pipeline</div>
      <div
        className="jp-scandeck-pipeline"
        data-line={pipelineLine(steps)}
        title={props.pipeline.summary ?? undefined}
      >
        {steps.map((step, i) => (
          <React.Fragment key={i}>
            {i > 0 && <span className="jp-scandeck-pipeline-arrow"> → </span>}
            <span
              className="jp-scandeck-pipeline-step"
              data-type={step.type}
              title={stepTitle(step)}
            >
              {pipelineLine([step])}
            </span>
          </React.Fragment>
        ))}
        {props.pipeline.more_steps && <span className="jp-scandeck-dim"> → …</span>}
        {steps.length === 0 && (
          <span className="jp-scandeck-dim">{props.pipeline.summary ?? 'not described'}</span>
        )}
      </div>
    </>
  );
}

function DerivedList(props: {
  runs: IRunSummary[];
  more: boolean;
  model: ScansModel;
}): JSX.Element {
  const { model } = props;
  // The table's summary of a run is pushed as it runs: fresher than the detail's.
  const fresh = new Map(model.displayRuns.map(r => [r.uid, r]));
  return (
    <>
      <div className="jp-scandeck-section-title">
        Derived runs{props.more ? ' (the newest 50)' : ''}
      </div>
      <ul className="jp-scandeck-derived-list jp-scandeck-derived-runs">
        {props.runs.map(listed => {
          const run = fresh.get(listed.uid) ?? listed;
          return (
            <li key={run.uid} data-uid={run.uid} data-status={run.status}>
              <button
                className="jp-scandeck-link jp-scandeck-derived-run"
                data-action="select-derived"
                data-uid={run.uid}
                title={`${run.uid}\nClick to show this run`}
                onClick={() => model.select(run.uid)}
              >
                {`${run.plan_name ?? 'run'} ${run.uid.slice(0, 8)}`}
              </button>
              <Badge status={run.status} />
              <span className="jp-scandeck-dim jp-scandeck-derived-events">
                {`${plural(run.num_events, 'event')} · ${formatTime(run.time)}`}
              </span>
            </li>
          );
        })}
      </ul>
    </>
  );
}

/**
 * The detail's lineage: `origin` is where a derived run came from (parents, pipeline),
 * shown near the top; `derived` the runs derived from this one, with their live state.
 */
export function DerivedSections(props: {
  model: ScansModel;
  detail: IRunDetail;
  part: 'origin' | 'derived';
}): JSX.Element | null {
  const { model, detail } = props;
  if (props.part === 'derived') {
    const derived = detail.derived ?? [];
    return derived.length ? (
      <div className="jp-scandeck-lineage" data-part="derived">
        <DerivedList runs={derived} more={Boolean(detail.derived_more)} model={model} />
      </div>
    ) : null;
  }
  const parents = detail.parents ?? [];
  if (!parents.length && !detail.pipeline) {
    return null;
  }
  return (
    <div className="jp-scandeck-lineage" data-part="origin">
      {parents.length > 0 && <Parents parents={parents} model={model} />}
      {detail.pipeline && <Pipeline pipeline={detail.pipeline} />}
    </div>
  );
}
