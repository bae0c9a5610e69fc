/**
 * The push channel: a WebSocket to `scandeck/api/events?catalog=NAME`.
 *
 * The server pushes `run` messages (a run started, progressed or ended),
 * `facts` messages (runs whose tags, comments or computed cells changed) and
 * `job` messages (a rerun job progressed). The client reconnects with an
 * exponential back-off when the socket drops, and says so through
 * `reconnected` so the model can fetch what it missed while disconnected.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { API_PATH, IJob, IRunSummary } from './api';

export type PushState = 'connecting' | 'open' | 'closed';

/** Back-off before the n-th reconnection attempt: 0.5 s doubling to 30 s. */
export function backoffDelay(attempt: number): number {
  return Math.min(30000, 500 * 2 ** Math.max(0, attempt));
}

export class PushClient {
  constructor(
    private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  get runChanged(): ISignal<this, IRunSummary> {
    return this._runChanged;
  }

  /** Uids of runs whose tags, comments or computed cells changed. */
  get factsChanged(): ISignal<this, string[]> {
    return this._factsChanged;
  }

  get jobChanged(): ISignal<this, IJob> {
    return this._jobChanged;
  }

  /** Emitted when the socket opens again after it dropped. */
  get reconnected(): ISignal<this, void> {
    return this._reconnected;
  }

  get stateChanged(): ISignal<this, PushState> {
    return this._stateChanged;
  }

  get state(): PushState {
    return this._state;
  }

  /** Connect (or switch) to a catalog's events. */
  start(catalog: string): void {
    this._catalog = catalog;
    this._stopped = false;
    if (this._socket && this._socket.readyState === WebSocket.OPEN) {
      this._socket.send(JSON.stringify({ catalog }));
      return;
    }
    if (!this._socket && this._timer === null) {
      this._connect();
    }
  }

  /** Close the socket for good; idempotent. */
  stop(): void {
    this._stopped = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    this._setState('closed');
  }

  private _url(): string {
    const url =
      URLExt.join(this.settings.wsUrl, API_PATH, 'events') +
      URLExt.objectToQueryString({ catalog: this._catalog });
    const token = this.settings.token;
    if (this.settings.appendToken && token !== '') {
      return `${url}&token=${encodeURIComponent(token)}`;
    }
    return url;
  }

  private _connect(): void {
    this._timer = null;
    if (this._stopped) {
      return;
    }
    this._setState('connecting');
    let socket: WebSocket;
    try {
      socket = new this.settings.WebSocket(this._url());
    } catch (error) {
      console.warn('scandeck: cannot open the push channel', error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    const socketCatalog = this._catalog;
    socket.onmessage = event => this._onMessage(event);
    socket.onopen = () => {
      const wasDropped = this._everOpened;
      this._everOpened = true;
      this._attempt = 0;
      this._setState('open');
      if (this._catalog !== socketCatalog) {
        // The catalog changed while the socket was connecting.
        socket.send(JSON.stringify({ catalog: this._catalog }));
      }
      if (wasDropped) {
        this._reconnected.emit();
      }
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
      }
      this._setState('closed');
      this._scheduleReconnect();
    };
    socket.onerror = () => {
      // onclose follows and schedules the reconnection.
    };
  }

  private _scheduleReconnect(): void {
    if (this._stopped || this._timer !== null) {
      return;
    }
    const delay = backoffDelay(this._attempt);
    this._attempt += 1;
    this._timer = window.setTimeout(() => this._connect(), delay);
  }

  private _onMessage(event: MessageEvent): void {
    let message: { type?: unknown; run?: IRunSummary; job?: IJob; uids?: unknown } | null;
    try {
      message = JSON.parse(String(event.data));
    } catch {
      console.warn('scandeck: a push message that is not JSON', event.data);
      return;
    }
    switch (message?.type) {
      case 'run':
        if (message.run) {
          this._runChanged.emit(message.run);
        }
        break;
      case 'facts':
        if (Array.isArray(message.uids)) {
          this._factsChanged.emit(message.uids.filter(u => typeof u === 'string'));
        }
        break;
      case 'job':
        if (message.job) {
          this._jobChanged.emit(message.job);
        }
        break;
      case 'hello':
        break;
      default:
        console.debug('scandeck: unknown push message', message);
    }
  }

  private _setState(state: PushState): void {
    if (state !== this._state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _catalog = '';
  private _socket: WebSocket | null = null;
  private _timer: number | null = null;
  private _attempt = 0;
  private _everOpened = false;
  private _stopped = true;
  private _state: PushState = 'closed';
  private _runChanged = new Signal<this, IRunSummary>(this);
  private _jobChanged = new Signal<this, IJob>(this);
  private _factsChanged = new Signal<this, string[]>(this);
  private _reconnected = new Signal<this, void>(this);
  private _stateChanged = new Signal<this, PushState>(this);
}
