// Watched runs in the panel: the row's "N files · newest: name" (the name cut in its middle,
// the whole relative path on hover) and the detail's section of what was watched, as text.
import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';

import type { IRunDetail } from '../src/api';
import { baseName, filesLine, middleCut } from '../src/format';
import { FilesLine, PreviewFile, WatchSection } from '../src/watchedView';

describe('baseName', () => {
  it('keeps the last part of a relative path', () => {
    expect(baseName('sample-2/frame_0004.tif')).toBe('frame_0004.tif');
    expect(baseName('frame.tif')).toBe('frame.tif');
    expect(baseName('a\\b\\c.csv')).toBe('c.csv');
    expect(baseName('dir/')).toBe('dir');
  });
});

describe('middleCut', () => {
  it('leaves a short name whole', () => {
    expect(middleCut('frame_0004.tif')).toBe('frame_0004.tif');
    expect(middleCut('x'.repeat(28))).toBe('x'.repeat(28));
  });

  it('cuts a long name in its middle, keeping its number and extension', () => {
    const cut = middleCut('LaB6_calibration_long_exposure_run_0042.tif');
    expect(Array.from(cut)).toHaveLength(28);
    expect(cut.endsWith('_run_0042.tif')).toBe(true);
    expect(cut.startsWith('LaB6_calib')).toBe(true);
    expect(cut).toContain('…');
  });

  it('never cuts a character made of two UTF-16 units in two', () => {
    const cut = middleCut('🧪'.repeat(40), 9);
    expect(cut).toBe(`${'🧪'.repeat(4)}…${'🧪'.repeat(4)}`);
  });
});

describe('filesLine', () => {
  it('counts files and names the newest by its base name, the whole path as title', () => {
    expect(filesLine({ count: 12, newest: 'sample-2/frame_0004.tif' })).toEqual({
      count: '12 files',
      name: 'frame_0004.tif',
      title: 'sample-2/frame_0004.tif'
    });
    expect(filesLine({ count: 1, newest: 'a.csv' }).count).toBe('1 file');
  });

  it('says so before the first file', () => {
    expect(filesLine({ count: 0, newest: null })).toEqual({
      count: 'No files yet',
      name: null,
      title: null
    });
  });
});

describe('FilesLine', () => {
  it('renders hostile names as text', () => {
    const html = renderToStaticMarkup(
      React.createElement(FilesLine, {
        files: { count: 3, newest: 'd/<img src=x onerror=alert(1)>.tif' }
      })
    );
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img');
    expect(html).toContain('3 files');
    expect(html).toContain('title="d/&lt;img src=x onerror=alert(1)&gt;.tif"');
  });
});

describe('WatchSection', () => {
  const detail = (watch?: IRunDetail['watch']): IRunDetail => ({
    run: {
      uid: 'u',
      scan_id: 1,
      time: 0,
      plan_name: 'watch',
      status: 'running',
      num_events: 2,
      num_points: null,
      duration: null,
      files: { count: 2, newest: 's1/b.csv' }
    },
    start: {},
    stop: null,
    streams: [],
    code: null,
    watch
  });

  it('lists roots, patterns, host and layout', () => {
    const html = renderToStaticMarkup(
      React.createElement(WatchSection, {
        detail: detail({
          roots: ['/data/xrd'],
          patterns: ['*.tif', '*.csv'],
          host: 'xrd-pc',
          run_per: 'directory',
          part: 'sample-1',
          transfer: true
        })
      })
    );
    expect(html).toContain('Watched files');
    expect(html).toContain('/data/xrd');
    expect(html).toContain('*.tif');
    expect(html).toContain('*.csv');
    expect(html).toContain('xrd-pc');
    expect(html).toContain('directory');
    expect(html).toContain('(sample-1)');
    expect(html).toContain('2 files');
    expect(html).toContain('b.csv');
  });

  it('is absent for a run that was not watched', () => {
    expect(renderToStaticMarkup(React.createElement(WatchSection, { detail: detail() }))).toBe('');
  });
});

describe('PreviewFile', () => {
  const preview = {
    stream: 'tiff',
    x: { name: 'seq_num', values: [] },
    y: [],
    num_events: 3
  };

  it('names the file a watched run previews, the whole path on hover', () => {
    const html = renderToStaticMarkup(
      React.createElement(PreviewFile, {
        preview: { ...preview, file: 'S01/<b>frame</b>_0001.tif' }
      })
    );
    expect(html).toContain('tiff: newest file');
    expect(html).toContain('&lt;b&gt;frame&lt;/b&gt;_0001.tif');
    expect(html).not.toContain('<b>');
  });

  it('says why nothing is plotted', () => {
    const html = renderToStaticMarkup(
      React.createElement(PreviewFile, {
        preview: {
          ...preview,
          file: 'a.tif',
          skipped: [{ name: 'file', reason: 'a.tif has changed since run u recorded it' }]
        }
      })
    );
    expect(html).toContain('has changed since run');
  });

  it('is absent for a scan', () => {
    expect(renderToStaticMarkup(React.createElement(PreviewFile, { preview }))).toBe('');
  });
});
