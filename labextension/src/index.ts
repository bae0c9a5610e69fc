/**
 * scandeck's JupyterLab plugin: the Scans panel in the left sidebar, its
 * commands, and its state across reloads (layout restorer + state database).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStateDB } from '@jupyterlab/statedb';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { PanelActions } from './actions';
import { addCommands } from './commands';
import { IPanelState, ScansModel } from './model';
import { ScansPanel } from './panel';
import { registerSaveComm } from './saveComm';
import { PANEL_ID, PLUGIN_ID, STATE_KEY } from './tokens';

/** Save the panel state at most this often while the user types. */
const STATE_SAVE_MS = 500;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Scans side panel: browse, search and follow Bluesky runs.',
  autoStart: true,
  optional: [ILayoutRestorer, IStateDB, ICommandPalette, INotebookTracker, IDocumentManager],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    stateDB: IStateDB | null,
    palette: ICommandPalette | null,
    tracker: INotebookTracker | null,
    docManager: IDocumentManager | null
  ): void => {
    const model = new ScansModel();
    const actions = new PanelActions(app, model, tracker, docManager);
    const panel = new ScansPanel(model, actions);
    app.shell.add(panel, 'left', { rank: 850 });
    restorer?.add(panel, PANEL_ID);
    addCommands(app, model, actions, panel.id, palette);
    if (tracker) {
      registerSaveComm(tracker); // %provenance save in a cell: save the notebook first
    }

    const saved = stateDB
      ? stateDB.fetch(STATE_KEY).catch(() => undefined)
      : Promise.resolve(undefined);
    void Promise.all([saved, app.restored]).then(async ([value]) => {
      await model.init((value ?? null) as Partial<IPanelState> | null);
      if (stateDB) {
        let timer: number | null = null;
        model.stateChanged.connect(() => {
          if (timer !== null) {
            clearTimeout(timer);
          }
          timer = window.setTimeout(() => {
            timer = null;
            void stateDB.save(STATE_KEY, model.state as unknown as ReadonlyPartialJSONObject);
          }, STATE_SAVE_MS);
        });
      }
      if (model.openPanel) {
        app.shell.activateById(panel.id);
      }
    });
  }
};

export default plugin;
