import { completeDockerfile, isDockerfileCell } from '../src/dockerfile';

describe('completeDockerfile', () => {
  it('completes FRO to FROM at the start of a line', () => {
    const text = '%%dockerfile -t demo\nFRO';
    expect(completeDockerfile(text, text.length)).toEqual({
      start: text.length - 3,
      end: text.length,
      items: ['FROM']
    });
  });

  it('is case-insensitive and keeps the indentation', () => {
    const text = 'FROM x\n  co';
    expect(completeDockerfile(text, text.length)).toEqual({
      start: 9,
      end: 11,
      items: ['COPY']
    });
  });

  it('offers every instruction on an empty line', () => {
    expect(completeDockerfile('', 0)?.items).toHaveLength(18);
  });

  it('offers image names after FROM, filtered by what is typed', () => {
    const images = ['demo:latest', 'demo', 'web:1'];
    const text = 'FROM de';
    expect(completeDockerfile(text, text.length, images)).toEqual({
      start: 5,
      end: 7,
      items: ['demo', 'demo:latest']
    });
    const platform = 'FROM --platform=linux/amd64 w';
    expect(completeDockerfile(platform, platform.length, images)?.items).toEqual(['web:1']);
  });

  it('offers nothing on the magic line or inside arguments', () => {
    expect(completeDockerfile('%%dockerfile -t', 15)).toBeNull();
    expect(completeDockerfile('RUN ech', 7)).toBeNull();
  });
});

describe('isDockerfileCell', () => {
  it('knows a %%dockerfile cell', () => {
    expect(isDockerfileCell('%%dockerfile -t x\nFROM scratch')).toBe(true);
    expect(isDockerfileCell('%%dockerfiles')).toBe(false);
    expect(isDockerfileCell('print(1)')).toBe(false);
  });
});
