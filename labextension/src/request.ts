/**
 * The one way the extension talks to the server: the REST routes of `ipydock.server` and its
 * event stream. Everything else imports these functions (and tests mock this module only).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  DiskUsage,
  EngineInfo,
  HistoryRow,
  ImageInfo,
  ContainerInfo,
  LayerFiles,
  NetworkInfo,
  PruneResult,
  VolumeInfo
} from './types';

/** An error answered by the server: its one-line message, HTTP status and error class. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly kind: string
  ) {
    super(message);
  }
}

function url(...parts: string[]): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, 'ipydock', 'api', ...parts);
}

/** The raw request: JSON (or text) back, or an ApiError with the server's message. */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url(path), init, settings);
  } catch (error) {
    throw new ApiError(`the Jupyter server does not answer: ${error}`, 0, 'NetworkError');
  }
  const text = await response.text();
  const isJson = (response.headers.get('Content-Type') ?? '').includes('json');
  const data = isJson && text ? JSON.parse(text) : text;
  if (!response.ok) {
    const message = (isJson && data?.message) || text || response.statusText;
    throw new ApiError(message, response.status, (isJson && data?.error) || '');
  }
  return data as T;
}

const enc = encodeURIComponent;
const post = (body: unknown = {}): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body)
});

export const getEngine = () => requestAPI<EngineInfo>('engine');
export const setEngine = (engine: string, host = '') =>
  requestAPI<EngineInfo>('engine', { method: 'PUT', body: JSON.stringify({ engine, host }) });
export const listImages = (all = false) =>
  requestAPI<ImageInfo[]>(`images${all ? '?all=1' : ''}`);
export const imageHistory = (ref: string) =>
  requestAPI<HistoryRow[]>(`images/${enc(ref)}/history`);
export const imageLayers = (ref: string) =>
  requestAPI<LayerFiles[]>(`images/${enc(ref)}/layers`);
export const removeImage = (ref: string, force = false) =>
  requestAPI<unknown>(`images/${enc(ref)}${force ? '?force=1' : ''}`, { method: 'DELETE' });
export const tagImage = (ref: string, target: string) =>
  requestAPI<{ tag: string }>(`images/${enc(ref)}/tag`, post({ target }));
export const pruneImages = (all = false) => requestAPI<PruneResult>('prune/images', post({ all }));
export const listContainers = () => requestAPI<ContainerInfo[]>('containers?all=1');
export const containerAction = (id: string, action: 'start' | 'stop' | 'restart') =>
  requestAPI<unknown>(`containers/${enc(id)}/${action}`, post());
export const removeContainer = (id: string, force = false) =>
  requestAPI<unknown>(`containers/${enc(id)}${force ? '?force=1' : ''}`, { method: 'DELETE' });
export const containerLogs = (id: string, tail = 1000) =>
  requestAPI<{ stream: string; text: string }[]>(`containers/${enc(id)}/logs?tail=${tail}`);
export const listVolumes = () => requestAPI<VolumeInfo[]>('volumes');
export const listNetworks = () => requestAPI<NetworkInfo[]>('networks');
export const networkGraph = () => requestAPI<{ svg: string }>('networks/graph');
export const diskUsage = () => requestAPI<DiskUsage[]>('system/df');

/**
 * Read the server-sent events of `path` until `signal` aborts or the server ends the stream:
 * `onEvent(name, data)` for each (data decoded from JSON).
 */
export async function followStream(
  path: string,
  onEvent: (name: string, data: unknown) => void,
  signal: AbortSignal
): Promise<void> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(url(path), { signal }, settings);
  if (!response.ok || !response.body) {
    const text = await response.text();
    let message = `HTTP ${response.status}`;
    try {
      message = JSON.parse(text).message ?? message;
    } catch {
      // not JSON: keep the status
    }
    throw new ApiError(message, response.status, '');
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const name = block.find(l => l.startsWith('event: '))?.slice('event: '.length);
      const data = block.find(l => l.startsWith('data: '))?.slice('data: '.length);
      if (name) {
        onEvent(name, data ? JSON.parse(data) : null);
      }
    }
  }
}

/** The store's events: `onEvent('hello' | 'changed' | 'engine')`. */
export function followEvents(onEvent: (name: string) => void, signal: AbortSignal): Promise<void> {
  return followStream('events', name => onEvent(name), signal);
}

/** `container logs -f`: `line` events ({stream, text, time}), then `end` when it stops. */
export function followLogs(
  id: string,
  onEvent: (name: string, data: unknown) => void,
  signal: AbortSignal,
  tail = 1000
): Promise<void> {
  return followStream(`containers/${enc(id)}/logs?follow=1&tail=${tail}`, onEvent, signal);
}
