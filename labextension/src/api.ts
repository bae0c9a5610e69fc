/**
 * Typed requests to the scandeck server extension (see ../API.md).
 *
 * Every request goes through `requestAPI`, which turns the server's error
 * bodies (`{"error", "message", "position"?, "query"?}`) into `ScandeckAPIError`
 * so the views can show the message (and a caret for query errors) instead of
 * a stack trace.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The API's URL prefix, under the server's base URL. */
export const API_PATH = 'scandeck/api';

/** An error answer of the server, or a failure to reach it. */
export class ScandeckAPIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly kind: string,
    readonly position: number | null = null,
    readonly query: string | null = null
  ) {
    super(message);
    this.name = 'ScandeckAPIError';
  }

  /** Whether the error is a bad query (shown under the search box). */
  get isQueryError(): boolean {
    return (
      this.status === 400 && (this.kind === 'QuerySyntaxError' || this.kind === 'InvalidQuery')
    );
  }
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What the server answers on an error (a JSON object; any field may be missing). */
interface IErrorBody {
  error?: unknown;
  message?: unknown;
  reason?: unknown;
  position?: unknown;
  query?: unknown;
}

export type Params = Record<string, string | number | string[] | null | undefined>;

/** `?a=1&b=x&b=y`: null and undefined values left out, a list repeats its key. */
export function queryString(params: Params): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined) {
      continue;
    }
    for (const item of Array.isArray(value) ? value : [value]) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(item))}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * Make a request to the scandeck API and decode its JSON answer.
 *
 * @param endPoint path under `scandeck/api/`, e.g. `runs/abc123/preview`
 * @param init fetch options (method, body)
 * @param params query parameters; null and undefined values are left out
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  params: Params = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, endPoint) + queryString(params);
  if (
    init.body !== undefined &&
    !(init.headers as Record<string, string> | undefined)?.['Content-Type']
  ) {
    init = {
      ...init,
      headers: { ...(init.headers ?? {}), 'Content-Type': 'application/json' }
    };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ScandeckAPIError(
      `Cannot reach the Jupyter server: ${String(error)}`,
      0,
      'NetworkError'
    );
  }
  const text = await response.text();
  let data: IErrorBody | null = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 404 && (data === null || !data.error)) {
      throw new ScandeckAPIError(
        'The scandeck server extension does not answer (404). Enable it with ' +
          '`jupyter server extension enable scandeck.server` and restart JupyterLab.',
        404,
        'ServerExtensionMissing'
      );
    }
    const message =
      data?.message ?? data?.reason ?? `${response.status} ${response.statusText || 'error'}`;
    throw new ScandeckAPIError(
      String(message),
      response.status,
      String(data?.error ?? 'HTTPError'),
      typeof data?.position === 'number' ? data.position : null,
      typeof data?.query === 'string' ? data.query : null
    );
  }
  return data as T;
}

// ---------------------------------------------------------------- types

export interface ICatalogInfo {
  name: string;
  label: string;
  description?: string;
  uri?: string;
}

export interface ICatalogs {
  catalogs: ICatalogInfo[];
  default: string;
  /** Set by the demo: activate the panel on start-up. */
  open_panel?: boolean;
}

export type RunStatus = 'running' | 'success' | 'abort' | 'fail' | 'incomplete' | string;

export interface IRunSummary {
  uid: string;
  scan_id: number | null;
  time: number;
  plan_name: string | null;
  sample?: string | null;
  operator?: string | null;
  purpose?: string | null;
  status: RunStatus;
  num_events: number;
  num_points: number | null;
  duration: number | null;
  /** A derived run: the runs it came from (its start document's `parent_uids`). */
  parent_uids?: string[];
  /** A watched run (`scandeck watch`): its files so far and the newest one's relative path. */
  files?: IWatchedFiles;
}

/** RUN's `files`: events so far (one per complete file version) and the newest event's `path`. */
export interface IWatchedFiles {
  count: number;
  newest: string | null;
}

