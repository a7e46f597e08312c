// The size sampler with fakes and an injected clock: which audiences and
// computed traits it writes, and when it leaves one alone.
import type { ConfigStore } from '@engage/config-store';
import { SizeHistoryJob } from './size-history.job';

const T0 = Date.UTC(2026, 0, 31, 12, 0, 0);
const MIN = 60_000;

function setUp(audiences: Array<{ id: string; enabled: boolean }>, traits: Array<{ id: string; enabled: boolean }> = []) {
  let now = T0;
  const sizes = new Map<string, number>();
  const writes: Array<{ at: number; samples: Array<{ computationId: string; size: number }> }> = [];
  const job = new SizeHistoryJob(
    { intervalMs: MIN },
    {
      store: { list: ((kind: string) => (kind === 'audience' ? audiences : traits)) as unknown as ConfigStore['list'] },
      sizes: { memberCount: async (id) => sizes.get(id) ?? 0 },
      history: { recordSizes: async (samples, at) => void writes.push({ at, samples }) },
      now: () => now,
    },
  );
  return { job, sizes, writes, advance: (ms: number) => (now += ms), audiences };
}

it('samples every enabled audience, then writes one again only in a new interval or with a new size', async () => {
  const t = setUp([
    { id: 'aud_a', enabled: true },
    { id: 'aud_b', enabled: true },
    { id: 'aud_off', enabled: false },
  ]);
  t.sizes.set('aud_a', 3);
  await t.job.tick();
  t.advance(15_000);
  await t.job.tick(); // same interval, same sizes: nothing
  t.sizes.set('aud_b', 1);
  t.advance(15_000);
  await t.job.tick(); // same interval, b grew: b again (the later sample wins the interval)
  t.advance(30_000);
  await t.job.tick(); // a new interval: both
  expect(t.writes).toEqual([
    {
      at: T0,
      samples: [
        { computationId: 'aud_a', size: 3 },
        { computationId: 'aud_b', size: 0 },
      ],
    },
    { at: T0 + 15_000, samples: [] },
    { at: T0 + 30_000, samples: [{ computationId: 'aud_b', size: 1 }] },
    {
      at: T0 + MIN,
      samples: [
        { computationId: 'aud_a', size: 3 },
        { computationId: 'aud_b', size: 1 },
      ],
    },
  ]);
  expect(t.job.everyMs).toBe(15_000);
});

it('tries an audience again when its write failed, and forgets audiences that are gone', async () => {
  const audiences = [{ id: 'aud_a', enabled: true }];
  const written: string[][] = [];
  let fail = true;
  const job = new SizeHistoryJob(
    { intervalMs: MIN },
    {
      store: { list: ((kind: string) => (kind === 'audience' ? audiences : [])) as unknown as ConfigStore['list'] },
      sizes: { memberCount: async () => 2 },
      history: {
        recordSizes: async (samples) => {
          if (fail) throw new Error('redis down');
          written.push(samples.map((s) => s.computationId));
        },
      },
      now: () => T0,
    },
  );
  await expect(job.tick()).rejects.toThrow('redis down');
  fail = false;
  // Same interval, same size: written now, since the first write failed.
  expect(await job.tick()).toBe(1);
  expect(await job.tick()).toBe(0);
  audiences.splice(0, 1, { id: 'aud_new', enabled: true });
  expect(await job.tick()).toBe(1);
  // aud_a is forgotten: back, it is written again.
  audiences.push({ id: 'aud_a', enabled: true });
  expect(await job.tick()).toBe(1);
  expect(written).toEqual([['aud_a'], [], ['aud_new'], ['aud_a']]);
});

it('samples enabled computed traits too (their size: profiles with a value)', async () => {
  const t = setUp(
    [{ id: 'aud_a', enabled: true }],
    [
      { id: 'trt_a', enabled: true },
      { id: 'trt_off', enabled: false },
    ],
  );
  t.sizes.set('trt_a', 5);
  await t.job.tick();
  expect(t.writes).toEqual([
    {
      at: T0,
      samples: [
        { computationId: 'aud_a', size: 0 },
        { computationId: 'trt_a', size: 5 },
      ],
    },
  ]);
});
