// Failure behaviour through the fleet (real Kafka, schema registry, Redis;
// services as processes): a realtime evaluator killed with SIGKILL in the
// middle of a stream and restarted loses no change and repeats a change only
// with its original change_id; two scheduler replicas expire windows once.
import type { ComputationChange } from '@engage/schemas';
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

let f: Fleet;
const env = { EVALUATOR_CHUNK_SIZE: '25', EVALUATOR_SESSION_TIMEOUT_MS: '6000', PROFILE_LOCK_TTL_MS: '5000', SCHEDULER_LEASE_MS: '5000' };

beforeAll(async () => {
  f = await startFleet('eval-restart', { env });
});
afterAll(async () => {
  await f?.stop();
});

/** Every change_id's records are identical but for emitted_at: a duplicate is a true duplicate. */
function conflictingDuplicates(changes: ComputationChange[]): string[] {
  const byId = new Map<string, string>();
  const bad: string[] = [];
  for (const c of changes) {
    const body = JSON.stringify([c.profile_id, c.computation_id, c.value, c.previous, c.reason, c.occurred_at]);
    if (byId.has(c.change_id) && byId.get(c.change_id) !== body) bad.push(c.change_id);
    byId.set(c.change_id, body);
  }
  return bad;
}

describe('failures', () => {
  it('an evaluator killed (SIGKILL) mid-stream and restarted: no change lost, duplicates only with the same change_id', async () => {
    await f.create('computed-traits', 'Ticks', "event('Tick').count()");
    await f.create('audiences', 'Three Ticks', "event('Tick').count() >= 3");
    await f.waitLive();
    const profiles = Array.from({ length: 150 }, (_, i) => `pro_k${i}`);
    const perProfile = 10;
    const events = [];
    for (let n = 0; n < perProfile; n++)
      for (const p of profiles) events.push(f.event(p, { event: 'Tick', timestamp: Date.now() - 60_000 + n }));
    await f.send(events);
    const evaluator = f.procs.find((p) => p.name === 'realtime-evaluator')!;
    const ticks = () => f.changes.filter((c) => c.computation_key === 'ticks').length;
    await waitFor(() => ticks() >= 150, { description: 'evaluation under way' });
    evaluator.child.kill('SIGKILL');
    await evaluator.exited;
    const killedAt = ticks();
    expect(killedAt).toBeLessThan(profiles.length * perProfile); // killed mid-stream
    f.start('realtime-evaluator');

    await waitFor(() => profiles.every((p) => new Set(f.changesOf(p, 'ticks').map((c) => c.change_id)).size === perProfile), {
      timeoutMs: 90000,
      description: 'every tick counted after the restart',
    });
    await waitFor(() => profiles.every((p) => f.changesOf(p, 'three_ticks').length >= 1), { description: 'every profile entered' });
    for (const p of profiles) {
      const distinct = new Map(f.changesOf(p, 'ticks').map((c) => [c.change_id, c.value]));
      expect([p, [...distinct.values()].sort((a, b) => Number(a) - Number(b))]).toEqual([
        p,
        Array.from({ length: perProfile }, (_, i) => i + 1),
      ]);
      expect([p, new Set(f.changesOf(p, 'three_ticks').map((c) => c.change_id)).size]).toEqual([p, 1]);
    }
    expect(conflictingDuplicates(f.changes)).toEqual([]);
  });

  it('two scheduler replicas: each window expires once (reason expiry), duplicates only with the same change_id', async () => {
    f.start('batch-scheduler');
    await f.create('audiences', 'Pinged Last Hour', "event('Ping').within(1 hours).count() >= 1");
    await f.waitLive();
    const profiles = Array.from({ length: 60 }, (_, i) => `pro_x${i}`);
    const base = Date.now() - 3_600_000;
    await f.send(profiles.map((p, i) => f.event(p, { event: 'Ping', timestamp: base + 6000 + (i % 6) * 500 })));
    await waitFor(() => profiles.every((p) => f.changesOf(p, 'pinged_last_hour').length >= 2), {
      timeoutMs: 60000,
      description: 'every profile entered and expired',
    });
    for (const [i, p] of profiles.entries()) {
      const distinct = [...new Map(f.changesOf(p, 'pinged_last_hour').map((c) => [c.change_id, c])).values()];
      expect([p, distinct.map((c) => [c.value, c.reason])]).toEqual([
        p,
        [
          [true, 'realtime'],
          [false, 'expiry'],
        ],
      ]);
      // The exit happens when the window passes the event (its due time), not before.
      expect(distinct[1]!.occurred_at).toBeGreaterThan(base + 6000 + (i % 6) * 500 + 3_600_000 - 1);
    }
    expect(conflictingDuplicates(f.changes)).toEqual([]);
  });
});
