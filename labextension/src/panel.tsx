/**
 * The Scans side panel: tabs (Runs | Provenance), a notice line, and the start-up
 * probe's explanation when the server extension does not answer.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';
import { useEffect } from 'react';

import type { PanelActions } from './actions';
import { scansIcon } from './icon';
import { ScansModel, Tab } from './model';
import { ProvenanceView } from './provenanceView';
import { RunsView } from './runsView';
import { PANEL_ID } from './tokens';
import { useModel } from './useModel';

/** Success and info notices go away by themselves after this long. */
const NOTICE_MS = 6000;

const TABS: Array<[Tab, string]> = [
  ['runs', 'Runs'],
  ['provenance', 'Provenance']
];

function Notice(props: { model: ScansModel }): JSX.Element | null {
  const { model } = props;
  const notice = model.notice;
  useEffect(() => {
    if (!notice || notice.kind === 'error') {
      return;
    }
    const timer = window.setTimeout(() => {
      if (model.notice === notice) {
        model.clearNotice();
      }
    }, NOTICE_MS);
    return () => clearTimeout(timer);
  }, [model, notice]);
  if (!notice) {
    return null;
  }
  return (
    <div className="jp-scandeck-notice" data-kind={notice.kind} role="status">
      <span>{notice.text}</span>
      <button
        className="jp-scandeck-close"
        aria-label="Dismiss"
        title="Dismiss"
        onClick={() => model.clearNotice()}
      >
        ×
      </button>
    </div>
  );
}

function PanelView(props: { model: ScansModel; actions: PanelActions }): JSX.Element {
  const { model, actions } = props;
  useModel(model);
  const push = model.push.state;
  return (
    <div className="jp-scandeck-panel-body" data-tab={model.tab}>
      <div className="jp-scandeck-header">
        <div className="jp-scandeck-tabs" role="tablist">
          {TABS.map(([tab, label]) => (
            <button
              key={tab}
              role="tab"
              className="jp-scandeck-tab"
              data-tab={tab}
              aria-selected={model.tab === tab}
              onClick={() => model.setTab(tab)}
            >
              {label}
            </button>
          ))}
        </div>
        <span
          className="jp-scandeck-push"
          data-state={push}
          title={
            push === 'open'
              ? 'Live: the server pushes new runs and progress'
              : 'Not connected to the live updates; reconnecting'
          }
        />
        <button
          className="jp-scandeck-refresh"
          data-action="refresh"
          title="Refresh"
          aria-label="Refresh"
          onClick={() => void model.refresh()}
        >
          ⟳
        </button>
      </div>
      <Notice model={model} />
      {!model.ready ? (
        <div className="jp-scandeck-loading">Connecting to the scandeck server…</div>
      ) : model.serverError ? (
        <div className="jp-scandeck-server-error jp-scandeck-error" role="alert">
          {model.serverError}
        </div>
      ) : model.tab === 'runs' ? (
        <RunsView model={model} actions={actions} />
      ) : (
        <ProvenanceView model={model} actions={actions} />
      )}
    </div>
  );
}

export class ScansPanel extends ReactWidget {
  constructor(
    readonly model: ScansModel,
    private readonly actions: PanelActions
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-scandeck-panel');
    this.title.icon = scansIcon;
    this.title.caption = 'Scans';
  }

  render(): JSX.Element {
    return <PanelView model={this.model} actions={this.actions} />;
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }
}
