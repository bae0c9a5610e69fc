/**
 * What the panel's buttons and the palette commands do to notebooks:
 * insert code for a run, bind a live cell, copy a uid, save provenance,
 * open a recorded notebook.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';

import * as api from './api';
import { ScansModel } from './model';

export const LOAD_EXT = '%load_ext scandeck';
export const SAVE_PROVENANCE_CODE = `${LOAD_EXT}\n%provenance save`;

/**
 * The cells that bind a live cell to a run, from the server's snippets
 * (`code.bind`, and `code.setup`: `%load_ext scandeck` and, for a catalog other
 * than the default, `%catalog NAME`).
 *
 * `%%bind` is a cell magic, so it must stay on its cell's first line: the set-up
 * goes into a cell of its own above it, unless the notebook already has those
 * lines. A snippet that is not a cell magic gets the set-up prepended instead.
 * Nothing is added when the snippet loads the extension itself.
 */
export function bindCells(
  code: { bind: string; setup?: string },
  notebookHasSetup: boolean
): string[] {
  const setup = code.setup?.trim() || LOAD_EXT;
  const snippet = code.bind;
  if (snippet.includes(LOAD_EXT)) {
    return [snippet];
  }
  if (snippet.trimStart().startsWith('%%')) {
    return notebookHasSetup ? [snippet] : [setup, snippet];
  }
  return [`${setup}\n${snippet}`];
}

/** Whether every line of `setup` is in some code cell of the notebook. */
export function hasSetup(cellSources: string[], setup: string): boolean {
  const have = new Set(cellSources.flatMap(source => source.split('\n').map(l => l.trim())));
  return setup
    .split('\n')
    .map(l => l.trim())
    .filter(Boolean)
    .every(line => have.has(line));
}

/** The text a kernel answered, without IPython's "already loaded" notice. */
export function cleanKernelText(text: string): string {
  return text
    .split('\n')
    .filter(
      line =>
        !/^The scandeck extension is already loaded\./.test(line) &&
        !/^\s*%reload_ext scandeck\s*$/.test(line)
    )
    .join('\n')
    .trim();
}

// Terminal colour codes in tracebacks.
const ANSI = new RegExp(String.fromCharCode(27) + '\\[[0-9;]*[A-Za-z]', 'g');

