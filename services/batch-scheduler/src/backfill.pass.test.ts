// BackfillPass with fakes (profiles in a Map, a scripted replay, an alias
// table) and an injected clock: the replayed history lands on the profile
// where the person lives now, profiles nobody stored are created, the scan
// evaluates the computations without history, progress only goes forward to
// 1, and a re-run of the same pass (a crash) changes nothing.
import { applyEvent, compileComputation, parseQuery, type CompiledComputation } from '@engage/engine';
import { emptyProfile, type PendingChange, type ProfileRef, type StoredProfile } from '@engage/profile-store';
import type { ResolvedEvent } from '@engage/schemas';
import { BackfillPass, type PassTarget } from './backfill.pass';
import { toEngineEvent } from '@engage/profile-store';
import type { HistoryReplay, ReplayedEvent } from './history-replay';
import type { IdentityAliases } from './identity-aliases';

const CUT = 1_000_000;
const SPACE = 'spa_1';

const computation = (id: string, key: string, query: string, cls: 'audience' | 'trait'): CompiledComputation =>
  compileComputation(
    {
      id,
      key,
      class: cls,
      ast: parseQuery(query, { type: cls === 'trait' ? 'trait' : 'users' }),
      definitionVersion: 1,
      countsEventsFrom: CUT,
    },
    new Set(),
  );

let seq = 0;
const resolved = (profileId: string, event: string, arrivedAt: number, space = SPACE): ResolvedEvent => ({
  profile_id: profileId,
  account_id: null,
  resolved_at: arrivedAt,
  message_id: `m${++seq}`,
  type: 'track',
  space_id: space,
  source_id: 'src_1',
  user_id: null,
  anonymous_id: null,
  group_id: null,
  previous_id: null,
  event,
  name: null,
  timestamp: arrivedAt,
  sent_at: null,
  received_at: arrivedAt,
  properties_json: '{}',
  traits_json: '{}',
  context_json: '{}',
  integrations_json: '{}',
  external_ids: [],
});

function fleet(stored: StoredProfile[], log: ResolvedEvent[], aliases: Record<string, string>, ordered: CompiledComputation[]) {
  const db = new Map(stored.map((p) => [p.profileId, JSON.stringify(p)]));
  const committed: PendingChange[] = [];
  const registry = { forSpace: () => ({ ordered, accounts: [], byId: new Map() }) };
  const profiles = {
    stateKey: (r: ProfileRef) => r.profileId,
    withLocks: async <T>(_refs: ProfileRef[], fn: () => Promise<T>) => fn(),
    load: async (refs: ProfileRef[]) =>
      refs.map((r) => (db.has(r.profileId) ? (JSON.parse(db.get(r.profileId)!) as StoredProfile) : emptyProfile(r))),
    countSpace: async () => db.size,
    async *scanSpace() {
      const ids = [...db.keys()];
      for (let i = 0; i < ids.length; i += 2) yield ids.slice(i, i + 2).map((profileId) => ({ spaceId: SPACE, profileId }));
    },
  };
  const committer = {
    commit: async (touched: Array<{ profile: StoredProfile }>, pending: PendingChange[]) => {
      for (const { profile } of touched) db.set(profile.profileId, JSON.stringify(profile));
      committed.push(...pending);
    },
  };
  const redis = {
    pipeline: () => {
      const keys: string[] = [];
      const p = { exists: (k: string) => (keys.push(k), p), exec: async () => keys.map((k) => [null, db.has(k) ? 1 : 0]) };
      return p;
    },
  };
  const replay = {
    run: async (onChunk: (e: ReplayedEvent[]) => Promise<void>, onProgress: (f: number) => Promise<void>) => {
      for (let i = 0; i < log.length; i += 3) {
        await onChunk(log.slice(i, i + 3).map((value, k) => ({ partition: 0, offset: String(i + k), value })));
        await onProgress(Math.min(1, (i + 3) / log.length));
      }
      return { events: log.length };
    },
  } as unknown as HistoryReplay;
  const follow = (pid: string) => {
    while (aliases[pid]) pid = aliases[pid]!;
    return pid;
  };
  const identity = {
    survivors: async (_s: string, ids: string[]) => new Map(ids.map((id) => [id, follow(id)])),
  } as unknown as IdentityAliases;
  const pass = new BackfillPass({
    all: registry as never,
    realtime: registry as never,
    profiles: profiles as never,
    committer: committer as never,
    redis: redis as never,
    replay: () => replay,
    aliases: () => identity,
    now: () => CUT + 1000,
  });
  return { db, committed, pass };
}

