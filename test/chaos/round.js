// One chaos round: a fresh space (audiences, computed traits, an account
// audience, a webhook destination on a local receiver), the load running, a
// fault injected, then the fleet's output compared with the oracle.
'use strict';
const { ChaosReceiver } = require('./receiver');
const { Load } = require('./load');
const { COMPUTATIONS, expectations, lastWindowEnd } = require('./oracle');
const { compareRound, caughtUp } = require('./observe');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, what, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message})` : ''}`);
    await sleep(intervalMs);
  }
}

/** Creates the round's space and waits until its computations are Live and the ingest takes its write key. */
async function setupSpace(fleet, receiver, name) {
  const space = (await fleet.api('POST', '/spaces', { name })).space;
  const source = (await fleet.api('POST', `/spaces/${space.id}/sources`, { name: 'Chaos Source' })).source;
  const destination = (
    await fleet.api('POST', `/spaces/${space.id}/destinations`, {
      name: 'Chaos Hook',
      type: 'webhook',
      settings: { url: `${receiver.url}/hook` },
    })
  ).destination;
  const created = [];
  for (const c of COMPUTATIONS) {
    const data = await fleet.api('POST', `/spaces/${space.id}/${c.kind}`, {
      name: c.name,
      key: c.key,
      definition: { query: c.query, type: c.level === 'account' ? 'accounts' : 'users' },
    });
    const resource = data.audience ?? data.computedTrait ?? Object.values(data)[0];
    if (resource.key !== c.key) throw new Error(`${c.name}: key ${resource.key}, expected ${c.key}`);
    created.push(resource);
    await fleet.api('POST', `/spaces/${space.id}/${c.kind}/${resource.id}/destinations`, {
      destinationId: destination.id,
      settings: c.level === 'account' ? { group: true, identify: false, track: false } : { identify: true, track: true },
    });
  }
  await waitFor(
    async () => {
      const [a, t] = await Promise.all([
        fleet.api('GET', `/spaces/${space.id}/audiences`),
        fleet.api('GET', `/spaces/${space.id}/computed-traits`),
      ]);
      const all = [...a.audiences, ...Object.values(t).find(Array.isArray)];
      return all.length === COMPUTATIONS.length && all.every((x) => x.status === 'Live');
    },
    'the computations to be Live',
    120_000,
  );
  // NOTE: the load starts once the dispatcher has done each new connection's
  // initial sync: a profile created while that sync runs gets a transition twice
  // under two messageIds (the sync's and the live path's; reported as a defect),
  // which is not what the rounds measure.
  await waitFor(
    async () => {
      for (const [c, r] of COMPUTATIONS.map((c, i) => [c, created[i]])) {
        const { connections } = await fleet.api('GET', `/spaces/${space.id}/${c.kind}/${r.id}/destinations`);
        if (!connections.every((x) => x.syncStatus.state === 'Synced')) return false;
      }
      return true;
    },
    "the connections' initial sync",
    120_000,
    500,
  );
  // The ingest learns write keys from engage.config: an empty batch answers 401 until it knows this one.
  const auth = `Basic ${Buffer.from(`${source.writeKey}:`).toString('base64')}`;
  await waitFor(
    async () => {
      const res = await fetch(`${fleet.ingestUrl}/v1/batch`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: '{"batch":[]}',
      });
      await res.arrayBuffer();
      return res.status !== 401;
    },
    'the ingest to accept the write key',
    60_000,
  );
  return { spaceId: space.id, sourceId: source.id, writeKey: source.writeKey, destinationId: destination.id, computations: created };
}

/**
 * Runs one round. `fault(ctx)` is called once the load runs and resolves when
 * the fault is over (the broken part answers again); ctx = { fleet, infra,
 * receiver, load, log }. Returns the round's row and details.
 */
