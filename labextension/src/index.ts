/**
 * ipydock in JupyterLab: the "Containers" sidebar (live through the server's events), palette
 * commands, and `%%dockerfile` cells highlighted and completed as Dockerfiles.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import {
  CompletionHandler,
  ICompletionContext,
  ICompletionProvider,
  ICompletionProviderManager
} from '@jupyterlab/completer';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LanguageSupport, StreamLanguage } from '@codemirror/language';
import { dockerFile } from '@codemirror/legacy-modes/mode/dockerfile';

import {
  CELL_MIME,
  cellParser,
  completeDockerfile,
  isDockerfileCell
} from './dockerfile';
import { imageNames } from './model';
import { ContainersPanel, pruneDangling, report } from './panel';
import * as api from './request';

const PLUGIN_ID = 'ipydock:plugin';

export namespace CommandIDs {
  export const open = 'ipydock:open-panel';
  export const prune = 'ipydock:prune-dangling';
  export const refresh = 'ipydock:refresh';
  export const build = 'ipydock:build-cell';
}

const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Containers sidebar: images, containers, volumes, networks, disk usage.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settings: ISettingRegistry | null,
    notebooks: INotebookTracker | null
  ) => {
    const panel = new ContainersPanel(app);
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'ipydock-containers');
    void panel.refresh();

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show the Containers panel',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.prune, {
      label: 'Prune dangling images',
      execute: () => pruneDangling()
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the Containers panel',
      execute: () => panel.refresh()
    });
    const dockerfileCell = () => {
      const cell = notebooks?.activeCell;
      return cell && isDockerfileCell(cell.model.sharedModel.getSource()) ? cell : null;
    };
    app.commands.addCommand(CommandIDs.build, {
      label: 'Build the Dockerfile in the current cell',
      isEnabled: () => dockerfileCell() !== null,
      execute: () => app.commands.execute('notebook:run-cell')
    });
    const commands = [CommandIDs.open, CommandIDs.prune, CommandIDs.refresh, CommandIDs.build];
    for (const command of commands) {
      palette?.addItem({ command, category: 'ipydock' });
    }
    if (settings) {
      void settings.load(PLUGIN_ID).then(s => {
        const apply = () => {
          panel.options.confirmRemove = s.get('confirmRemove').composite !== false;
        };
        apply();
        s.changed.connect(apply);
        const engine = s.get('engine').composite as string;
        if (engine) {
          void api
            .getEngine()
            .then(now => (now.engine === engine ? now : api.setEngine(engine)))
            .catch(report);
        }
      });
    }
  }
};

/** `%%dockerfile` cells get the Dockerfile language; other code cells the notebook's. */
function followCells(panel: NotebookPanel): void {
  const update = (model: any) => {
    if (model.type !== 'code') {
      return;
    }
    const want = isDockerfileCell(model.sharedModel.getSource())
      ? CELL_MIME
      : panel.content.codeMimetype;
    if (model.mimeType !== want) {
      model.mimeType = want;
    }
  };
  const seen = new WeakSet<object>();
  const hookAll = () => {
    const cells = panel.content.model?.cells;
    if (!cells) {
      return;
    }
    for (let i = 0; i < cells.length; i++) {
      const model = cells.get(i);
      update(model);
      if (!seen.has(model)) {
        seen.add(model);
        model.contentChanged.connect(() => update(model));
        model.mimeTypeChanged.connect(() => update(model));
      }
    }
  };
  void panel.context.ready.then(() => {
    hookAll();
    panel.content.model?.cells.changed.connect(hookAll);
  });
}

const dockerfilePlugin: JupyterFrontEndPlugin<void> = {
  id: 'ipydock:dockerfile',
  description: '%%dockerfile cells highlighted as Dockerfiles.',
  autoStart: true,
  requires: [IEditorLanguageRegistry],
  optional: [INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    languages: IEditorLanguageRegistry,
    notebooks: INotebookTracker | null
  ) => {
    languages.addLanguage({
      name: 'ipydock-dockerfile',
      displayName: 'Dockerfile (%%dockerfile cell)',
      mime: CELL_MIME,
      load: async () =>
        new LanguageSupport(StreamLanguage.define(cellParser(dockerFile as any)))
    });
    notebooks?.widgetAdded.connect((_, panel) => followCells(panel));
  }
};

class DockerfileCompleter implements ICompletionProvider {
  readonly identifier = 'ipydock:dockerfile';
  readonly rank = 900;
  readonly renderer = null;

  async isApplicable(context: ICompletionContext): Promise<boolean> {
    return Boolean(context.editor);
  }

  async fetch(
    request: CompletionHandler.IRequest,
    context: ICompletionContext
  ): Promise<CompletionHandler.ICompletionItemsReply> {
    const editor = context.editor;
    const mime = editor?.model.mimeType ?? '';
    const none = { start: request.offset, end: request.offset, items: [] };
    if (mime !== CELL_MIME && mime !== 'text/x-dockerfile') {
      return none;
    }
    const needsImages = /FROM\s+\S*$/i.test(request.text.slice(0, request.offset));
    const names = needsImages ? imageNames(await api.listImages().catch(() => [])) : [];
    const found = completeDockerfile(request.text, request.offset, names);
    if (!found) {
      return none;
    }
    const type = needsImages ? 'image' : 'keyword';
    return { ...found, items: found.items.map(label => ({ label, type })) };
  }
}

const completerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ipydock:completer',
  description: 'Completion of Dockerfile instructions and image names.',
  autoStart: true,
  requires: [ICompletionProviderManager],
  activate: (app: JupyterFrontEnd, manager: ICompletionProviderManager) => {
    manager.registerProvider(new DockerfileCompleter());
  }
};

export default [panelPlugin, dockerfilePlugin, completerPlugin];
