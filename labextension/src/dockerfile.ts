/**
 * Dockerfiles as a language: the instruction keywords, completion of a line's first word and of
 * image names after FROM (pure functions, tested by jest), and a CodeMirror 6 stream language
 * for `%%dockerfile` cells (the magic line as meta, the rest through the legacy Dockerfile mode).
 */
import type { StreamParser } from '@codemirror/language';

export const INSTRUCTIONS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR'
];

export const CELL_MIME = 'text/x-ipydock-dockerfile';
const MAGIC = /^%%dockerfile\b/;

/** Whether a cell's source is a `%%dockerfile` cell. */
export function isDockerfileCell(source: string): boolean {
  return MAGIC.test(source);
}

export interface Completion {
  start: number;
  end: number;
  items: string[];
}

/**
 * What to offer at `offset` in `text` (a Dockerfile, or a `%%dockerfile` cell): instruction
 * keywords for the first word of a line (`FRO` -> `FROM`), image names after `FROM`.
 */
export function completeDockerfile(
  text: string,
  offset: number,
  images: string[] = []
): Completion | null {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const line = text.slice(lineStart, offset);
  if (lineStart === 0 && line.startsWith('%%')) {
    return null; // the magic line: its flags are not Dockerfile
  }
  const word = /^(\s*)([A-Za-z]*)$/.exec(line);
  if (word) {
    const prefix = word[2].toUpperCase();
    const items = INSTRUCTIONS.filter(k => k.startsWith(prefix));
    return { start: lineStart + word[1].length, end: offset, items };
  }
  const from = /^\s*FROM\s+(?:--platform=\S+\s+)?(\S*)$/i.exec(line);
  if (from) {
    const prefix = from[1];
    const items = [...new Set(images)].filter(n => n.startsWith(prefix)).sort();
    return { start: offset - prefix.length, end: offset, items };
  }
  return null;
}

interface CellState {
  inner: unknown;
}

/** The legacy Dockerfile mode with the `%%dockerfile …` line read as one meta token. */
export function cellParser(dockerFile: StreamParser<unknown>): StreamParser<CellState> {
  return {
    name: 'dockerfile',
    startState: (indentUnit: number) => ({
      inner: dockerFile.startState ? dockerFile.startState(indentUnit) : {}
    }),
    copyState: (state: CellState) => ({
      inner: dockerFile.copyState
        ? dockerFile.copyState(state.inner)
        : { ...(state.inner as object) }
    }),
    token(stream, state) {
      if (stream.sol() && stream.match(/^%%\S*/)) {
        stream.skipToEnd();
        return 'meta';
      }
      return dockerFile.token(stream, state.inner);
    },
    languageData: dockerFile.languageData
  };
}