/** A watched run's detail `watch`: what its watcher watched, as text. */
export interface IWatch {
  roots: string[];
  patterns: string[];
  host: string | null;
  run_per: string | null;
  part: string | null;
  transfer: boolean;
}

/** A run named as a parent: what the panel shows of it (`missing`: not in the catalog). */
export interface IParentRef {
  uid: string;
  scan_id?: number | null;
  plan_name?: string | null;
  status?: RunStatus;
  time?: number;
  missing?: boolean;
}

export interface IRunsPage {
  runs: IRunSummary[];
  live?: IRunSummary[];
  total: number;
  next: string | null;
  /** When nothing matched: the fields no run has, with the closest known ones. */
  hint?: string | null;
  /** The parents the page's derived runs name that the page does not list, by uid. */
  parents?: Record<string, IParentRef>;
}

/** A node of a live derived run's pipeline, in words (`GET runs/UID`'s `pipeline.steps`). */
export interface IPipelineStep {
  type: string;
  function?: string | null;
  qualname?: string | null;
  module?: string | null;
  sha256?: string | null;
  stream?: string | null;
  run?: string | null;
  key?: string | null;
}

export interface IPipeline {
  summary: string | null;
  steps: IPipelineStep[];
  more_steps: boolean;
  format: string | null;
}

export interface IDataKey {
  key: string;
  dtype: string;
  shape: number[];
  units: string | null;
  source?: string;
  external?: boolean;
}

export interface IStreamInfo {
  name: string;
  num_events: number;
  data_keys: IDataKey[];
}

export interface IRunDetail {
  run: IRunSummary;
  start: Record<string, unknown>;
  stop: Record<string, unknown> | null;
  streams: IStreamInfo[];
  /** The cells of `GET runs/UID/code`; null for a run code must not name (its uid is not uuid-like). */
  code: ICode | null;
  /** The run's computed cells (every computed column), when its store keeps them. */
  cells?: Record<string, ITableCell>;
  /** The runs it came from (a derived run), in its start document's order. */
  parents?: IParentRef[];
  /** The pipeline it came from (a live derived run, `to_run`), else null. */
  pipeline?: IPipeline | null;
  /** The runs derived from it, newest first (at most 50; `derived_more` when there are more). */
  derived?: IRunSummary[];
  derived_more?: boolean;
  /** A watched run: its watcher's roots, patterns and host. */
  watch?: IWatch;
}

/** Cells: `load` reads the run, `bind` is a `%%bind` cell, `setup` what `bind` needs first. */
export interface ICode {
  load: string;
  bind: string;
  setup?: string;
}

export interface IRunCode {
  run: IRunSummary;
  code: ICode;
}

export interface ISeries {
  name: string;
  values: Array<number | null>;
}

/** A 2-D scan's map (see API.md): a grid scan's cells, rows of `y`, or points coloured by `z`. */
export type IMap =
  | {
      kind: 'grid';
      x: ISeries;
      y: ISeries;
      z: { name: string; values: Array<Array<number | null>> };
      shape: number[];
    }
  | { kind: 'scatter'; x: ISeries; y: ISeries; z: ISeries };

export interface IPreview {
  stream: string;
  x: ISeries;
  y: ISeries[];
  num_events: number;
  map?: IMap;
  /** A watched run's preview: the relative path of the file shown (its newest). */
  file?: string | null;
  /** Keys left out of the plot, and why (a file that could not be read). */
  skipped?: Array<{ name: string; reason: string }>;
}

export interface IScanRef {
  uid: string;
  scan_id?: number | null;
  [key: string]: unknown;
}

export interface IProvRecord {
  id: string;
  kind: 'interactive' | 'batch' | 'rerun' | string;
  created: string;
  notebook: string;
  name?: string | null;
  status: 'ok' | 'failed' | string;
  parameters: Record<string, unknown>;
  inputs: IScanRef[];
  outputs: IScanRef[];
  parent: string | null;
  error: Record<string, unknown> | null;
}

export interface IProvPage {
  records: IProvRecord[];
  total: number;
}

