/**
 * The state of the Scans panel: catalogs, the paged run list with its live
 * runs, the selection and its detail; `provenance` holds the Provenance tab's state.
 *
 * Views read it and re-render on `changed`; only the model talks to the server.
 * Live updates come from the push channel (`PushClient`), never from polling.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';
import { errorMessage as messageOf, ScandeckAPIError } from './api';
import { ProvenanceModel } from './provenanceModel';
import { PushClient } from './push';

export type Tab = 'runs' | 'provenance';

/** What the panel keeps across reloads (IStateDB). */
export interface IPanelState {
  catalog: string;
  query: string;
  tab: Tab;
  selected: string | null;
}

export interface INotice {
  text: string;
  kind: 'info' | 'error' | 'success';
}

export const PAGE_SIZE = 50;
const SEARCH_DEBOUNCE_MS = 300;
const HEAD_MERGE_DEBOUNCE_MS = 500;
const DETAIL_REFRESH_MS = 1000;

function byTimeDesc(a: api.IRunSummary, b: api.IRunSummary): number {
  return b.time - a.time;
}

export class ScansModel implements IDisposable {
  constructor(readonly push: PushClient = new PushClient()) {
    this.provenance = new ProvenanceModel((text, kind) => this.notify(text, kind));
    this.provenance.changed.connect(() => this._emit());
    push.runChanged.connect((_, run) => this._onRunPushed(run));
    push.jobChanged.connect((_, job) => this.provenance.onJobPushed(job));
    push.reconnected.connect(() => this._scheduleHeadMerge(0));
    push.stateChanged.connect(() => this._emit());
  }

  /** Any change that views show. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A change of what `state` returns (catalog, query, tab, selection). */
  get stateChanged(): ISignal<this, IPanelState> {
    return this._stateChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.push.stop();
    this.provenance.dispose();
    for (const timer of [this._searchTimer, this._headTimer, this._detailTimer]) {
      if (timer !== null) {
        clearTimeout(timer);
      }
    }
    Signal.clearData(this);
  }

  // ------------------------------------------------------------ state

  catalogs: api.ICatalogInfo[] = [];
  catalog = '';
  /** Set when the server says to show the panel on start-up (the demo). */
  openPanel = false;
  /** Set when the server extension cannot be reached at all. */
  serverError: string | null = null;
  ready = false;

  query = '';
  queryError: ScandeckAPIError | null = null;
  live: api.IRunSummary[] = [];
  runs: api.IRunSummary[] = [];
  total = 0;
  /** Why the search matched nothing: a field no run has (a typo?), from the server. */
  searchHint: string | null = null;
  next: string | null = null;
  loading = false;
  listError: string | null = null;

  selected: string | null = null;
  checked = new Set<string>();
  detail: api.IRunDetail | null = null;
  detailError: string | null = null;
  preview: api.IPreview | null = null;
  previewError: string | null = null;

  tab: Tab = 'runs';

  /** Records, rerun jobs and the last provenance save (the Provenance tab). */
  readonly provenance: ProvenanceModel;

  notice: INotice | null = null;

  get state(): IPanelState {
    return {
      catalog: this.catalog,
      query: this.query,
      tab: this.tab,
      selected: this.selected
    };
  }

  /** The runs to show: live ones on top, then the loaded pages. */
  get displayRuns(): api.IRunSummary[] {
    if (this._displayVersion !== this._version) {
      const liveUids = new Set(this.live.map(r => r.uid));
      this._display = [...this.live, ...this.runs.filter(r => !liveUids.has(r.uid))];
      this._displayVersion = this._version;
    }
    return this._display;
  }

  /** The selected run's summary, if it is loaded. */
  get selectedRun(): api.IRunSummary | null {
    if (this.selected === null) {
      return null;
    }
    return this.displayRuns.find(r => r.uid === this.selected) ?? this.detail?.run ?? null;
  }

