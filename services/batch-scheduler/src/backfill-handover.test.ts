// The pure parts of a historical backfill with an injected clock: the
// replayed fold, real time's own state (applyEvent with a bounded history),
// and their handover (addHistory) count every event exactly once, whatever
// the history bound and however the events interleave with the pass.
import { applyEvent, compileComputation, parseQuery, type CompiledComputation, type ProfileState } from '@engage/engine';
import type { ResolvedEvent } from '@engage/schemas';
import { toEngineEvent } from '@engage/profile-store';
import { HistoryFold } from './history-fold';
import { addHistory } from './history-handover';

const CUT = 1_000_000;

function computation(id: string, key: string, query: string, cls: 'audience' | 'trait', over: Partial<CompiledComputation> = {}) {
  const ast = parseQuery(query, { type: cls === 'trait' ? 'trait' : 'users' });
  return compileComputation({ id, key, class: cls, ast, definitionVersion: 1, countsEventsFrom: CUT, ...over }, new Set());
}

let seq = 0;
function resolved(event: string, arrivedAt: number, over: Partial<ResolvedEvent> = {}): ResolvedEvent {
  seq++;
  return {
    profile_id: 'pro_1',
    account_id: null,
    resolved_at: arrivedAt,
    message_id: `m${seq}`,
    type: 'track',
    space_id: 'spa_1',
    source_id: 'src_1',
    user_id: 'u1',
    anonymous_id: null,
    group_id: null,
    previous_id: null,
    event,
    name: null,
    timestamp: arrivedAt - 10,
    sent_at: null,
    received_at: arrivedAt - 5,
    properties_json: '{}',
    traits_json: '{}',
    context_json: '{}',
    integrations_json: '{}',
    external_ids: [],
    ...over,
  };
}

const empty = (): ProfileState => ({ events: [], traits: {}, values: {} });

describe('backfill handover', () => {
  const firstTouch = computation('aud_ft', 'first_touch', "event('First Touch').count() >= 1", 'audience');
  const views = computation('tr_pv', 'page_views', "event('Page Viewed').count()", 'trait');
  const ordered = [firstTouch, views];

  it('a First Touch and 300 page views before the cut, 2 views after: the user enters and the trait is 302', () => {
    const before = [resolved('First Touch', 1000), ...Array.from({ length: 300 }, (_, i) => resolved('Page Viewed', 2000 + i))];
    const after = [resolved('Page Viewed', CUT + 1), resolved('Page Viewed', CUT + 2)];
    // Real time saw everything (the older computations' evaluation), keeping only 200 events.
    const state = empty();
    for (const e of before) applyEvent(state, toEngineEvent(e), [], { maxEvents: 200, now: e.resolved_at });
    // The new computations come in; the events after the cut arrive during the pass.
    for (const e of after) applyEvent(state, toEngineEvent(e), ordered, { maxEvents: 200, now: e.resolved_at });
    expect(state.values[views.id]!.value).toBe(2); // real time alone: only what arrived after the change

    const fold = new HistoryFold(ordered, CUT + 5);
    for (const e of [...before, ...after]) fold.add(0, 'pro_1', e); // the replay may read past the cut: those are skipped
    const history = fold.statesOf('pro_1').map((s) => ({ ...s, pass: 'p1' }));
    const changes = addHistory(state, ordered, history, 'w1', CUT + 10);
    expect(changes.map((c) => [c.computation.key, c.value, c.previous])).toEqual([
      ['first_touch', true, false],
      ['page_views', 302, 2],
    ]);
    // The same step again (a re-run after a crash) adds nothing; a later step of the same pass adds only its states.
    expect(addHistory(state, ordered, history, 'w1', CUT + 20)).toEqual([]);
    expect(
      addHistory(
        state,
        ordered,
        ordered.map((c) => ({ computation: c, state: null, pass: 'p1' })),
        'scan',
        CUT + 20,
      ),
    ).toEqual([]);
    // Real time goes on from there.
    const next = applyEvent(state, toEngineEvent(resolved('Page Viewed', CUT + 30)), ordered, { maxEvents: 200, now: CUT + 30 });
    expect(next.map((c) => c.value)).toEqual([303]);
  });

  it('a profile real time has not built yet: built from its stored history (after the cut only) plus the replay', () => {
    const state = empty();
    const events = [resolved('Page Viewed', CUT - 2), resolved('Page Viewed', CUT - 1), resolved('Page Viewed', CUT + 1)];
    // Real time applied all three before it knew the computation (config lag).
    for (const e of events) applyEvent(state, toEngineEvent(e), [], { maxEvents: 200, now: e.resolved_at });
    const fold = new HistoryFold([views], CUT + 5);
    for (const e of events) fold.add(0, 'pro_1', e);
    const changes = addHistory(
      state,
      [views],
      fold.statesOf('pro_1').map((s) => ({ ...s, pass: 'p1' })),
      'w1',
      CUT + 10,
    );
    expect(changes.map((c) => c.value)).toEqual([3]);
  });

  it('an edited definition during the pass: the replayed state of the old version is not used', () => {
    const state = empty();
    const fold = new HistoryFold([views], CUT);
    fold.add(0, 'pro_1', resolved('Page Viewed', 10));
    const edited = computation('tr_pv', 'page_views', "event('Page Viewed').count()", 'trait', {
      definitionVersion: 2,
      countsEventsFrom: CUT + 100,
    });
    const changes = addHistory(
      state,
      [edited],
      fold.statesOf('pro_1').map((s) => ({ ...s, pass: 'p1' })),
      'w1',
      CUT + 200,
    );
    // Evaluated as version 2 from real time's state only (0), not from version 1's replay (1); its own pass adds its history.
    expect(changes.map((c) => [c.value, c.previous])).toEqual([[0, null]]);
    expect((state.incremental!.c[views.id] as { b?: unknown }).b).toBeUndefined();
  });

  it('a state marked by an earlier pass (re-enabled) is rebuilt before the new history is added', () => {
    const state = empty();
    const fold = new HistoryFold([views], CUT);
    fold.add(0, 'pro_1', resolved('Page Viewed', 10));
    const history = fold.statesOf('pro_1').map((s) => ({ ...s, pass: 'p1' }));
    addHistory(state, [views], history, 'w1', CUT);
    expect(state.values[views.id]!.value).toBe(1);
    const changes = addHistory(
      state,
      [views],
      history.map((h) => ({ ...h, pass: 'p2' })),
      'w1',
      CUT + 1,
    );
    expect(changes).toEqual([]);
    expect(state.values[views.id]!.value).toBe(1); // not 2
  });
});

