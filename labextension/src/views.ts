/** Main-area views the panel opens: an image's history and layers, a table, the network picture. */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { humanSize } from './model';
import type { HistoryRow, LayerFiles } from './types';

/** A `<table>` of `rows` under `columns`; cells are text (never HTML). */
export function table(columns: string[], rows: (string | number)[][], cls = ''): HTMLElement {
  const t = document.createElement('table');
  t.className = `jp-ipydock-table ${cls}`;
  const head = t.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement('th');
    th.textContent = c;
    head.appendChild(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      tr.insertCell().textContent = String(cell);
    }
  }
  return t;
}

function heading(text: string): HTMLElement {
  const h = document.createElement('h3');
  h.textContent = text;
  return h;
}

/** A main-area tab with `content`, labelled `label`, found again by `id`. */
export function tab(id: string, label: string, content: HTMLElement[]): MainAreaWidget {
  const inner = new Widget();
  inner.addClass('jp-ipydock-view');
  for (const el of content) {
    inner.node.appendChild(el);
  }
  const widget = new MainAreaWidget({ content: inner });
  widget.id = id;
  widget.title.label = label;
  widget.title.closable = true;
  return widget;
}

/** The image's history (one row per build step) and, per layer, what it adds/changes/deletes. */
export function historyView(
  name: string,
  history: HistoryRow[],
  layers: LayerFiles[]
): HTMLElement[] {
  const steps = table(
    ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
    history.map(r => [
      r.id.startsWith('sha256:') ? r.id.slice(7, 19) : r.id,
      r.created ?? 'N/A',
      r.created_by,
      humanSize(r.size),
      r.comment
    ]),
    'jp-ipydock-history'
  );
  const out: HTMLElement[] = [heading(`History of ${name}`), steps, heading('Layers')];
  for (const layer of layers) {
    const details = document.createElement('details');
    details.className = 'jp-ipydock-layer';
    const summary = document.createElement('summary');
    summary.textContent =
      `#${layer.index} ${humanSize(layer.size)}` +
      (layer.wasted ? ` (${humanSize(layer.wasted)} wasted)` : '') +
      ` ${layer.created_by}`;
    details.appendChild(summary);
    details.appendChild(
      table(
        ['', 'PATH', 'TYPE', 'SIZE'],
        layer.files.map(f => [f.change, f.path, f.type, humanSize(f.size)])
      )
    );
    out.push(details);
  }
  return out;
}

/** The network picture (SVG drawn by ipydock.display.network on the server). */
export function svgView(svg: string): HTMLElement {
  const div = document.createElement('div');
  div.className = 'jp-ipydock-graph';
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  div.appendChild(document.importNode(doc.documentElement, true));
  return div;
}
