import { dlq, ok, type ConsumedMessage } from '@engage/kafka';
import type { ResolvedEvent } from '@engage/schemas';
import { Registry } from 'prom-client';
import { EvaluatorMetrics } from './evaluator.metrics';

const message = (profileId: string, spaceId = 'spa_1') =>
  ({ value: { space_id: spaceId, profile_id: profileId } }) as unknown as ConsumedMessage<ResolvedEvent>;

describe('EvaluatorMetrics', () => {
  it('counts a chunk: its events by outcome, its size in events and in profiles, its time', async () => {
    const registry = new Registry();
    const metrics = new EvaluatorMetrics({ registry });
    // Four events of three profiles (one profile id in two spaces is two profiles), one dead-lettered.
    const chunk = [message('pro_a'), message('pro_a'), message('pro_b'), message('pro_a', 'spa_2')];
    const handle = metrics.timed(async (ms) => ms.map((_, i) => (i === 2 ? dlq('bad') : ok)));
    expect(await handle(chunk)).toHaveLength(4);

    const json = await registry.getMetricsAsJSON();
    const series = (name: string) => json.find((m) => m.name === name)!.values;
    expect(series('engage_evaluator_events_total')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { outcome: 'evaluated' }, value: 3 }),
        expect.objectContaining({ labels: { outcome: 'dlq' }, value: 1 }),
      ]),
    );
    const sum = (name: string) => series(name).find((v) => (v as { metricName?: string }).metricName === `${name}_sum`)!.value;
    const count = (name: string) => series(name).find((v) => (v as { metricName?: string }).metricName === `${name}_count`)!.value;
    expect([sum('engage_evaluator_chunk_events'), count('engage_evaluator_chunk_events')]).toEqual([4, 1]);
    expect([sum('engage_evaluator_chunk_profiles'), count('engage_evaluator_chunk_profiles')]).toEqual([3, 1]);
    expect(count('engage_evaluator_chunk_seconds')).toBe(1);
    expect(sum('engage_evaluator_chunk_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('counts nothing for a chunk whose handler throws (it is retried, then split: counted when it is handled)', async () => {
    const registry = new Registry();
    const metrics = new EvaluatorMetrics({ registry });
    const handle = metrics.timed(async () => {
      throw new Error('Redis down');
    });
    await expect(handle([message('pro_a')])).rejects.toThrow('Redis down');
    const json = await registry.getMetricsAsJSON();
    expect(json.find((m) => m.name === 'engage_evaluator_events_total')!.values).toEqual([]);
    const count = json
      .find((m) => m.name === 'engage_evaluator_chunk_events')!
      .values.find((v) => (v as { metricName?: string }).metricName === 'engage_evaluator_chunk_events_count');
    expect(count?.value ?? 0).toBe(0);
  });
});