describe('BackfillPass', () => {
  const views = computation('tr_v', 'views', "event('Page Viewed').count()", 'trait');
  const recent = computation('aud_r', 'recent_viewer', "event('Page Viewed').count() >= 1", 'audience');
  const ordered = [views, recent];
  const targets: PassTarget[] = [
    { compiled: views, historical: true, reason: 'backfill', pass: 'p1' },
    { compiled: recent, historical: false, reason: 'backfill', pass: 'p1' },
  ];

  it('writes the replayed history where each person lives now, creates unseen profiles, scans the rest', async () => {
    // pro_a: 3 views before the change, 1 after (real time has applied it); pro_b was merged into pro_c since.
    const a = emptyProfile({ spaceId: SPACE, profileId: 'pro_a' });
    const log = [
      resolved('pro_a', 'Page Viewed', 10),
      resolved('pro_a', 'Page Viewed', 11),
      resolved('pro_b', 'Page Viewed', 12),
      resolved('pro_a', 'Page Viewed', 13),
      resolved('pro_x', 'Page Viewed', 14, 'spa_other'),
      resolved('pro_new', 'Page Viewed', 15),
      resolved('pro_c', 'Signed Up', 16),
    ];
    const after = resolved('pro_a', 'Page Viewed', CUT + 1);
    applyEvent(a, toEngineEvent(after), ordered, { maxEvents: 2, now: CUT + 1 });
    const c = emptyProfile({ spaceId: SPACE, profileId: 'pro_c' });
    const quiet = emptyProfile({ spaceId: SPACE, profileId: 'pro_quiet' });
    const { db, committed, pass } = fleet([a, c, quiet], [...log, after], { pro_b: 'pro_c' }, ordered);
    const progress: number[] = [];
    await pass.run(SPACE, targets, { progress: async (f) => void progress.push(f), renew: async () => {} });

    const value = (pid: string, id: string) => (JSON.parse(db.get(pid)!) as StoredProfile).values[id]?.value;
    expect(['pro_a', 'pro_c', 'pro_new', 'pro_quiet'].map((p) => [p, value(p, views.id), value(p, recent.id)])).toEqual([
      ['pro_a', 4, true], // 3 replayed + 1 real time
      ['pro_c', 1, false], // pro_b's view; without history the audience counts only what came after the change
      ['pro_new', 1, false],
      ['pro_quiet', 0, false],
    ]);
    expect(db.has('pro_b')).toBe(false);
    expect(db.has('pro_x')).toBe(false);
    expect(progress.every((p, i) => p >= 0 && p <= 1 && (i === 0 || p >= progress[i - 1]!))).toBe(true);
    expect(progress.at(-1)).toBe(1);
    expect(
      committed.filter((p) => p.change.computation.id === views.id).map((p) => [p.profile.profileId, p.change.value, p.reason, p.cause]),
    ).toEqual([
      ['pro_a', 4, 'backfill', `backfill@${views.id}@p1`],
      ['pro_c', 1, 'backfill', `backfill@${views.id}@p1`],
      ['pro_new', 1, 'backfill', `backfill@${views.id}@p1`],
      ['pro_quiet', 0, 'backfill', `backfill@${views.id}@p1`],
    ]);

    // The same pass again (the scheduler died before marking it done): nothing counts twice, nothing changes.
    committed.length = 0;
    await pass.run(SPACE, targets, { progress: async () => {}, renew: async () => {} });
    expect(committed).toEqual([]);
    expect(value('pro_a', views.id)).toBe(4);
  });
});
