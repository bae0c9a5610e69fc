/** Ids shared by the plugin, the commands and the views. */

export const PLUGIN_ID = 'scandeck:plugin';
export const PANEL_ID = 'scandeck-panel';
export const STATE_KEY = 'scandeck:panel';
export const PALETTE_CATEGORY = 'Scans';

export const CommandIDs = {
  open: 'scandeck:open',
  refresh: 'scandeck:refresh',
  insertCode: 'scandeck:insert-code',
  bindCell: 'scandeck:bind-cell',
  copyUid: 'scandeck:copy-uid',
  saveProvenance: 'scandeck:save-provenance'
} as const;