describe('HistoryFold', () => {
  const views = computation('tr_pv', 'page_views', "event('Page Viewed').count()", 'trait');

  it('drops redeliveries (same event id) and malformed events, folds only the events it needs', () => {
    const fold = new HistoryFold([views], CUT);
    const e = resolved('Page Viewed', 10);
    fold.add(0, 'pro_1', e);
    fold.add(0, 'pro_1', { ...e, resolved_at: 20 }); // re-resolved copy: same event key
    fold.add(0, 'pro_1', resolved('Page Viewed', 30, { properties_json: '{' }));
    fold.add(0, 'pro_2', resolved('Order Completed', 40));
    expect(fold.stats).toEqual({ folded: 1, duplicates: 1, malformed: 1 });
    expect(fold.profileIds()).toEqual(['pro_1']);
  });

  it('moveTo merges a merged profile into its survivor (the union of both histories)', () => {
    const fold = new HistoryFold([views], CUT);
    fold.add(0, 'pro_a', resolved('Page Viewed', 10));
    fold.add(1, 'pro_b', resolved('Page Viewed', 20));
    fold.add(1, 'pro_b', resolved('Page Viewed', 30));
    fold.moveTo('pro_a', 'pro_b');
    expect(fold.profileIds()).toEqual(['pro_b']);
    const state = empty();
    addHistory(
      state,
      [views],
      fold.statesOf('pro_b').map((s) => ({ ...s, pass: 'p' })),
      'w1',
      CUT,
    );
    expect(state.values[views.id]!.value).toBe(3);
  });

  it('remembers at least the dedupe window of ids per partition', () => {
    const fold = new HistoryFold([views], CUT, 2);
    const [a, b, c] = [resolved('Page Viewed', 1), resolved('Page Viewed', 2), resolved('Page Viewed', 3)];
    for (const e of [a, b, c, a, b, c]) fold.add(0, 'pro_1', e);
    fold.add(1, 'pro_1', a); // another partition: another window
    expect(fold.stats.duplicates).toBe(3);
  });
});
