jest.mock('../src/request', () => ({
  getEngine: jest.fn(),
  listImages: jest.fn(),
  listContainers: jest.fn(),
  listVolumes: jest.fn(),
  listNetworks: jest.fn(),
  diskUsage: jest.fn(),
  followEvents: jest.fn()
}));

import * as api from '../src/request';
import { diskSummary, humanSize, imageNames, LiveUpdates, loadSnapshot } from '../src/model';

const mocked = api as jest.Mocked<typeof api>;

const image = (repository: string, tag: string, id: string) => ({
  repository,
  tag,
  id,
  created: null,
  size: 1234567,
  dangling: repository === '<none>'
});

describe('loadSnapshot', () => {
  it('asks for every list once and returns them together', async () => {
    mocked.getEngine.mockResolvedValue({ engine: 'bundled', where: '/s' });
    mocked.listImages.mockResolvedValue([image('demo', 'latest', 'sha256:a')]);
    mocked.listContainers.mockResolvedValue([]);
    mocked.listVolumes.mockResolvedValue([]);
    mocked.listNetworks.mockResolvedValue([]);
    const snap = await loadSnapshot();
    expect(snap.engine.engine).toBe('bundled');
    expect(snap.images.map(i => i.id)).toEqual(['sha256:a']);
    expect(mocked.listImages).toHaveBeenCalledTimes(1);
    expect(mocked.diskUsage).not.toHaveBeenCalled(); // slow: only while its section is open
  });

  it('fails as a whole when one request fails (the panel keeps its last picture)', async () => {
    mocked.listVolumes.mockRejectedValue(new Error('engine gone'));
    await expect(loadSnapshot()).rejects.toThrow('engine gone');
  });
});

describe('formatting', () => {
  it('prints sizes as docker does', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(100)).toBe('100B');
    expect(humanSize(2_000_000)).toBe('2MB');
    expect(humanSize(1234567)).toBe('1.23MB');
    expect(humanSize(12_300_000)).toBe('12.3MB');
    expect(humanSize(123_000_000_000)).toBe('123GB');
  });

  it('offers repo:tag and the bare repo for latest, never <none>', () => {
    const names = imageNames([
      image('demo', 'latest', 'a'),
      image('web', '1', 'b'),
      image('<none>', '<none>', 'c')
    ]);
    expect(names).toEqual(['demo:latest', 'demo', 'web:1']);
  });

  it('sums up system df', () => {
    const rows = [{ type: 'Images', total: 2, active: 1, size: 2_000_000, reclaimable: 1000 }];
    expect(diskSummary(rows)).toEqual(['Images: 2 (2MB, 1kB reclaimable)']);
  });
});

describe('LiveUpdates', () => {
  it('refreshes on hello, changed and engine, not on other events, and stops on abort', async () => {
    let release: () => void = () => undefined;
    mocked.followEvents.mockImplementation(async (onEvent, signal) => {
      onEvent('hello');
      onEvent('changed');
      onEvent('other');
      onEvent('engine');
      await new Promise<void>(resolve => {
        release = resolve;
        signal.addEventListener('abort', () => resolve());
      });
    });
    const onChange = jest.fn();
    const live = new LiveUpdates(onChange, undefined, 10);
    live.start();
    live.start(); // a second start follows no second stream
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(onChange).toHaveBeenCalledTimes(3);
    expect(mocked.followEvents).toHaveBeenCalledTimes(1);
    live.stop();
    release();
    expect(live.running).toBe(false);
  });

  it('reports a broken stream and reconnects', async () => {
    mocked.followEvents.mockReset();
    mocked.followEvents
      .mockRejectedValueOnce(new Error('server restarted'))
      .mockImplementation(async (onEvent, signal) => {
        onEvent('hello');
        await new Promise<void>(resolve => signal.addEventListener('abort', () => resolve()));
      });
    const onChange = jest.fn();
    const onError = jest.fn();
    const live = new LiveUpdates(onChange, onError, 5);
    live.start();
    await new Promise(resolve => setTimeout(resolve, 50));
    live.stop();
    expect(onError).toHaveBeenCalledWith(new Error('server restarted'));
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(mocked.followEvents).toHaveBeenCalledTimes(2);
  });
});