async function runRound({
  name,
  fleet,
  infra,
  watcher,
  fault,
  runId,
  persons = 40,
  accounts = 5,
  lateShare = 0.3,
  groupFirst = false,
  workers = 4,
  pauseMs = 100,
  warmupMs = 5_000,
  afterFaultMs = 15_000,
  convergeMs = 240_000,
  quietMs = 10_000,
  seed = 1,
  dumpFile = null,
  log = () => {},
}) {
  const started = Date.now();
  const receiver = await new ChaosReceiver().start();
  const space = await setupSpace(fleet, receiver, `chaos ${name} ${runId}`);
  const load = new Load({
    ingestUrl: fleet.ingestUrl,
    writeKey: space.writeKey,
    runId,
    persons,
    accounts,
    lateShare,
    groupFirst,
    workers,
    pauseMs,
    seed,
    log,
  }).start();
  const ctx = { fleet, infra, receiver, load, log, space };
  const base = { load, sourceId: space.sourceId, spaceId: space.spaceId, watcher, receiver };
  let faultEndedAt = null;
  let recoveredAt = null;
  let error = null;
  try {
    await sleep(warmupMs);
    log(`[${name}] fault starts (${load.ackedCount()} calls acknowledged so far)`);
    await fault(ctx);
    faultEndedAt = Date.now();
    const snapshot = new Map(load.persons.map((p) => [p.i, p.acked.length]));
    const snapshotExp = expectations(load.persons, space.sourceId, Date.now(), { snapshot });
    log(`[${name}] fault over; load continues ${afterFaultMs / 1000} s`);
    const stopLoadAt = Date.now() + afterFaultMs;
    const recoveryDeadline = faultEndedAt + convergeMs;
    while (recoveredAt === null && Date.now() < recoveryDeadline) {
      if (caughtUp({ ...base, snapshot, snapshotExp })) recoveredAt = Date.now();
      else await sleep(500);
      if (Date.now() >= stopLoadAt && load.running) await load.stop();
    }
    if (Date.now() < stopLoadAt) await sleep(stopLoadAt - Date.now());
  } catch (err) {
    error = err;
  } finally {
    await load.stop();
  }
  // Converged: every acknowledged call resolved, every final value and transition as the oracle says.
  const windowsEnd = lastWindowEnd(load.persons);
  let convergedAt = null;
  let last = null;
  // One deadline for catching up and converging, counted from the fault's end (at least 30 s after the load stopped).
  const deadline = Math.max((faultEndedAt ?? Date.now()) + convergeMs, Date.now() + 30_000);
  while (Date.now() < deadline) {
    last = compareRound(base);
    // Extras cannot go away by waiting: they are counted after the quiet period.
    const clean =
      last.missingResolved === 0 &&
      last.changes.missing + last.changes.wrongFinal === 0 &&
      last.deliveries.missing + last.deliveries.wrongFinal === 0;
    if (clean && Date.now() > windowsEnd + 2_000) {
      convergedAt = Date.now();
      break;
    }
    await sleep(1_000);
  }
  // An absence check: nothing more may arrive; wait until the receiver and the changes topic are quiet.
  let changesSeen = (watcher.changes.get(space.spaceId) ?? []).length;
  let changesAt = Date.now();
  await waitFor(
    () => {
      const n = (watcher.changes.get(space.spaceId) ?? []).length;
      if (n !== changesSeen) [changesSeen, changesAt] = [n, Date.now()];
      return Date.now() - Math.max(receiver.lastArrival, changesAt) >= quietMs;
    },
    'a quiet period',
    quietMs + 60_000,
  ).catch((err) => (error = error ?? err));
  const final = compareRound(base);
  await receiver.stop();
  if (dumpFile) dump(dumpFile, { final, load, space, receiver, watcher });
  const row = {
    round: name,
    acked: final.acked,
    givenUp: load.stats.givenUp,
    failedAttempts: load.stats.failedAttempts,
    missingResolved: final.missingResolved,
    changesMissing: final.changes.missing + final.changes.wrongFinal,
    changesExtra: final.changes.extra,
    deliveredMissing: final.deliveries.missing + final.deliveries.wrongFinal,
    deliveredExtra: final.deliveries.extra,
    doubled: final.deliveries.doubled + final.deliveries.conflicting,
    changesDoubled: final.changes.doubled + final.changes.conflicting,
    recoverySeconds: recoveredAt && faultEndedAt ? (recoveredAt - faultEndedAt) / 1000 : null,
    convergedSeconds: convergedAt && faultEndedAt ? (convergedAt - faultEndedAt) / 1000 : null,
    roundSeconds: (Date.now() - started) / 1000,
    error: error ? String(error.message ?? error) : null,
  };
  return { row, final, load, space, receiver };
}

/** Writes the round's problems with the raw deliveries and changes of the persons involved (for a defect report). */
function dump(file, { final, load, space, receiver, watcher }) {
  const details = [...final.changes.details, ...final.deliveries.details];
  // Wrong final values first: they are the rarer findings.
  const ranked = [...details.filter((d) => 'expectedFinal' in d), ...details];
  const names = new Set(ranked.map((d) => d.person).filter(Boolean));
  const groups = new Set(details.map((d) => d.account).filter(Boolean));
  const persons = [...names].slice(0, 6).map((n) => load.persons.find((p) => p.userId === n));
  const ids = new Set(persons.flatMap((p) => [p.userId, p.anonymousId].filter(Boolean)));
  const out = {
    final,
    persons: persons.map((p) => ({
      userId: p.userId,
      anonymousId: p.anonymousId,
      late: p.late,
      acked: p.acked.map((a) => ({ at: a.ackedAt, ...a.call })),
    })),
    deliveries: receiver.ok
      .filter((r) => r.body && (ids.has(r.body.userId) || ids.has(r.body.anonymousId)))
      .map((r) => ({
        at: r.at,
        type: r.body.type,
        event: r.body.event,
        userId: r.body.userId,
        anonymousId: r.body.anonymousId,
        messageId: r.body.messageId,
        timestamp: r.body.timestamp,
        traits: r.body.traits,
        properties: r.body.properties,
      })),
    changes: (watcher.changes.get(space.spaceId) ?? []).filter((c) => ids.has(c.user_id) || ids.has(c.anonymous_id)),
    accounts: [...groups].map((g) => ({
      groupId: g,
      members: load.persons
        .filter((p) => p.acked.some((a) => a.call.type === 'group' && a.call.groupId === g))
        .map((p) => ({
          userId: p.userId,
          late: p.late,
          tainted: p.tainted,
          calls: p.acked.map((a) => `${a.ackedAt} ${a.call.type} ${a.call.event ?? ''} ${a.call.messageId}`),
        })),
      changes: (watcher.changes.get(space.spaceId) ?? []).filter((c) => c.level === 'account'),
    })),
  };
  require('node:fs').writeFileSync(file, JSON.stringify(out, null, 1));
}

module.exports = { runRound, setupSpace, waitFor, sleep };