export interface IJobResult {
  uid: string;
  scan_id: number | null;
  status: string;
  output: string | null;
  error: string | Record<string, unknown> | null;
}

export interface IJob {
  id: string;
  record: string;
  /** The record's name (the server adds it). */
  name?: string | null;
  catalog: string;
  scans: string[];
  total: number;
  /** Scans finished, the failed ones included. */
  done: number;
  failed: number;
  status: 'running' | 'success' | 'failed' | 'cancelled' | string;
  started: string;
  finished: string | null;
  results: IJobResult[];
  output_dir: string;
  /** Why a job failed as a whole (the server adds it). */
  message?: string | null;
}

// ---------------------------------------------------------------- calls

export function getCatalogs(): Promise<ICatalogs> {
  return requestAPI<ICatalogs>('catalogs');
}

export function getRuns(
  catalog: string,
  q: string,
  limit: number,
  before: string | null = null
): Promise<IRunsPage> {
  return requestAPI<IRunsPage>('runs', {}, { catalog, q, limit, before });
}

export function getRun(catalog: string, uid: string): Promise<IRunDetail> {
  return requestAPI<IRunDetail>(`runs/${encodeURIComponent(uid)}`, {}, { catalog });
}

/** The cells to insert for a run; a 400 `UnsafeValue` (its message says why) when code must not name it. */
export function getRunCode(catalog: string, uid: string): Promise<IRunCode> {
  return requestAPI<IRunCode>(`runs/${encodeURIComponent(uid)}/code`, {}, { catalog });
}

/** A stream's preview; without `stream`, the server's choice: `primary`, or a watched run's newest file. */
export function getPreview(
  catalog: string,
  uid: string,
  stream: string | null = null,
  maxPoints = 500
): Promise<IPreview> {
  return requestAPI<IPreview>(
    `runs/${encodeURIComponent(uid)}/preview`,
    {},
    { catalog, stream, max_points: maxPoints }
  );
}

export function getProvenance(limit = 50, offset = 0): Promise<IProvPage> {
  return requestAPI<IProvPage>('provenance', {}, { limit, offset });
}

export function openProvenance(id: string): Promise<{ path: string }> {
  return requestAPI<{ path: string }>(`provenance/${encodeURIComponent(id)}/open`, {
    method: 'POST',
    body: '{}'
  });
}

