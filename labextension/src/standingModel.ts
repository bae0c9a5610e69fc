/**
 * The standing analyses of the Provenance tab: the list (`GET auto`, polled while
 * the tab shows), starting one for the picked record and stopping one.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';
import { errorMessage, ScandeckAPIError } from './api';

export type Notify = (text: string, kind: 'info' | 'error' | 'success') => void;

/** The exit statuses a standing analysis can wait for (`any`: every ended run). */
export const EXIT_STATUSES = ['success', 'fail', 'abort', 'any'] as const;

/** A query the server refused, with where (for a caret under it). */
export interface IQueryError {
  message: string;
  query: string | null;
  position: number | null;
}

/** What a state means, for a tooltip. */
export function stateTitle(analysis: api.IStanding): string {
  const holder = analysis.holder ?? 'another process';
  switch (analysis.state) {
    case 'running':
      return `This server reruns it on every new matching run (${holder}).`;
    case 'standby':
      return `This server waits as standby: ${holder} runs it; it takes over if that stops.`;
    case 'stopping':
      return 'Stopping: the reruns in flight finish first.';
    case 'failed':
      return `The service stopped on an error: ${analysis.error ?? 'see the server log'}`;
    case 'elsewhere':
      return `Run by ${holder} (a scandeck auto command), not by this server.`;
    default:
      return 'Stopped: nothing reruns it.';
  }
}

/** Whether the panel offers to stop it (this server runs it, or would resume it). */
export function canStop(analysis: api.IStanding): boolean {
  return analysis.state !== 'elsewhere' && (analysis.here || analysis.managed);
}

/** A run's published values as `name = value` texts, at most `max` characters each. */
export function valueTexts(values: Record<string, unknown> | null | undefined, max = 60): string[] {
  return Object.entries(values ?? {}).map(([name, value]) => {
    let text: string;
    try {
      text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? 'null');
    } catch {
      text = String(value);
    }
    const whole = `${name} = ${text}`;
    return whole.length > max ? `${whole.slice(0, max - 1)}…` : whole;
  });
}

export class StandingModel implements IDisposable {
  /**
   * @param notify shows a notice
   * @param onResults called when reruns finished since the last look (they are new records)
   */
  constructor(
    private readonly notify: Notify,
    private readonly onResults: () => void = () => undefined
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (!this._isDisposed) {
      this._isDisposed = true;
      Signal.clearData(this);
    }
  }

  analyses: api.IStanding[] = [];
  loaded = false;
  error: string | null = null;
  starting = false;
  /** Why the last start was refused, shown under the form. */
  startError: IQueryError | null = null;
  /** Ids of the analyses whose stop was asked and not yet answered. */
  stopping = new Set<string>();

  /** Fetch the list; one request at a time (a slow answer is not overtaken by polls). */
  async load(): Promise<void> {
    if (this._loading) {
      return;
    }
    this._loading = true;
    try {
      const answer = await api.getStanding();
      const finished = answer.analyses.reduce((n, a) => n + a.counts.done + a.counts.failed, 0);
      const more = this.loaded && finished > this._finished;
      this._finished = finished;
      this.analyses = answer.analyses;
      this.error = null;
      this.loaded = true;
      if (more) {
        this.onResults();
      }
    } catch (error) {
      this.error = errorMessage(error);
    } finally {
      this._loading = false;
      if (!this._isDisposed) {
        this._changed.emit();
      }
    }
  }

  /** Start (or resume) the standing analysis of `record` in the server. */
  async start(
    record: string | null,
    query: string,
    status: string,
    catalog: string | null
  ): Promise<boolean> {
    if (!record) {
      this.notify('Pick a provenance record first.', 'error');
      return false;
    }
    this.starting = true;
    this.startError = null;
    this._changed.emit();
    try {
      const { analysis } = await api.startStanding({ record, query, status, catalog });
      this._merge(analysis);
      this.notify(`Standing analysis ${analysis.id.slice(0, 8)} started.`, 'success');
      return true;
    } catch (error) {
      this.startError = {
        message: errorMessage(error),
        query: error instanceof ScandeckAPIError && error.isQueryError ? query : null,
        position: error instanceof ScandeckAPIError ? error.position : null
      };
      return false;
    } finally {
      this.starting = false;
      this._changed.emit();
    }
  }

  async stop(id: string): Promise<void> {
    this.stopping.add(id);
    this._changed.emit();
    try {
      const { analysis } = await api.stopStanding(id);
      this._merge(analysis);
    } catch (error) {
      this.notify(`Cannot stop the standing analysis: ${errorMessage(error)}`, 'error');
    } finally {
      this.stopping.delete(id);
      this._changed.emit();
    }
  }

  private _merge(analysis: api.IStanding): void {
    const index = this.analyses.findIndex(a => a.id === analysis.id);
    if (index >= 0) {
      this.analyses = this.analyses.slice();
      this.analyses[index] = analysis;
    } else {
      this.analyses = [analysis, ...this.analyses];
    }
  }

  private _loading = false;
  private _finished = 0;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}
