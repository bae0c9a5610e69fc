/** The palette commands (category "Scans"). */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';

import type { PanelActions } from './actions';
import { scansIcon } from './icon';
import { ScansModel } from './model';
import { CommandIDs, PALETTE_CATEGORY } from './tokens';

export function addCommands(
  app: JupyterFrontEnd,
  model: ScansModel,
  actions: PanelActions,
  panelId: string,
  palette: ICommandPalette | null
): void {
  const { commands } = app;
  const hasRun = () => model.selected !== null;

  commands.addCommand(CommandIDs.open, {
    label: 'Open the Scans panel',
    caption: 'Browse, search and follow runs',
    icon: scansIcon,
    execute: () => app.shell.activateById(panelId)
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh scans',
    execute: () => model.refresh()
  });
  commands.addCommand(CommandIDs.insertCode, {
    label: 'Insert code for the selected run',
    isEnabled: hasRun,
    execute: () => actions.insertCode()
  });
  commands.addCommand(CommandIDs.bindCell, {
    label: 'Bind a live cell to the selected run',
    isEnabled: hasRun,
    execute: () => actions.bindCell()
  });
  commands.addCommand(CommandIDs.copyUid, {
    label: "Copy the selected run's UID",
    isEnabled: hasRun,
    execute: () => actions.copyUid()
  });
  commands.addCommand(CommandIDs.saveProvenance, {
    label: 'Save provenance of the current notebook',
    execute: () => actions.saveProvenance()
  });

  // The enabled state of the run commands follows the selection.
  model.stateChanged.connect(() => commands.notifyCommandChanged());

  if (palette) {
    for (const command of Object.values(CommandIDs)) {
      palette.addItem({ command, category: PALETTE_CATEGORY });
    }
  }
}
