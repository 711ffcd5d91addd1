/**
 * The left-sidebar "Containers" panel: engine, images, containers, volumes, networks and disk
 * usage, redrawn after every "changed" event of the server (no polling).
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { diskSummary, humanSize, imageName, LiveUpdates, loadSnapshot, Snapshot } from './model';
import * as api from './request';
import type { ContainerInfo, ImageInfo } from './types';
import { historyView, svgView, tab, table } from './views';

export const containersIcon = new LabIcon({
  name: 'ipydock:containers',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161"><rect x="2" y="10" width="5" height="5"/>' +
    '<rect x="8" y="10" width="5" height="5"/><rect x="14" y="10" width="5" height="5"/>' +
    '<rect x="8" y="4" width="5" height="5"/><path d="M1 16h22c-1 4-5 6-11 6S2 20 1 16z"/>' +
    '</g></svg>'
});

export interface PanelOptions {
  confirmRemove: boolean;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text = '',
  cls = ''
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) {
    e.className = cls;
  }
  return e;
}

function button(label: string, onClick: () => void, title = ''): HTMLButtonElement {
  const b = el('button', label, 'jp-ipydock-button');
  b.title = title || label;
  b.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return b;
}

/** An error as a notification; the panel keeps its last picture and stays usable. */
export function report(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  Notification.error(message, { autoClose: 8000 });
}

export class ContainersPanel extends Widget {
  options: PanelOptions = { confirmRemove: true };
  private live: LiveUpdates;
  private loading = false;
  private again = false;
  private last: Snapshot | null = null;
  private dfOpen = false;
  private dfLoading = false;
  private dfAgain = false;
  private dfList: HTMLElement | null = null;

  constructor(private readonly app: JupyterFrontEnd) {
    super();
    this.id = 'ipydock-containers';
    this.addClass('jp-ipydock-panel');
    this.title.icon = containersIcon;
    this.title.caption = 'Containers';
    this.live = new LiveUpdates(
      () => void this.refresh(),
      () => this.setStatus('no live updates: reconnecting…')
    );
  }

  protected onAfterAttach(): void {
    this.live.start();
  }

  protected onBeforeDetach(): void {
    this.live.stop();
  }

  dispose(): void {
    this.live.stop();
    super.dispose();
  }