  // ------------------------------------------------------------ start-up

  /** Load the catalogs, restore the saved state and load the first page. */
  async init(saved?: Partial<IPanelState> | null): Promise<void> {
    if (saved) {
      this.query = saved.query ?? '';
      this.tab = saved.tab === 'provenance' ? 'provenance' : 'runs';
      this.selected = saved.selected ?? null;
    }
    try {
      const answer = await api.getCatalogs();
      this.catalogs = answer.catalogs;
      this.openPanel = Boolean(answer.open_panel);
      const names = new Set(answer.catalogs.map(c => c.name));
      this.catalog =
        saved?.catalog !== undefined && names.has(saved.catalog) ? saved.catalog : answer.default;
      this.serverError = null;
    } catch (error) {
      this.serverError = messageOf(error);
      this.ready = true;
      this._emit();
      return;
    }
    this.ready = true;
    this.push.start(this.catalog);
    this._emit();
    const loads: Promise<unknown>[] = [this.reload(), this.provenance.loadJobs()];
    if (this.selected) {
      loads.push(this._loadDetail(this.selected));
    }
    if (this.tab === 'provenance') {
      loads.push(this.provenance.loadRecords());
    }
    await Promise.all(loads);
  }

  // ------------------------------------------------------------ runs

  setCatalog(name: string): void {
    if (name === this.catalog) {
      return;
    }
    this.catalog = name;
    this.selected = null;
    this.detail = null;
    this.preview = null;
    this.checked.clear();
    this.push.start(name);
    this._stateChanged.emit(this.state);
    void this.reload();
  }

  /** Set the search text; the search runs once typing pauses. */
  setQuery(query: string): void {
    this.query = query;
    this._stateChanged.emit(this.state);
    if (this._searchTimer !== null) {
      clearTimeout(this._searchTimer);
    }
    this._searchTimer = window.setTimeout(() => {
      this._searchTimer = null;
      void this.reload();
    }, SEARCH_DEBOUNCE_MS);
    this._emit();
  }

  /**
   * Search now (Enter): the search that typing scheduled runs at once instead,
   * never as well; a query the server has just refused is not sent again.
   */
  search(): void {
    if (this._searchTimer !== null) {
      clearTimeout(this._searchTimer);
      this._searchTimer = null;
    } else if (this.queryError && this._answeredQuery === this.query) {
      return;
    }
    void this.reload();
  }

  /** Load the first page again, dropping the loaded pages. */
  async reload(): Promise<void> {
    const seq = ++this._runsSeq;
    const query = this.query;
    this.loading = true;
    this._emit();
    try {
      const page = await api.getRuns(this.catalog, query, PAGE_SIZE);
      if (seq !== this._runsSeq) {
        return;
      }
      this._answeredQuery = query;
      this.queryError = null;
      this.listError = null;
      this.searchHint = page.hint ?? null;
      this.live = (page.live ?? []).slice().sort(byTimeDesc);
      this.runs = page.runs;
      this.total = page.total;
      this.next = page.next;
    } catch (error) {
      if (seq !== this._runsSeq) {
        return;
      }
      this._answeredQuery = query;
      this.searchHint = null;
      if (error instanceof ScandeckAPIError && error.isQueryError) {
        this.queryError = error;
      } else {
        this.listError = messageOf(error);
      }
    } finally {
      if (seq === this._runsSeq) {
        this.loading = false;
        this._touch();
      }
    }
  }

  /** Load the next page (infinite scrolling); no-op at the end or while loading. */
  async loadMore(): Promise<void> {
    if (this.loading || this.next === null || this.queryError) {
      return;
    }
    const seq = this._runsSeq;
    const before = this.next;
    this.loading = true;
    this._emit();
    try {
      const page = await api.getRuns(this.catalog, this.query, PAGE_SIZE, before);
      if (seq !== this._runsSeq) {
        return;
      }
      const known = new Set(this.runs.map(r => r.uid));
      this.runs = [...this.runs, ...page.runs.filter(r => !known.has(r.uid))];
      this.total = page.total;
      this.next = page.next;
      this.listError = null;
    } catch (error) {
      if (seq === this._runsSeq) {
        this.listError = messageOf(error);
      }
    } finally {
      if (seq === this._runsSeq) {
        this.loading = false;
        this._touch();
      }
    }
  }