export class PanelActions {
  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly model: ScansModel,
    private readonly tracker: INotebookTracker | null,
    private readonly docManager: IDocumentManager | null
  ) {}

  /** Insert the code that loads the selected run below the active cell. */
  async insertCode(): Promise<void> {
    const panel = this._notebook('insert code');
    const detail = panel && (await this._code());
    if (!panel || !detail) {
      return;
    }
    await panel.context.ready;
    this._insertCells(panel, [detail.code.load]);
    this.model.notify(`Inserted code that loads scan ${this._label(detail.run)}.`, 'success');
  }

  /** Insert (and run) a cell bound live to the selected run. */
  async bindCell(): Promise<void> {
    const panel = this._notebook('bind a live cell');
    const detail = panel && (await this._code());
    if (!panel || !detail) {
      return;
    }
    await panel.context.ready;
    const setup = detail.code.setup?.trim() || LOAD_EXT;
    const sources = (panel.content.model?.sharedModel.cells ?? [])
      .filter(cell => cell.cell_type === 'code')
      .map(cell => cell.getSource());
    const cells = bindCells(detail.code, hasSetup(sources, setup));
    const indices = this._insertCells(panel, cells);
    const notebook = panel.content;
    await panel.sessionContext.ready;
    const kernel = panel.sessionContext.session?.kernel;
    if (kernel && cells.length === 1 && !cells[0].includes(LOAD_EXT)) {
      // The notebook has the set-up cell, but this kernel may not have run it (restarted).
      await kernel.requestExecute({ code: setup, silent: true, store_history: false }).done;
    }
    for (const index of indices) {
      notebook.activeCellIndex = index;
      notebook.deselectAll();
      await NotebookActions.run(notebook, panel.sessionContext);
    }
    this.model.notify(`Bound a live cell to scan ${this._label(detail.run)}.`, 'success');
  }

  /** Copy a run's uid (the selected run's by default) to the clipboard. */
  async copyUid(uid: string | null = this.model.selected): Promise<void> {
    if (!uid) {
      this.model.notify('Select a run first.', 'error');
      return;
    }
    try {
      await navigator.clipboard.writeText(uid);
    } catch {
      // No Clipboard API (plain http, or permission refused): Jupyter's copies through a selection.
      Clipboard.copyToSystem(uid);
    }
    this.model.notify(`Copied ${uid}`, 'success');
  }

  /** Save the active notebook, then record its provenance in its kernel. */
  async saveProvenance(): Promise<void> {
    const panel = this._notebook('save provenance');
    if (!panel) {
      return;
    }
    const name = panel.context.path;
    this.model.provenance.setSaving(true);
    try {
      await panel.context.ready;
      await panel.context.save();
      await panel.sessionContext.ready;
      const kernel = panel.sessionContext.session?.kernel;
      if (!kernel) {
        this.model.provenance.setSaving(false, {
          text: `${name} has no kernel: start one, run the notebook, then save provenance.`,
          ok: false
        });
        return;
      }
      const { text, ok } = await this._execute(kernel, SAVE_PROVENANCE_CODE);
      this.model.provenance.setSaving(false, {
        text: text || (ok ? `Provenance of ${name} saved.` : 'Failed with no message.'),
        ok
      });
      if (ok) {
        void this.model.provenance.loadRecords();
      }
    } catch (error) {
      this.model.provenance.setSaving(false, {
        text: error instanceof Error ? error.message : String(error),
        ok: false
      });
    }
  }

  /** Write a record's executed notebook under the server root and open it. */
  async openRecord(id: string): Promise<void> {
    try {
      const { path } = await api.openProvenance(id);
      if (this.docManager) {
        this.docManager.openOrReveal(path);
      } else {
        await this.app.commands.execute('docmanager:open', { path });
      }
      this.model.notify(`Opened ${path}`, 'success');
    } catch (error) {
      this.model.notify(
        `Cannot open the notebook: ${error instanceof Error ? error.message : String(error)}`,
        'error'
      );
    }
  }

  private _notebook(what: string): NotebookPanel | null {
    const panel = this.tracker?.currentWidget ?? null;
    if (!panel) {
      this.model.notify(`No notebook is open: open one to ${what}.`, 'error');
    }
    return panel;
  }

  /**
   * The selected run's cells, always asked of the server (`GET runs/UID/code`): it
   * quotes every value and refuses (400) a run whose uid code must not carry; the
   * refusal is shown as the notice and nothing is inserted.
   */
  private async _code(): Promise<api.IRunCode | null> {
    const uid = this.model.selected;
    if (!uid) {
      this.model.notify('Select a run first.', 'error');
      return null;
    }
    try {
      return await api.getRunCode(this.model.catalog, uid);
    } catch (error) {
      this.model.notify(error instanceof Error ? error.message : String(error), 'error');
      return null;
    }
  }

  /** Insert code cells below the active cell; returns their indices. */
  private _insertCells(panel: NotebookPanel, sources: string[]): number[] {
    const notebook = panel.content;
    const shared = notebook.model!.sharedModel;
    let index = shared.cells.length === 0 ? 0 : notebook.activeCellIndex + 1;
    const indices: number[] = [];
    for (const source of sources) {
      shared.insertCell(index, { cell_type: 'code', source });
      indices.push(index);
      index += 1;
    }
    notebook.activeCellIndex = indices[indices.length - 1];
    notebook.deselectAll();
    this.app.shell.activateById(panel.id);
    void notebook.scrollToItem(notebook.activeCellIndex);
    return indices;
  }

  private async _execute(
    kernel: Kernel.IKernelConnection,
    code: string
  ): Promise<{ text: string; ok: boolean }> {
    const parts: string[] = [];
    let ok = true;
    const future = kernel.requestExecute({
      code,
      silent: false,
      store_history: false,
      stop_on_error: true
    });
    future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
      if (KernelMessage.isStreamMsg(msg)) {
        parts.push(String(msg.content.text));
      } else if (KernelMessage.isExecuteResultMsg(msg) || KernelMessage.isDisplayDataMsg(msg)) {
        const plain = msg.content.data?.['text/plain'];
        if (plain !== undefined) {
          parts.push(String(plain) + '\n');
        }
      } else if (KernelMessage.isErrorMsg(msg)) {
        ok = false;
        parts.push(`${msg.content.ename}: ${msg.content.evalue}`.replace(ANSI, '') + '\n');
      }
    };
    const reply = await future.done;
    if (reply.content.status !== 'ok') {
      ok = false;
    }
    return { text: cleanKernelText(parts.join('')), ok };
  }

  private _label(run: api.IRunSummary): string {
    return run.scan_id !== null && run.scan_id !== undefined
      ? `${run.scan_id} (${run.uid.slice(0, 8)})`
      : run.uid.slice(0, 8);
  }
}