export function startRerun(body: {
  record: string;
  scans: string[];
  catalog: string;
  workers?: number;
}): Promise<{ job: IJob }> {
  return requestAPI<{ job: IJob }>('reruns', {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

export function getJobs(): Promise<{ jobs: IJob[] }> {
  return requestAPI<{ jobs: IJob[] }>('reruns');
}

export function cancelJob(id: string): Promise<unknown> {
  return requestAPI<unknown>(`reruns/${encodeURIComponent(id)}`, {
    method: 'DELETE'
  });
}

// ---------------------------------------------------------------- standing analyses

/** A run a standing analysis reran (or is rerunning). */
export interface IStandingRun {
  uid: string;
  scan_id: number | null;
  state: 'done' | 'failed' | 'running' | string;
  record_id: string | null;
  message: string;
  /** What the rerun published with `scandeck.glue`. */
  values: Record<string, unknown>;
}

/** How a standing analysis stands, seen from this server. */
export type StandingState =
  'running' | 'standby' | 'stopping' | 'failed' | 'elsewhere' | 'stopped' | string;

/** A standing analysis: a record rerun on every new run that matches a query (see ../API.md). */
export interface IStanding {
  id: string;
  record: string;
  name: string;
  query: string;
  catalog: string;
  status: 'success' | 'fail' | 'abort' | 'any' | string;
  managed: boolean;
  counts: { open: number; pending: number; running: number; done: number; failed: number };
  holder: string | null;
  here: boolean;
  state: StandingState;
  error: string | null;
  latest: IStandingRun[];
}

export function getStanding(): Promise<{ analyses: IStanding[] }> {
  return requestAPI<{ analyses: IStanding[] }>('auto');
}

export function startStanding(body: {
  record: string;
  query: string;
  catalog: string | null;
  status: string;
  workers?: number;
}): Promise<{ analysis: IStanding }> {
  return requestAPI<{ analysis: IStanding }>('auto', {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

export function stopStanding(id: string): Promise<{ analysis: IStanding }> {
  return requestAPI<{ analysis: IStanding }>(`auto/${encodeURIComponent(id)}/stop`, {
    method: 'POST',
    body: '{}'
  });
}

// ---------------------------------------------------------------- the run table

/** How a table cell stands: a fresh value, an old one, an error, or no value (yet). */
export type CellState = 'ok' | 'stale' | 'failed' | 'running' | 'pending' | 'missing' | string;

export interface ITableCell {
  value: unknown;
  state: CellState;
  error: string | null;
}

/** A column the table can show (`GET columns`), or one it shows (`GET table`). */
export interface IColumnInfo {
  name: string;
  title: string;
  units: string | null;
  /** computed (a columns file), builtin, annotation (tags, comments), start, stop, data, run. */
  kind: string;
}

export interface IColumnsAnswer {
  columns: IColumnInfo[];
  /** Whether the catalog's store keeps tags, comments and computed cells. */
  facts: boolean;
  /** The columns a table shows when the user picked none. */
  default: string[];
}

/** `GET table`: a runs page, plus the picked columns' cells of each run listed. */
export interface ITablePage extends IRunsPage {
  columns: IColumnInfo[];
  cells: Record<string, Record<string, ITableCell>>;
  /** Why there are no cells: the catalog's columns file does not load (its path and line). */
  columns_error?: string;
}

export interface IComment {
  text: string;
  author: string;
  host: string;
  time: number;
}

/** A run's tags and comments (`GET` / `POST runs/UID/annotations`). */
export interface IAnnotations {
  uid: string;
  tags: string[];
  comments: IComment[];
}

export function getColumns(catalog: string): Promise<IColumnsAnswer> {
  return requestAPI<IColumnsAnswer>('columns', {}, { catalog });
}

export function getTable(
  catalog: string,
  q: string,
  columns: string[],
  limit: number,
  before: string | null = null
): Promise<ITablePage> {
  return requestAPI<ITablePage>(
    'table',
    {},
    { catalog, q, columns: columns.join(','), limit, before }
  );
}

/** The cells of the given runs only (after a `facts` push). */
export function getTableCells(
  catalog: string,
  columns: string[],
  uids: string[]
): Promise<ITablePage> {
  return requestAPI<ITablePage>('table', {}, { catalog, columns: columns.join(','), uid: uids });
}

export function getAnnotations(catalog: string, uid: string): Promise<IAnnotations> {
  return requestAPI<IAnnotations>(`runs/${encodeURIComponent(uid)}/annotations`, {}, { catalog });
}

export function annotate(
  catalog: string,
  uid: string,
  change: { comment?: string; tags?: string[]; untag?: string[] }
): Promise<IAnnotations> {
  return requestAPI<IAnnotations>(
    `runs/${encodeURIComponent(uid)}/annotations`,
    { method: 'POST', body: JSON.stringify(change) },
    { catalog }
  );
}

/**
 * Download the current search as CSV: fetched with the session's credentials (as every
 * request), handed to the browser as a file named by the server.
 */
export async function downloadTableCsv(
  catalog: string,
  q: string,
  columns: string[],
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<string> {
  const url =
    URLExt.join(settings.baseUrl, API_PATH, 'table.csv') +
    queryString({ catalog, q, columns: columns.join(',') });
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new ScandeckAPIError(
      `Cannot reach the Jupyter server: ${String(error)}`,
      0,
      'NetworkError'
    );
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText || 'error'}`;
    let kind = 'HTTPError';
    try {
      const body = (await response.json()) as IErrorBody;
      message = String(body.message ?? message);
      kind = String(body.error ?? kind);
    } catch {
      // not JSON: the status line says it
    }
    throw new ScandeckAPIError(message, response.status, kind);
  }
  const blob = await response.blob();
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'scans.csv';
  const href = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = href;
  link.download = name;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return name;
}