  /** Refresh everything the panel shows (the refresh command). */
  async refresh(): Promise<void> {
    if (!this.ready || this.serverError) {
      this.ready = false;
      this._emit();
      await this.init(this.state);
      return;
    }
    const loads: Promise<unknown>[] = [this.reload(), this.provenance.loadJobs()];
    if (this.selected) {
      loads.push(this._loadDetail(this.selected));
    }
    if (this.tab === 'provenance' || this.provenance.recordsLoaded) {
      loads.push(this.provenance.loadRecords());
    }
    await Promise.all(loads);
  }

  select(uid: string | null): void {
    if (uid === this.selected) {
      return;
    }
    this.selected = uid;
    this.detail = null;
    this.preview = null;
    this.detailError = null;
    this.previewError = null;
    this._stateChanged.emit(this.state);
    this._emit();
    if (uid) {
      void this._loadDetail(uid);
    }
  }

  /** Check or uncheck a run for reruns (multi-selection). */
  toggleChecked(uid: string, on?: boolean): void {
    const want = on ?? !this.checked.has(uid);
    if (want) {
      this.checked.add(uid);
    } else {
      this.checked.delete(uid);
    }
    this._emit();
  }

  clearChecked(): void {
    this.checked.clear();
    this._emit();
  }

  setTab(tab: Tab): void {
    if (tab === this.tab) {
      return;
    }
    this.tab = tab;
    this._stateChanged.emit(this.state);
    this._emit();
    if (tab === 'provenance' && !this.provenance.recordsLoaded && !this.provenance.recordsLoading) {
      void this.provenance.loadRecords();
    }
  }

  notify(text: string, kind: INotice['kind'] = 'info'): void {
    this.notice = { text, kind };
    this._emit();
  }

  clearNotice(): void {
    this.notice = null;
    this._emit();
  }

  private async _loadDetail(uid: string): Promise<void> {
    const catalog = this.catalog;
    this._detailFetched = Date.now();
    const [detail, preview] = await Promise.allSettled([
      api.getRun(catalog, uid),
      api.getPreview(catalog, uid)
    ]);
    if (uid !== this.selected || catalog !== this.catalog) {
      return;
    }
    if (detail.status === 'fulfilled') {
      this.detail = detail.value;
      this.detailError = null;
    } else {
      this.detailError = messageOf(detail.reason);
    }
    if (preview.status === 'fulfilled') {
      this.preview = preview.value;
      this.previewError = null;
    } else {
      this.previewError = messageOf(preview.reason);
    }
    this._emit();
  }

  /** Fetch the selected run's detail again, at most once a second while it runs. */
  private _refreshDetailSoon(final: boolean): void {
    const uid = this.selected;
    if (!uid) {
      return;
    }
    if (this._detailTimer !== null) {
      if (!final) {
        return;
      }
      clearTimeout(this._detailTimer);
    }
    const wait = final ? 0 : Math.max(0, this._detailFetched + DETAIL_REFRESH_MS - Date.now());
    this._detailTimer = window.setTimeout(() => {
      this._detailTimer = null;
      if (this.selected === uid) {
        void this._loadDetail(uid);
      }
    }, wait);
  }

