import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import { errorMessage, requestAPI, ScandeckAPIError } from '../src/api';
import { backoffDelay } from '../src/push';

/** Server settings whose fetch answers `reply` and records the requests. */
function fakeServer(reply: () => Response | Promise<Response>) {
  const requests: Request[] = [];
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://lab.test/base/',
    token: '',
    WebSocket: class {} as unknown as typeof WebSocket,
    fetch: async (input: RequestInfo | URL) => {
      requests.push(input as Request);
      return reply();
    }
  });
  return { settings, requests };
}

/** The ScandeckAPIError that `promise` fails with. */
async function failure(promise: Promise<unknown>): Promise<ScandeckAPIError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e
  );
  expect(error).toBeInstanceOf(ScandeckAPIError);
  return error as ScandeckAPIError;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });

describe('requestAPI', () => {
  it('joins the API path and leaves out null and undefined parameters', async () => {
    const { settings, requests } = fakeServer(() => json(200, { runs: [] }));
    const answer = await requestAPI(
      'runs',
      {},
      { catalog: 'demo', q: 'a b', limit: 50, before: null, after: undefined },
      settings
    );
    expect(answer).toEqual({ runs: [] });
    const url = new URL(requests[0].url);
    expect(url.pathname).toBe('/base/scandeck/api/runs');
    expect(url.searchParams.get('catalog')).toBe('demo');
    expect(url.searchParams.get('q')).toBe('a b');
    expect(url.searchParams.get('limit')).toBe('50');
    expect(url.searchParams.has('before')).toBe(false);
    expect(url.searchParams.has('after')).toBe(false);
  });

  it('sends a JSON body as application/json', async () => {
    const { settings, requests } = fakeServer(() => json(201, { id: 'j1' }));
    await requestAPI('reruns', { method: 'POST', body: '{}' }, {}, settings);
    expect(requests[0].method).toBe('POST');
    expect(requests[0].headers.get('Content-Type')).toBe('application/json');
  });

  it('turns a query error into a ScandeckAPIError with the caret position', async () => {
    const { settings } = fakeServer(() =>
      json(400, {
        error: 'QuerySyntaxError',
        message: 'unexpected token at column 7',
        position: 7,
        query: 'sample == '
      })
    );
    const error = await failure(requestAPI('runs', {}, {}, settings));
    expect(error).toMatchObject({
      status: 400,
      kind: 'QuerySyntaxError',
      position: 7,
      query: 'sample == ',
      message: 'unexpected token at column 7'
    });
    expect(error.isQueryError).toBe(true);
  });

  it('says how to enable the server extension on a bare 404', async () => {
    const { settings } = fakeServer(() => new Response('Not Found', { status: 404 }));
    const error = await failure(requestAPI('catalogs', {}, {}, settings));
    expect(error).toMatchObject({ status: 404, kind: 'ServerExtensionMissing' });
    expect(error.message).toContain('jupyter server extension enable scandeck.server');
  });

  it('keeps a 404 that the API answered itself (an unknown run)', async () => {
    const { settings } = fakeServer(() =>
      json(404, { error: 'NotFound', message: 'no run abc in catalog demo' })
    );
    const error = await failure(requestAPI('runs/abc', {}, {}, settings));
    expect(error).toMatchObject({ status: 404, kind: 'NotFound', position: null });
    expect(error.isQueryError).toBe(false);
    expect(error.message).toBe('no run abc in catalog demo');
  });

  it('reports an unreachable server as a NetworkError', async () => {
    const { settings } = fakeServer(() => Promise.reject(new TypeError('fetch failed')));
    const error = await failure(requestAPI('catalogs', {}, {}, settings));
    expect(error).toMatchObject({ status: 0, kind: 'NetworkError' });
    expect(errorMessage(error)).toMatch(/^Cannot reach the Jupyter server/);
  });
});

describe('ScandeckAPIError.isQueryError', () => {
  it('is only a 400 of the two query kinds', () => {
    expect(new ScandeckAPIError('m', 400, 'InvalidQuery').isQueryError).toBe(true);
    expect(new ScandeckAPIError('m', 400, 'UnsafeValue').isQueryError).toBe(false);
    expect(new ScandeckAPIError('m', 500, 'QuerySyntaxError').isQueryError).toBe(false);
  });
});

describe('errorMessage', () => {
  it('is the message of an Error and the text of anything else', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});

describe('backoffDelay (push reconnection)', () => {
  it('starts at half a second, doubles, and stops at 30 s', () => {
    expect([0, 1, 2, 3].map(backoffDelay)).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(6)).toBe(30000);
    expect(backoffDelay(100)).toBe(30000);
    expect(backoffDelay(-1)).toBe(500);
  });
});
