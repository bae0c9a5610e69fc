/**
 * The Provenance tab: save the active notebook's provenance, the records
 * (newest first), opening a record's notebook, and reruns of a record on the
 * scans checked in the Runs tab, with their jobs' progress pushed by the server,
 * and standing analyses (`standingView.tsx`).
 */
import * as React from 'react';

import { IJob, IProvRecord } from './api';
import type { PanelActions } from './actions';
import { StatusBadge } from './detailView';
import { errorText, formatIso, formatValue, plural } from './format';
import { ScansModel } from './model';
import { StandingView } from './standingView';

function JobView(props: { job: IJob; model: ScansModel }): JSX.Element {
  const { job, model } = props;
  const finished = job.done; // the failed ones included
  const fraction = job.total > 0 ? Math.min(1, finished / job.total) : 0;
  const failures = job.results.filter(r => r.status !== 'ok');
  return (
    <li className="jp-scandeck-job" data-job-id={job.id} data-status={job.status}>
      <div className="jp-scandeck-job-line">
        <span className="jp-scandeck-job-title">
          {job.name || job.record.slice(0, 8)} on {plural(job.total, 'scan')}
        </span>
        <StatusBadge status={job.status} />
      </div>
      <div className="jp-scandeck-progress-row">
        <div
          className="jp-scandeck-progress"
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={job.total}
          aria-valuenow={finished}
          data-failed={job.failed > 0 ? 'true' : undefined}
        >
          <div
            className="jp-scandeck-progress-fill"
            style={{ width: `${(fraction * 100).toFixed(1)}%` }}
          />
        </div>
        <span className="jp-scandeck-event-count">
          {finished} / {job.total}
        </span>
      </div>
      <div className="jp-scandeck-job-summary jp-scandeck-dim">
        {job.done - job.failed} ok, {job.failed} failed · started {formatIso(job.started)}
        {job.finished ? ` · finished ${formatIso(job.finished)}` : ''}
        {job.output_dir ? ` · ${job.output_dir}` : ''}
      </div>
      {job.message && job.status === 'failed' && (
        <div className="jp-scandeck-error jp-scandeck-job-message">{job.message}</div>
      )}
      {failures.length > 0 && (
        <ul className="jp-scandeck-job-failures">
          {failures.map(r => (
            <li key={r.uid} data-uid={r.uid}>
              scan {r.scan_id ?? r.uid.slice(0, 8)}: {errorText(r.error ?? r.status, 200)}
            </li>
          ))}
        </ul>
      )}
      {job.status === 'running' && (
        <button
          className="jp-scandeck-button jp-mod-warn"
          data-action="cancel"
          onClick={() => void model.provenance.cancelJob(job.id)}
        >
          Cancel
        </button>
      )}
    </li>
  );
}

function RecordView(props: {
  record: IProvRecord;
  selected: boolean;
  model: ScansModel;
  actions: PanelActions;
}): JSX.Element {
  const { record, selected, model, actions } = props;
  const params = Object.entries(record.parameters ?? {});
  return (
    <li
      className="jp-scandeck-record"
      data-record-id={record.id}
      data-status={record.status}
      data-selected={selected ? 'true' : 'false'}
      aria-selected={selected}
      role="option"
      onClick={() => model.provenance.selectRecord(record.id)}
    >
      <div className="jp-scandeck-record-line">
        <span className="jp-scandeck-record-name">{record.name || record.notebook}</span>
        <span className="jp-scandeck-record-kind">{record.kind}</span>
        <StatusBadge status={record.status} />
      </div>
      <div className="jp-scandeck-record-line jp-scandeck-dim">
        <span title={record.id}>{record.id.slice(0, 8)}</span>
        <span>{formatIso(record.created)}</span>
        {record.parent && <span title={record.parent}>from {record.parent.slice(0, 8)}</span>}
      </div>
      {params.length > 0 && (
        <div className="jp-scandeck-record-params">
          {params.map(([key, value]) => (
            <span
              key={key}
              className="jp-scandeck-chip"
              title={`${key} = ${JSON.stringify(value)}`}
            >
              {key} = {formatValue(JSON.stringify(value) ?? String(value), 40)}
            </span>
          ))}
        </div>
      )}
      {record.inputs.length > 0 && (
        <div className="jp-scandeck-record-inputs jp-scandeck-dim">
          input scans:{' '}
          {record.inputs
            .slice(0, 12)
            .map(i =>
              i.scan_id !== null && i.scan_id !== undefined ? String(i.scan_id) : i.uid.slice(0, 8)
            )
            .join(', ')}
          {record.inputs.length > 12 ? ` and ${record.inputs.length - 12} more` : ''}
        </div>
      )}
      {record.error && <div className="jp-scandeck-error">{errorText(record.error, 300)}</div>}
      {selected && (
        <div className="jp-scandeck-actions">
          <button
            className="jp-scandeck-button"
            data-action="open"
            onClick={event => {
              event.stopPropagation();
              void actions.openRecord(record.id);
            }}
          >
            Open notebook
          </button>
        </div>
      )}
    </li>
  );
}