  private _onRunPushed(run: api.IRunSummary): void {
    const running = run.status === 'running';
    const liveIndex = this.live.findIndex(r => r.uid === run.uid);
    const pageIndex = this.runs.findIndex(r => r.uid === run.uid);
    const known = liveIndex >= 0 || pageIndex >= 0;
    if (known) {
      // It matched the query when it was listed; update it where it is.
      if (pageIndex >= 0) {
        this.runs = this.runs.slice();
        this.runs[pageIndex] = run;
      }
      if (liveIndex >= 0) {
        this.live = this.live.slice();
        if (running) {
          this.live[liveIndex] = run;
        } else {
          this.live.splice(liveIndex, 1);
          if (pageIndex < 0) {
            this._insertRun(run);
          }
        }
      } else if (running) {
        this.live = [run, ...this.live].sort(byTimeDesc);
      }
      this._touch();
    } else if (this.query.trim() === '' && !this.queryError) {
      // Every run matches the empty query: a new run goes straight in.
      if (running) {
        this.live = [run, ...this.live].sort(byTimeDesc);
      } else {
        this._insertRun(run);
      }
      this.total += 1;
      this._touch();
    } else {
      // Only the server knows whether it matches the query.
      this._scheduleHeadMerge(HEAD_MERGE_DEBOUNCE_MS);
    }
    if (run.uid === this.selected) {
      this._refreshDetailSoon(!running);
    }
  }

  /** Put a finished run into the loaded pages at its place by start time. */
  private _insertRun(run: api.IRunSummary): void {
    const oldest = this.runs[this.runs.length - 1];
    if (this.next !== null && oldest && run.time < oldest.time) {
      return; // beyond the loaded pages: it comes with a later page
    }
    const runs = this.runs.filter(r => r.uid !== run.uid);
    const at = runs.findIndex(r => r.time < run.time);
    runs.splice(at < 0 ? runs.length : at, 0, run);
    this.runs = runs;
  }

  /**
   * Fetch the first page again and merge it with the loaded pages, keeping the
   * older loaded runs (and so the scroll position) where a reload would drop them.
   */
  private _scheduleHeadMerge(wait: number): void {
    if (this._headTimer !== null) {
      return;
    }
    this._headTimer = window.setTimeout(() => {
      this._headTimer = null;
      void this._mergeHead();
    }, wait);
  }

  private async _mergeHead(): Promise<void> {
    if (!this.ready || this.serverError || this.queryError) {
      return;
    }
    const seq = this._runsSeq;
    let page: api.IRunsPage;
    try {
      page = await api.getRuns(this.catalog, this.query, PAGE_SIZE);
    } catch {
      return; // the next push or a refresh tries again
    }
    if (seq !== this._runsSeq) {
      return;
    }
    const head = page.runs;
    const last = head[head.length - 1];
    const headUids = new Set(head.map(r => r.uid));
    const older = last ? this.runs.filter(r => !headUids.has(r.uid) && r.time < last.time) : [];
    const hadMorePages = this.runs.length > head.length;
    this.runs = [...head, ...older];
    this.live = (page.live ?? []).slice().sort(byTimeDesc);
    this.total = page.total;
    if (!hadMorePages) {
      this.next = page.next;
    }
    if (page.next === null) {
      this.next = null;
    }
    this._touch();
  }

  // ------------------------------------------------------------ provenance

  /** Start a rerun of the record picked in the Provenance tab on the checked runs. */
  startRerun(): Promise<void> {
    return this.provenance.startRerun([...this.checked], this.catalog);
  }

  // ------------------------------------------------------------ plumbing

  /** A change of the run lists (invalidates `displayRuns`). */
  private _touch(): void {
    this._version += 1;
    this._emit();
  }

  private _emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
  private _stateChanged = new Signal<this, IPanelState>(this);
  private _runsSeq = 0;
  private _version = 0;
  private _displayVersion = -1;
  private _display: api.IRunSummary[] = [];
  private _searchTimer: number | null = null;
  /** The query text of the last answer (runs or an error). */
  private _answeredQuery: string | null = null;
  private _headTimer: number | null = null;
  private _detailTimer: number | null = null;
  private _detailFetched = 0;
}
