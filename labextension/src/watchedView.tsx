/**
 * Watched runs (`scandeck watch`: instrument files in the catalog): a row's line of files
 * so far and the newest one's name, and the detail's section saying what was watched.
 * Every text comes from the server as text and is rendered as text.
 */
import * as React from 'react';

import type { IPreview, IRunDetail, IWatchedFiles } from './api';
import { baseName, filesLine, middleCut } from './format';

/** `12 files · newest: frame_0004.tif` (the whole relative path on hover). */
export function FilesLine(props: { files: IWatchedFiles; max?: number }): JSX.Element {
  const { count, name, title } = filesLine(props.files, props.max);
  return (
    <span
      className="jp-scandeck-files"
      data-count={props.files.count}
      data-newest={props.files.newest ?? ''}
    >
      <span className="jp-scandeck-files-count">{count}</span>
      {name !== null && (
        <>
          <span className="jp-scandeck-files-sep">· newest:</span>
          <span className="jp-scandeck-files-newest" title={title ?? undefined}>
            {name}
          </span>
        </>
      )}
    </span>
  );
}

function ListCell(props: { items: string[] }): JSX.Element {
  return (
    <td>
      {props.items.length === 0
        ? '–'
        : props.items.map((item, i) => (
            <div key={i} className="jp-scandeck-watch-item" title={item}>
              {item}
            </div>
          ))}
    </td>
  );
}

/** The detail's "Watched files" section: files so far, roots, patterns, host, layout. */
export function WatchSection(props: {
  detail: IRunDetail;
  files?: IWatchedFiles;
}): JSX.Element | null {
  const watch = props.detail.watch;
  if (!watch) {
    return null;
  }
  const files = props.files ?? props.detail.run.files;
  return (
    <div className="jp-scandeck-watch">
      <div className="jp-scandeck-section-title">Watched files</div>
      <table className="jp-scandeck-kv jp-scandeck-watch-table">
        <tbody>
          {files && (
            <tr data-key="files">
              <th>files</th>
              <td>
                <FilesLine files={files} max={40} />
              </td>
            </tr>
          )}
          <tr data-key="roots">
            <th>{watch.roots.length === 1 ? 'root' : 'roots'}</th>
            <ListCell items={watch.roots} />
          </tr>
          <tr data-key="patterns">
            <th>patterns</th>
            <ListCell items={watch.patterns} />
          </tr>
          <tr data-key="host">
            <th>host</th>
            <td title={watch.host ?? undefined}>{watch.host ?? '–'}</td>
          </tr>
          <tr data-key="run_per">
            <th>run per</th>
            <td>
              {watch.run_per ?? '–'}
              {watch.part ? (
                <span className="jp-scandeck-dim" title={watch.part}>
                  {` (${watch.part})`}
                </span>
              ) : null}
            </td>
          </tr>
          <tr data-key="transfer">
            <th>transfer</th>
            <td>
              {watch.transfer ? 'bytes sent through the bus' : 'no (read where the files are)'}
            </td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}

/** Under a watched run's preview: which file it shows, and why nothing is plotted when a file could not be read. */
export function PreviewFile(props: { preview: IPreview }): JSX.Element | null {
  const { file, skipped, stream } = props.preview;
  if (file === undefined) {
    return null; // not a watched run's preview
  }
  return (
    <div className="jp-scandeck-preview-file jp-scandeck-dim" data-file={file ?? ''}>
      {file ? (
        <>
          {`${stream}: newest file `}
          <span className="jp-scandeck-files-newest" title={file}>
            {middleCut(baseName(file), 48)}
          </span>
        </>
      ) : (
        'No files yet.'
      )}
      {(skipped ?? []).map((s, i) => (
        <div key={i} className="jp-scandeck-error" title={s.reason}>
          {s.reason}
        </div>
      ))}
    </div>
  );
}
