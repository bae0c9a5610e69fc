/**
 * The Provenance tab's state: records (newest first, paged), the record picked
 * for reruns, rerun jobs (updated by `job` push messages) and the last
 * "Save provenance" result, and the standing analyses (`standing`).
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';
import { errorMessage } from './api';
import { StandingModel } from './standingModel';

const RECORDS_PAGE = 50;

export type Notify = (text: string, kind: 'info' | 'error' | 'success') => void;

export class ProvenanceModel implements IDisposable {
  constructor(private readonly notify: Notify) {
    this.standing = new StandingModel(notify, () => {
      if (this.recordsLoaded && !this.recordsLoading) {
        void this.loadRecords(); // finished reruns are new records
      }
    });
    this.standing.changed.connect(() => this._changed.emit());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (!this._isDisposed) {
      this._isDisposed = true;
      this.standing.dispose();
      Signal.clearData(this);
    }
  }

  /** The standing analyses (a record rerun on every new matching run). */
  readonly standing: StandingModel;
  records: api.IProvRecord[] = [];
  recordsTotal = 0;
  recordsLoaded = false;
  recordsLoading = false;
  recordsError: string | null = null;
  selectedRecord: string | null = null;
  jobs: api.IJob[] = [];
  saving = false;
  saveResult: { text: string; ok: boolean } | null = null;

  /** Load the newest records again, or (`more`) the next page after the loaded ones. */
  async loadRecords(more = false): Promise<void> {
    this.recordsLoading = true;
    this._changed.emit();
    try {
      const offset = more ? this.records.length : 0;
      const page = await api.getProvenance(RECORDS_PAGE, offset);
      this.records = more ? [...this.records, ...page.records] : page.records;
      this.recordsTotal = page.total;
      this.recordsError = null;
      this.recordsLoaded = true;
    } catch (error) {
      this.recordsError = errorMessage(error);
    } finally {
      this.recordsLoading = false;
      this._changed.emit();
    }
  }

  selectRecord(id: string | null): void {
    if (id !== this.selectedRecord) {
      this.selectedRecord = id;
      this._changed.emit();
    }
  }

  async loadJobs(): Promise<void> {
    try {
      const answer = await api.getJobs();
      this.jobs = answer.jobs;
      this._changed.emit();
    } catch {
      // An empty jobs list is better than an error here; starting reruns still works.
    }
  }

  /** Start a rerun of the picked record on `scans` (uids) of `catalog`. */
  async startRerun(scans: string[], catalog: string): Promise<void> {
    const record = this.selectedRecord;
    if (!record) {
      this.notify('Pick a provenance record to rerun first.', 'error');
      return;
    }
    if (scans.length === 0) {
      this.notify('Check the scans to rerun on in the Runs tab first.', 'error');
      return;
    }
    try {
      const { job } = await api.startRerun({ record, scans, catalog });
      this.onJobPushed(job);
      this.notify(
        `Rerun started on ${scans.length} scan${scans.length === 1 ? '' : 's'}.`,
        'success'
      );
    } catch (error) {
      this.notify(`Rerun not started: ${errorMessage(error)}`, 'error');
    }
  }

  async cancelJob(id: string): Promise<void> {
    try {
      await api.cancelJob(id);
      const answer = await api.requestAPI<{ job: api.IJob }>(`reruns/${encodeURIComponent(id)}`);
      this.onJobPushed(answer.job);
    } catch (error) {
      this.notify(`Cannot cancel the rerun: ${errorMessage(error)}`, 'error');
    }
  }

  setSaving(saving: boolean, result: { text: string; ok: boolean } | null = null): void {
    this.saving = saving;
    if (result) {
      this.saveResult = result;
    }
    this._changed.emit();
  }

  /** A job's new state (a push message, or the answer to a request). */
  onJobPushed(job: api.IJob): void {
    const index = this.jobs.findIndex(j => j.id === job.id);
    const before = index >= 0 ? this.jobs[index] : null;
    if (index >= 0) {
      this.jobs = this.jobs.slice();
      this.jobs[index] = job;
    } else {
      this.jobs = [job, ...this.jobs];
    }
    this._changed.emit();
    if (before?.status === 'running' && job.status !== 'running' && this.recordsLoaded) {
      void this.loadRecords(); // finished reruns are new records
    }
  }

  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}