export function ProvenanceView(props: { model: ScansModel; actions: PanelActions }): JSX.Element {
  const { model, actions } = props;
  const prov = model.provenance;
  const record = prov.records.find(r => r.id === prov.selectedRecord) ?? null;
  const checked = model.checked.size;
  return (
    <div className="jp-scandeck-provenance">
      <div className="jp-scandeck-toolbar">
        <button
          className="jp-scandeck-button jp-mod-accept"
          data-action="save-provenance"
          disabled={prov.saving}
          title="Save the active notebook, then record it with its parameters, input scans and environment"
          onClick={() => void actions.saveProvenance()}
        >
          {prov.saving ? 'Saving…' : 'Save provenance'}
        </button>
      </div>
      {prov.saveResult && (
        <pre
          className="jp-scandeck-save-result"
          data-ok={prov.saveResult.ok ? 'true' : 'false'}
          role="status"
        >
          {prov.saveResult.text}
        </pre>
      )}
      <div className="jp-scandeck-rerun">
        <div className="jp-scandeck-dim">
          {record
            ? `Rerun ${record.name || record.notebook} (${record.id.slice(0, 8)}) on ${plural(checked, 'checked scan')}`
            : 'Pick a record below, check scans in the Runs tab, then rerun.'}
        </div>
        <button
          className="jp-scandeck-button"
          data-action="rerun"
          disabled={!record || checked === 0}
          onClick={() => void model.startRerun()}
        >
          Rerun on selected scans
        </button>
      </div>
      {prov.jobs.length > 0 && (
        <div className="jp-scandeck-section-title jp-scandeck-pad">Reruns</div>
      )}
      {prov.jobs.length > 0 && (
        <ul className="jp-scandeck-jobs">
          {prov.jobs.map(job => (
            <JobView key={job.id} job={job} model={model} />
          ))}
        </ul>
      )}
      <StandingView model={model} />
      <div className="jp-scandeck-section-title jp-scandeck-pad">Records</div>
      <div className="jp-scandeck-listinfo">
        <span className="jp-scandeck-record-count">
          {prov.records.length.toLocaleString()} of {prov.recordsTotal.toLocaleString()} records
        </span>
      </div>
      <div className="jp-scandeck-records-scroll">
        {prov.recordsError && <div className="jp-scandeck-error">{prov.recordsError}</div>}
        {prov.recordsLoaded && prov.records.length === 0 && (
          <div className="jp-scandeck-empty">
            No provenance records yet: run a notebook, then “Save provenance”.
          </div>
        )}
        <ul className="jp-scandeck-records" role="listbox">
          {prov.records.map(r => (
            <RecordView
              key={r.id}
              record={r}
              selected={r.id === prov.selectedRecord}
              model={model}
              actions={actions}
            />
          ))}
        </ul>
        {prov.recordsLoading && <div className="jp-scandeck-loading">Loading…</div>}
        {!prov.recordsLoading && prov.records.length < prov.recordsTotal && (
          <button
            className="jp-scandeck-button jp-scandeck-more"
            data-action="more-records"
            onClick={() => void model.provenance.loadRecords(true)}
          >
            Load more
          </button>
        )}
      </div>
    </div>
  );
}
