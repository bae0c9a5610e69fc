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
import { DerivedRows, ITableRow } from './derivedRuns';
import { ProvenanceModel } from './provenanceModel';
import { PushClient } from './push';
import { sortRuns } from './tableSort';

export type Tab = 'runs' | 'provenance';

/** What the panel keeps across reloads (IStateDB). */
export interface IPanelState {
  catalog: string;
  query: string;
  tab: Tab;
  selected: string | null;
  /** The table's columns picked per catalog (absent: the catalog's default columns). */
  columns?: Record<string, string[]>;
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

/** Wait after a `facts` push before fetching the changed cells: a batch of pushes, one request. */
const FACTS_DEBOUNCE_MS = 150;
/** At most this many runs' cells in one request (their uids go in the URL). */
const CELLS_PER_REQUEST = 100;

export class ScansModel implements IDisposable {
  constructor(readonly push: PushClient = new PushClient()) {
    this.provenance = new ProvenanceModel((text, kind) => this.notify(text, kind));
    this.provenance.changed.connect(() => this._emit());
    push.runChanged.connect((_, run) => this._onRunPushed(run));
    push.jobChanged.connect((_, job) => this.provenance.onJobPushed(job));
    push.factsChanged.connect((_, uids) => this._onFactsPushed(uids));
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
    for (const timer of [this._searchTimer, this._headTimer, this._detailTimer, this._factsTimer]) {
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
  /** The selected run's tags and comments; null while loading or when the store keeps none. */
  annotations: api.IAnnotations | null = null;
  annotationsError: string | null = null;

  /** What the column picker offers for the catalog (`GET columns`). */
  available: api.IColumnInfo[] = [];
  /** Whether the catalog's store keeps tags, comments and computed cells. */
  factsSupported = false;
  /** Why the columns cannot be offered (a columns file that does not load), if so. */
  columnsError: string | null = null;
  /** The catalog's default columns (shown while the user picked none). */
  defaultColumns: string[] = [];
  /** The table's columns as the server last described them (titles, units). */
  columnInfo: api.IColumnInfo[] = [];
  /** Cells of the loaded runs: uid -> column -> cell. */
  cells = new Map<string, Record<string, api.ITableCell>>();
  /** Columns picked per catalog (kept across reloads). */
  pickedColumns: Record<string, string[]> = {};
  /** Client-side sort of the loaded rows: a column name (or 'time'), and the direction. */
  sortKey: string | null = null;
  sortDescending = true;

  tab: Tab = 'runs';

  /** Records, rerun jobs and the last provenance save (the Provenance tab). */
  readonly provenance: ProvenanceModel;

  /** Derived runs nested under their parents: folding, and the parents pages name. */
  readonly derived = new DerivedRows();

  notice: INotice | null = null;

  get state(): IPanelState {
    return {
      catalog: this.catalog,
      query: this.query,
      tab: this.tab,
      selected: this.selected,
      columns: this.pickedColumns
    };
  }

  /** The table's columns: those picked for this catalog, else its default ones. */
  get columns(): string[] {
    return this.pickedColumns[this.catalog] ?? this.defaultColumns;
  }

  /** The rows in table order: live runs on top, then the loaded runs, sorted if asked. */
  get tableRuns(): api.IRunSummary[] {
    const runs = this.displayRuns;
    const key = this.sortKey;
    if (key === null) {
      return runs;
    }
    if (
      this._sortedVersion === this._version &&
      this._sortedBy === `${key}:${this.sortDescending}`
    ) {
      return this._sorted;
    }
    this._sorted = sortRuns(runs, key, this.sortDescending, this.cells);
    this._sortedVersion = this._version;
    this._sortedBy = `${key}:${this.sortDescending}`;
    return this._sorted;
  }

  /** The table's rows: `tableRuns` with each derived run nested under its loaded parent. */
  get tableRows(): ITableRow[] {
    return this.derived.rows(this.tableRuns);
  }

  /** Fold or unfold the derived runs under a run (its "▾ 2 derived" button). */
  toggleDerived(uid: string): void {
    this.derived.toggle(uid);
    this._emit();
  }

  /** Sort by a column (a click on its header): ascending first (time: newest first), then the other way. */
  sortBy(key: string | null): void {
    if (key === null) {
      this.sortKey = null;
      this.sortDescending = true;
    } else if (this.sortKey === key) {
      this.sortDescending = !this.sortDescending;
    } else {
      this.sortKey = key;
      this.sortDescending = false;
    }
    this._touch();
  }

  /** Show these columns for the current catalog (the picker); null goes back to the default. */
  setColumns(names: string[] | null): void {
    const picked = { ...this.pickedColumns };
    if (names === null) {
      delete picked[this.catalog];
    } else {
      picked[this.catalog] = names;
    }
    this.pickedColumns = picked;
    if (this.sortKey !== null && this.sortKey !== 'time' && !this.columns.includes(this.sortKey)) {
      this.sortKey = null;
      this.sortDescending = true;
    }
    this._stateChanged.emit(this.state);
    void this.reload();
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
      this.pickedColumns = saved.columns && typeof saved.columns === 'object' ? saved.columns : {};
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
    await this.loadColumns();
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
    this.cells.clear();
    this.sortKey = null;
    this.sortDescending = true;
    this.push.start(name);
    this._stateChanged.emit(this.state);
    void this.loadColumns().then(() => this.reload());
  }

  /**
   * Forget picked columns the catalog no longer offers (a column removed from its columns
   * file, a start field no run has): asked for, they would fail the whole table. The
   * notice says which.
   */
  private _dropGoneColumns(catalog: string): void {
    const picked = this.pickedColumns[catalog];
    if (!picked) {
      return;
    }
    const offered = new Set(this.available.map(c => c.name));
    // data.<key>.min|max and stop.<field> are offered from recent runs only, and never refused.
    const gone = picked.filter(name => !offered.has(name) && !/^(data|stop)\./.test(name));
    if (gone.length) {
      this.pickedColumns = {
        ...this.pickedColumns,
        [catalog]: picked.filter(n => !gone.includes(n))
      };
      this._stateChanged.emit(this.state);
      this.notify(
        `No longer in this catalog, so left out of the table: ${gone.join(', ')}`,
        'info'
      );
    }
  }

  /** What the column picker offers for the current catalog, and its default columns. */
  async loadColumns(): Promise<void> {
    const catalog = this.catalog;
    try {
      const answer = await api.getColumns(catalog);
      if (catalog !== this.catalog) {
        return;
      }
      this.available = answer.columns;
      this.factsSupported = answer.facts;
      this.defaultColumns = answer.default;
      this.columnsError = null;
      this._dropGoneColumns(catalog);
    } catch (error) {
      if (catalog === this.catalog) {
        this.available = [];
        this.defaultColumns = [];
        this.factsSupported = false;
        this.columnsError = messageOf(error);
      }
    }
    this._emit();
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
      const page = await api.getTable(this.catalog, query, this.columns, PAGE_SIZE);
      if (seq !== this._runsSeq) {
        return;
      }
      this._answeredQuery = query;
      this.cells.clear();
      this._takeCells(page);
      this.queryError = null;
      this.listError = null;
      this.searchHint = page.hint ?? null;
      this.live = (page.live ?? []).slice().sort(byTimeDesc);
      this.runs = page.runs;
      this.derived.takeParents(page.parents, true);
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
      const page = await api.getTable(this.catalog, this.query, this.columns, PAGE_SIZE, before);
      if (seq !== this._runsSeq) {
        return;
      }
      this._takeCells(page);
      const known = new Set(this.runs.map(r => r.uid));
      this.runs = [...this.runs, ...page.runs.filter(r => !known.has(r.uid))];
      this.derived.takeParents(page.parents, false);
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
    await this.loadColumns();
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
    this.annotations = null;
    this.annotationsError = null;
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
      api.getPreview(catalog, uid),
      this.factsSupported ? this._loadAnnotations(uid) : Promise.resolve()
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
      if (this.derived.unnamedParents(run, this.displayRuns)) {
        this._scheduleHeadMerge(HEAD_MERGE_DEBOUNCE_MS); // its page names them ("from scan 12")
      }
    } else {
      // Only the server knows whether it matches the query.
      this._scheduleHeadMerge(HEAD_MERGE_DEBOUNCE_MS);
    }
    if (run.uid === this.selected) {
      this._refreshDetailSoon(!running);
    } else if (this.selected !== null && run.parent_uids?.includes(this.selected)) {
      // A run derived from the selected one started or ended: its detail lists it.
      this._refreshDetailSoon(!running || !this.detail?.derived?.some(r => r.uid === run.uid));
    }
    // A run new to the table has no cells yet, and an ended one new values (its stop fields,
    // duration, status): fetch its row. Progress pushes of a running run do not ask again.
    if ((!running || !this.cells.has(run.uid)) && this.columns.length) {
      if (this.displayRuns.some(r => r.uid === run.uid)) {
        this._factsPending.add(run.uid);
        this._scheduleFactsFetch(FACTS_DEBOUNCE_MS);
      }
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
    let page: api.ITablePage;
    try {
      page = await api.getTable(this.catalog, this.query, this.columns, PAGE_SIZE);
    } catch {
      return; // the next push or a refresh tries again
    }
    if (seq !== this._runsSeq) {
      return;
    }
    this._takeCells(page);
    const head = page.runs;
    const last = head[head.length - 1];
    const headUids = new Set(head.map(r => r.uid));
    const older = last ? this.runs.filter(r => !headUids.has(r.uid) && r.time < last.time) : [];
    const hadMorePages = this.runs.length > head.length;
    this.runs = [...head, ...older];
    this.live = (page.live ?? []).slice().sort(byTimeDesc);
    this.derived.takeParents(page.parents, false);
    this.total = page.total;
    if (!hadMorePages) {
      this.next = page.next;
    }
    if (page.next === null) {
      this.next = null;
    }
    this._touch();
  }

  // ------------------------------------------------------------ facts: tags, comments, cells

  /** Add tags to a run (inline chips or the detail). */
  addTags(uid: string, tags: string[]): Promise<boolean> {
    return this._annotate(uid, { tags });
  }

  removeTag(uid: string, tag: string): Promise<boolean> {
    return this._annotate(uid, { untag: [tag] });
  }

  addComment(uid: string, comment: string): Promise<boolean> {
    return this._annotate(uid, { comment });
  }

  private async _annotate(
    uid: string,
    change: { comment?: string; tags?: string[]; untag?: string[] }
  ): Promise<boolean> {
    const catalog = this.catalog;
    try {
      const answer = await api.annotate(catalog, uid, change);
      if (catalog === this.catalog && uid === this.selected) {
        this.annotations = answer;
        this.annotationsError = null;
      }
    } catch (error) {
      this.notify(messageOf(error), 'error');
      return false;
    }
    // The push tells every other client; this one fetches the row now.
    this._factsPending.add(uid);
    this._scheduleFactsFetch(0);
    return true;
  }

  private async _loadAnnotations(uid: string): Promise<void> {
    const catalog = this.catalog;
    try {
      const answer = await api.getAnnotations(catalog, uid);
      if (catalog === this.catalog && uid === this.selected) {
        this.annotations = answer;
        this.annotationsError = null;
      }
    } catch (error) {
      if (catalog === this.catalog && uid === this.selected) {
        this.annotations = null;
        this.annotationsError = messageOf(error);
      }
    }
  }

  private _takeCells(page: api.ITablePage): void {
    if (page.columns_error !== undefined || this.columnsError !== null) {
      this.columnsError = page.columns_error ?? null;
    }
    if (page.columns) {
      this.columnInfo = page.columns;
    }
    for (const [uid, row] of Object.entries(page.cells ?? {})) {
      this.cells.set(uid, row);
    }
  }

  private _onFactsPushed(uids: string[]): void {
    const loaded = new Set(this.displayRuns.map(r => r.uid));
    for (const uid of uids) {
      if (loaded.has(uid)) {
        this._factsPending.add(uid);
      }
    }
    if (this._factsPending.size) {
      this._scheduleFactsFetch(FACTS_DEBOUNCE_MS);
    }
    if (this.selected !== null && uids.includes(this.selected)) {
      const uid = this.selected;
      void this._loadAnnotations(uid).then(() => this._emit());
      this._refreshDetailSoon(true);
    }
  }

  private _scheduleFactsFetch(wait: number): void {
    if (this._factsTimer !== null) {
      return;
    }
    this._factsTimer = window.setTimeout(() => {
      this._factsTimer = null;
      void this._fetchFacts();
    }, wait);
  }

  /** Fetch the cells of the runs whose facts changed, in batches. */
  private async _fetchFacts(): Promise<void> {
    const uids = [...this._factsPending];
    this._factsPending.clear();
    const catalog = this.catalog;
    const columns = this.columns;
    if (!uids.length || !columns.length) {
      return;
    }
    for (let i = 0; i < uids.length; i += CELLS_PER_REQUEST) {
      try {
        const page = await api.getTableCells(
          catalog,
          columns,
          uids.slice(i, i + CELLS_PER_REQUEST)
        );
        if (catalog !== this.catalog || columns !== this.columns) {
          return;
        }
        this._takeCells(page);
        this._touch();
      } catch (error) {
        console.warn('scandeck: cannot fetch changed cells', error);
      }
    }
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
  private _factsTimer: number | null = null;
  private _factsPending = new Set<string>();
  private _sorted: api.IRunSummary[] = [];
  private _sortedVersion = -1;
  private _sortedBy = '';
}
