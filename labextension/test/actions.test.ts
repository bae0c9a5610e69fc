import { describe, expect, it, vi } from 'vitest';

// actions.ts also holds the PanelActions class, whose JupyterLab UI modules need a DOM;
// these helpers need none of it.
vi.mock('@jupyterlab/apputils', () => ({ Clipboard: {} }));
vi.mock('@jupyterlab/notebook', () => ({ NotebookActions: {} }));

import { bindCells, cleanKernelText, hasSetup, LOAD_EXT } from '../src/actions';

const BIND = '%%bind 1a2b3c4d\nrun.primary.read()';
const SETUP = `${LOAD_EXT}\n%catalog beamline`;

describe('bindCells', () => {
  it('puts the set-up into its own cell above a %%bind cell', () => {
    expect(bindCells({ bind: BIND, setup: SETUP }, false)).toEqual([SETUP, BIND]);
  });

  it('inserts the %%bind cell alone when the notebook has the set-up', () => {
    expect(bindCells({ bind: BIND, setup: SETUP }, true)).toEqual([BIND]);
  });

  it('defaults the set-up to loading the extension', () => {
    expect(bindCells({ bind: BIND }, false)).toEqual([LOAD_EXT, BIND]);
    expect(bindCells({ bind: BIND, setup: '  \n' }, false)).toEqual([LOAD_EXT, BIND]);
  });

  it('prepends the set-up to a snippet that is not a cell magic', () => {
    const snippet = 'run = live("1a2b3c4d")';
    expect(bindCells({ bind: snippet, setup: SETUP }, true)).toEqual([`${SETUP}\n${snippet}`]);
  });

  it('uses a snippet that loads the extension itself as it is', () => {
    const snippet = `${LOAD_EXT}\n%%bind 1a2b3c4d`;
    expect(bindCells({ bind: snippet, setup: SETUP }, false)).toEqual([snippet]);
  });
});

describe('hasSetup', () => {
  it('finds every set-up line in some cell, whatever the spacing', () => {
    expect(hasSetup(['import numpy', `  ${LOAD_EXT}  `, 'x = 1\n%catalog beamline'], SETUP)).toBe(
      true
    );
  });

  it('is false when a line is missing', () => {
    expect(hasSetup([LOAD_EXT], SETUP)).toBe(false);
    expect(hasSetup([], LOAD_EXT)).toBe(false);
    expect(hasSetup(['%catalog beamline2', LOAD_EXT], SETUP)).toBe(false);
  });
});

describe('cleanKernelText', () => {
  it("drops IPython's already-loaded notice and keeps the rest", () => {
    const text =
      'The scandeck extension is already loaded. To reload it, use:\n' +
      '  %reload_ext scandeck\n' +
      'Provenance saved: record 7 (analysis.ipynb)\n';
    expect(cleanKernelText(text)).toBe('Provenance saved: record 7 (analysis.ipynb)');
  });

  it('leaves other text alone', () => {
    expect(cleanKernelText('  NameError: x\n')).toBe('NameError: x');
  });
});
