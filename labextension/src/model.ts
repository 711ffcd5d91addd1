/**
 * What the panel shows, loaded in one go, and the live-update loop: pure logic over the request
 * module (so jest tests mock only `request`).
 */
import * as api from './request';
import type {
  ContainerInfo,
  DiskUsage,
  EngineInfo,
  ImageInfo,
  NetworkInfo,
  VolumeInfo
} from './types';

export interface Snapshot {
  engine: EngineInfo;
  images: ImageInfo[];
  containers: ContainerInfo[];
  volumes: VolumeInfo[];
  networks: NetworkInfo[];
}

/** The lists, in one go. Disk usage is not among them: it walks the whole store (seconds with
 * 1,000 images), so the panel asks for it only while its section is open. */
export async function loadSnapshot(): Promise<Snapshot> {
  const [engine, images, containers, volumes, networks] = await Promise.all([
    api.getEngine(),
    api.listImages(),
    api.listContainers(),
    api.listVolumes(),
    api.listNetworks()
  ]);
  return { engine, images, containers, volumes, networks };
}

/** `repo:tag`, or `<none>:<none>` for an untagged image. */
export function imageName(image: ImageInfo): string {
  return `${image.repository}:${image.tag}`;
}

/** The names `FROM` can take: every tagged image's `repo:tag` (and `repo` for `latest`). */
export function imageNames(images: ImageInfo[]): string[] {
  const names: string[] = [];
  for (const i of images) {
    if (i.repository !== '<none>') {
      names.push(imageName(i));
      if (i.tag === 'latest') {
        names.push(i.repository);
      }
    }
  }
  return names;
}

/** Sizes as docker prints them: decimal units, three significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  const text = value.toFixed(digits);
  return `${text.includes('.') ? text.replace(/\.?0+$/, '') : text}${units[unit]}`;
}

/** The summary line of `system df` for the panel: "Images 3 (1.2MB, 400kB reclaimable)". */
export function diskSummary(rows: DiskUsage[]): string[] {
  return rows.map(
    r =>
      `${r.type}: ${r.total} (${humanSize(r.size)}, ${humanSize(r.reclaimable)} reclaimable)`
  );
}

/**
 * Follow the server's events; `onChange()` after each "changed"/"engine" (and once on each
 * (re)connect, to catch up). Reconnects after `retryMs` when the stream breaks.
 */
export class LiveUpdates {
  private controller: AbortController | null = null;

  constructor(
    private readonly onChange: () => void,
    private readonly onError: (error: unknown) => void = () => undefined,
    private readonly retryMs = 2000
  ) {}

  get running(): boolean {
    return this.controller !== null;
  }

  start(): void {
    if (this.controller) {
      return;
    }
    const controller = new AbortController();
    this.controller = controller;
    void this.loop(controller);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = null;
  }

  private async loop(controller: AbortController): Promise<void> {
    while (!controller.signal.aborted) {
      try {
        await api.followEvents(name => {
          if (name === 'hello' || name === 'changed' || name === 'engine') {
            this.onChange();
          }
        }, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) {
          return;
        }
        this.onError(error);
      }
      await new Promise(resolve => setTimeout(resolve, this.retryMs));
    }
  }
}