  /** Load everything and redraw; calls during a load make one more load after it. */
  async refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      do {
        this.again = false;
        try {
          this.last = await loadSnapshot();
          this.render(this.last);
        } catch (error) {
          this.setStatus(error instanceof Error ? error.message : String(error));
        }
      } while (this.again);
    } finally {
      this.loading = false;
    }
  }

  private setStatus(text: string): void {
    const status = this.node.querySelector('.jp-ipydock-status');
    if (status) {
      status.textContent = text;
    } else {
      this.node.appendChild(el('div', text, 'jp-ipydock-status'));
    }
  }

  private render(s: Snapshot): void {
    const root = el('div', '', 'jp-ipydock-content');
    root.appendChild(this.engineLine(s));
    root.appendChild(this.section('Images', s.images.length, this.imageRows(s.images)));
    root.appendChild(
      this.section('Containers', s.containers.length, this.containerRows(s.containers))
    );
    const volumes = s.volumes.map(v => {
      const row = el('li', v.name, 'jp-ipydock-volume');
      row.addEventListener('click', () => void this.openVolume(v.name));
      return row;
    });
    root.appendChild(this.section('Volumes', s.volumes.length, volumes));
    const networks = s.networks.map(n => el('li', `${n.name} (${n.driver})`, 'jp-ipydock-network'));
    const picture = button('Picture', () => void this.openGraph(), 'draw the networks');
    root.appendChild(this.section('Networks', s.networks.length, networks, [picture]));
    root.appendChild(this.diskSection());
    root.appendChild(el('div', '', 'jp-ipydock-status'));
    this.node.replaceChildren(root);
  }

  /** Disk usage, folded: `system df` walks the whole store, so it is asked for only while
   * the section is open (and again after each change while it stays open). */
  private diskSection(): HTMLElement {
    const details = el('details', '', 'jp-ipydock-section jp-ipydock-disk');
    details.open = this.dfOpen;
    const summary = el('summary', 'Disk usage');
    summary.appendChild(button('Prune dangling', () => void pruneDangling(), 'image prune'));
    details.appendChild(summary);
    const list = el('ul', '', 'jp-ipydock-df');
    details.appendChild(list);
    this.dfList = list;
    details.addEventListener('toggle', () => {
      this.dfOpen = details.open;
      if (details.open) {
        void this.loadDf();
      }
    });
    if (this.dfOpen) {
      void this.loadDf();
    }
    return details;
  }

  private async loadDf(): Promise<void> {
    if (this.dfLoading) {
      this.dfAgain = true;
      return;
    }
    this.dfLoading = true;
    try {
      do {
        this.dfAgain = false;
        if (this.dfList && !this.dfList.childElementCount) {
          this.dfList.appendChild(el('li', 'counting…'));
        }
        try {
          const rows = diskSummary(await api.diskUsage()).map(line => el('li', line));
          this.dfList?.replaceChildren(...rows);
        } catch (error) {
          this.dfList?.replaceChildren(el('li', String((error as Error).message ?? error)));
        }
      } while (this.dfAgain);
    } finally {
      this.dfLoading = false;
    }
  }

  private engineLine(s: Snapshot): HTMLElement {
    const line = el('div', '', 'jp-ipydock-engine');
    line.appendChild(el('span', 'Engine '));
    const select = el('select');
    for (const name of ['bundled', 'docker']) {
      const option = el('option', name);
      option.value = name;
      option.selected = name === s.engine.engine;
      select.appendChild(option);
    }
    select.addEventListener('change', () => {
      api.setEngine(select.value).catch(error => {
        report(error);
        select.value = s.engine.engine;
      });
    });
    line.appendChild(select);
    line.appendChild(el('span', ` ${s.engine.where}`, 'jp-ipydock-where'));
    return line;
  }

  private section(
    title: string,
    count: number | null,
    rows: HTMLElement[],
    actions: HTMLElement[] = []
  ): HTMLElement {
    const section = el('section', '', `jp-ipydock-section jp-ipydock-${title.split(' ')[0].toLowerCase()}`);
    const head = el('h2', count === null ? title : `${title} (${count})`);
    for (const a of actions) {
      head.appendChild(a);
    }
    section.appendChild(head);
    const list = el('ul');
    rows.forEach(r => list.appendChild(r));
    section.appendChild(list);
    return section;
  }

  private imageRows(images: ImageInfo[]): HTMLElement[] {
    return images.map(image => {
      const dangling = Boolean(image.dangling);
      const row = el('li', '', `jp-ipydock-image${dangling ? ' jp-ipydock-dangling' : ''}`);
      row.dataset.id = image.id;
      row.appendChild(el('span', imageName(image), 'jp-ipydock-name'));
      row.appendChild(el('span', humanSize(image.size), 'jp-ipydock-size'));
      if (dangling) {
        row.appendChild(el('span', 'dangling', 'jp-ipydock-badge'));
      }
      row.title = `${image.id}\nclick: history and layers`;
      row.addEventListener('click', () => void this.openHistory(image));
      return row;
    });
  }

  private containerRows(containers: ContainerInfo[]): HTMLElement[] {
    return containers.map(c => {
      const row = el('li', '', `jp-ipydock-container jp-ipydock-${c.status}`);
      row.dataset.name = c.name;
      row.appendChild(el('span', c.name, 'jp-ipydock-name'));
      row.appendChild(el('span', c.status, 'jp-ipydock-state'));
      row.title = `${c.name} (${c.image}): ${c.status_text || c.status}\nclick: logs`;
      if (c.status === 'running') {
        row.appendChild(button('Stop', () => void this.act(c, 'stop')));
      } else {
        row.appendChild(button('Start', () => void this.act(c, 'start')));
      }
      row.appendChild(button('Remove', () => void this.remove(c)));
      row.addEventListener('click', () => void this.openLogs(c));
      return row;
    });
  }

  private async act(c: ContainerInfo, action: 'start' | 'stop'): Promise<void> {
    try {
      await api.containerAction(c.id, action);
    } catch (error) {
      report(error);
    }
  }

  private async remove(c: ContainerInfo): Promise<void> {
    const running = c.status === 'running';
    if (this.options.confirmRemove) {
      const result = await showDialog({
        title: 'Remove container',
        body: `Remove container ${c.name}${running ? ' (running: it will be killed)' : ''}?`,
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
      });
      if (!result.button.accept) {
        return;
      }
    }
    try {
      await api.removeContainer(c.id, running);
    } catch (error) {
      report(error);
    }
  }

  private openTab(id: string, label: string, make: () => Promise<HTMLElement[]>): Promise<void> {
    return make()
      .then(content => {
        const open = Array.from(this.app.shell.widgets('main')).find(w => w.id === id);
        open?.dispose();
        const widget = tab(id, label, content);
        this.app.shell.add(widget, 'main');
        this.app.shell.activateById(id);
      })
      .catch(report);
  }

  openHistory(image: ImageInfo): Promise<void> {
    const name = image.repository === '<none>' ? image.id.slice(7, 19) : imageName(image);
    return this.openTab(`ipydock-history-${image.id.slice(7, 19)}`, `History: ${name}`, async () => {
      const [history, layers] = await Promise.all([
        api.imageHistory(image.id),
        api.imageLayers(image.id)
      ]);
      return historyView(name, history, layers);
    });
  }

  /** The logs in a main-area tab that follows them until the container stops. */
  private openLogs(c: ContainerInfo): Promise<void> {
    const pre = el('pre', '', 'jp-ipydock-logs');
    const controller = new AbortController();
    return this.openTab(`ipydock-logs-${c.id.slice(0, 12)}`, `Logs: ${c.name}`, async () => {
      void api
        .followLogs(
          c.id,
          (name, data) => {
            if (name === 'line') {
              pre.appendChild(document.createTextNode((data as { text: string }).text));
            } else if (name === 'end') {
              pre.appendChild(el('div', '(the container stopped)', 'jp-ipydock-end'));
            } else if (name === 'error') {
              report(new Error((data as { message: string }).message));
            }
          },
          controller.signal
        )
        .catch(error => {
          if (!controller.signal.aborted) {
            report(error);
          }
        });
      return [pre];
    }).then(() => {
      const widget = Array.from(this.app.shell.widgets('main')).find(
        w => w.id === `ipydock-logs-${c.id.slice(0, 12)}`
      );
      widget?.disposed.connect(() => controller.abort());
    });
  }

  private openVolume(name: string): Promise<void> {
    return this.openTab(`ipydock-volume-${name}`, `Volume: ${name}`, async () => {
      const files = await api.requestAPI<
        { path: string; type: string; size: number; mode: string }[]
      >(`volumes/${encodeURIComponent(name)}/files`);
      return [table(['MODE', 'SIZE', 'PATH'], files.map(f => [f.mode, humanSize(f.size), f.path]))];
    });
  }

  private openGraph(): Promise<void> {
    return this.openTab('ipydock-networks', 'Networks', async () => [
      svgView((await api.networkGraph()).svg)
    ]);
  }
}

/** `image prune -f` after a confirmation; a notification with what it freed. */
export async function pruneDangling(): Promise<void> {
  const result = await showDialog({
    title: 'Prune dangling images',
    body: 'Remove all dangling images (untagged, no child depends on them)?',
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Prune' })]
  });
  if (!result.button.accept) {
    return;
  }
  try {
    const pruned = await api.pruneImages();
    Notification.success(
      `Deleted ${pruned.deleted.filter(d => d.action === 'deleted').length} images, ` +
        `reclaimed ${humanSize(pruned.space_reclaimed)}`,
      { autoClose: 5000 }
    );
  } catch (error) {
    report(error);
  }
}
