/**
 * Derived runs in the run table: a run whose start names its parents (`parent_uids`)
 * is nested under the first of them that is loaded, one level deeper than it; a
 * derived run whose parents are not loaded stays a row of its own, marked with where
 * it came from. All of it is done with the loaded rows (no request per row): the
 * server sends `parent_uids` with every run, and with each page the scans it names
 * that the page does not list (`parents`).
 */
import { IParentRef, IPipelineStep, IRunSummary } from './api';

/** A row of the table: a run, how deep it is nested, and what it derives from or to. */
export interface ITableRow {
  run: IRunSummary;
  /** 0 for a top-level row, 1 under its parent, 2 under that one's parent, ... */
  depth: number;
  /** The uid of the row it is nested under, if any. */
  nestedUnder: string | null;
  /** Runs nested directly under this one (shown or folded). */
  derivedCount: number;
  /** Whether its derived runs are folded away. */
  folded: boolean;
  /** Parents that are not rows of the table (a top-level derived run says where it came from). */
  absentParents: string[];
}

/** The parents a run names (the server sends only strings; anything else is ignored). */
export function parentsOf(run: IRunSummary): string[] {
  const uids = run.parent_uids;
  return Array.isArray(uids) ? uids.filter(u => typeof u === 'string' && u !== run.uid) : [];
}

/**
 * The table's rows for `runs` (in their order: live, loaded pages, sorted if asked):
 * each derived run right after its parent (its siblings in their order), nested
 * under the first of its parents that is loaded. A parent chain that loops (a store
 * written by hand) is cut where it would close. Runs under a folded parent are left out.
 */
export function groupRuns(runs: IRunSummary[], folded: ReadonlySet<string>): ITableRow[] {
  const byUid = new Map<string, IRunSummary>();
  for (const run of runs) {
    if (!byUid.has(run.uid)) {
      byUid.set(run.uid, run);
    }
  }
  const parentOf = new Map<string, string>();
  const isAncestor = (maybe: string, of: string): boolean => {
    for (let at: string | undefined = of; at !== undefined; at = parentOf.get(at)) {
      if (at === maybe) {
        return true;
      }
    }
    return false;
  };
  for (const run of byUid.values()) {
    // The first loaded parent that does not make a loop (run an ancestor of it).
    const parent = parentsOf(run).find(uid => byUid.has(uid) && !isAncestor(run.uid, uid));
    if (parent !== undefined) {
      parentOf.set(run.uid, parent);
    }
  }
  const children = new Map<string, IRunSummary[]>();
  for (const run of byUid.values()) {
    const parent = parentOf.get(run.uid);
    if (parent !== undefined) {
      const list = children.get(parent) ?? [];
      list.push(run);
      children.set(parent, list);
    }
  }
  const rows: ITableRow[] = [];
  const visit = (run: IRunSummary, depth: number): void => {
    const under = children.get(run.uid) ?? [];
    const isFolded = folded.has(run.uid);
    rows.push({
      run,
      depth,
      nestedUnder: parentOf.get(run.uid) ?? null,
      derivedCount: under.length,
      folded: isFolded,
      absentParents: parentsOf(run).filter(uid => !byUid.has(uid))
    });
    if (!isFolded) {
      for (const child of under) {
        visit(child, depth + 1);
      }
    }
  };
  for (const run of byUid.values()) {
    if (!parentOf.has(run.uid)) {
      visit(run, 0);
    }
  }
  return rows;
}

/** How a parent that is not a row is named: `scan 12` when the server told its scan id, else its uid's first 8. */
export function parentLabel(uid: string, refs: ReadonlyMap<string, IParentRef>): string {
  const ref = refs.get(uid);
  if (ref && typeof ref.scan_id === 'number') {
    return `scan ${ref.scan_id}`;
  }
  return uid.slice(0, 8);
}

/** A pipeline's steps as one line: `map(normalise) → accumulate(total) → to_run(primary)`. */
export function pipelineLine(steps: IPipelineStep[]): string {
  return steps
    .map(step => {
      if (step.function) {
        return `${step.type}(${step.function})`;
      }
      if (step.stream) {
        return `${step.type}(${step.stream})`;
      }
      return step.type;
    })
    .join(' → ');
}

/**
 * What the Scans model keeps for nesting: folded parents, the page's references to
 * parents it does not list, and the rows of the last grouping (recomputed only when
 * the runs or the folding change).
 */
export class DerivedRows {
  /** Parents the table shows folded (their derived runs hidden). */
  readonly folded = new Set<string>();
  /** Scans named by the loaded pages' derived runs but not listed: uid -> reference. */
  readonly parentRefs = new Map<string, IParentRef>();

  /** Keep the parents a page names (`GET runs` / `GET table`'s `parents`). */
  takeParents(parents: Record<string, IParentRef> | undefined, fresh: boolean): void {
    if (fresh) {
      this.parentRefs.clear();
    }
    for (const [uid, ref] of Object.entries(parents ?? {})) {
      this.parentRefs.set(uid, ref);
    }
  }

  /** Whether `run` names parents that are neither rows nor named by a page (a pushed new run). */
  unnamedParents(run: IRunSummary, rows: IRunSummary[]): boolean {
    const parents = parentsOf(run);
    if (!parents.length) {
      return false;
    }
    const shown = new Set(rows.map(r => r.uid));
    return parents.some(uid => !shown.has(uid) && !this.parentRefs.has(uid));
  }

  /** Fold or unfold a parent's derived runs. */
  toggle(uid: string): void {
    if (this.folded.has(uid)) {
      this.folded.delete(uid);
    } else {
      this.folded.add(uid);
    }
    this._foldVersion += 1;
  }

  /** The rows for `runs` (the same array gives the same rows while the folding is unchanged). */
  rows(runs: IRunSummary[]): ITableRow[] {
    if (runs !== this._runs || this._foldVersion !== this._rowsFoldVersion) {
      this._rows = groupRuns(runs, this.folded);
      this._runs = runs;
      this._rowsFoldVersion = this._foldVersion;
    }
    return this._rows;
  }

  private _runs: IRunSummary[] | null = null;
  private _rows: ITableRow[] = [];
  private _foldVersion = 0;
  private _rowsFoldVersion = -1;
}
