/** Ids shared by the plugin, the commands and the views. */

export const PLUGIN_ID = 'scandeck:plugin';
export const PANEL_ID = 'scandeck-panel';
export const STATE_KEY = 'scandeck:panel';
export const PALETTE_CATEGORY = 'Scans';

export namespace CommandIDs {
  export const open = 'scandeck:open';
  export const refresh = 'scandeck:refresh';
  export const insertCode = 'scandeck:insert-code';
  export const bindCell = 'scandeck:bind-cell';
  export const copyUid = 'scandeck:copy-uid';
  export const saveProvenance = 'scandeck:save-provenance';
}
