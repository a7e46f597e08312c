// What the chaos run watches: engage.events.resolved and
// engage.computations.changes (read from the start, decoded, per space), and
// the receiver's calls; and how they are compared with the oracle.
'use strict';
const { Kafka, logLevel } = require('kafkajs');
const { SchemaCodec } = require('@engage/schemas');
const { topicRegistry: topics } = require('@engage/kafka');
const { COMPUTATIONS, expectations, same, initial } = require('./oracle');

/** Unwraps an Avro union value ({double: 1} -> 1) if the decoder wrapped it. */
function plain(v) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && ['boolean', 'double', 'string', 'long', 'int'].includes(keys[0])) return v[keys[0]];
  }
  return v;
}

/** Reads the run's resolved events and changes into memory, per space. */
class TopicWatcher {
  /** `onRecord({ topic, partition, value, at })`: called for every decoded record as it arrives (bench/scaling.bench.mjs times the gaps). */
  constructor({ brokers, registryUrl, prefix, groupId, onRecord = null }) {
    this.onRecord = onRecord;
    this.kafka = new Kafka({ brokers: brokers.split(','), clientId: groupId, logLevel: logLevel.NOTHING });
    this.codec = new SchemaCodec({ url: registryUrl });
    this.topics = topics(prefix);
    this.groupId = groupId;
    /** space_id -> Set(message_id) */
    this.resolved = new Map();
    /** space_id -> [change] in topic order per partition, as read */
    this.changes = new Map();
    this.decodeErrors = 0;
  }

  async start() {
    this.consumer = this.kafka.consumer({ groupId: this.groupId, sessionTimeout: 30_000, retry: { retries: 1000, maxRetryTime: 5000 } });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topics.eventsResolved.name, this.topics.computationsChanges.name], fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        let v;
        try {
          v = await this.codec.decode(message.value);
        } catch (err) {
          // The registry may be down (a fault): kafkajs retries the message.
          this.decodeErrors++;
          throw err;
        }
        if (topic === this.topics.eventsResolved.name) {
          let s = this.resolved.get(v.space_id);
          if (!s) this.resolved.set(v.space_id, (s = new Set()));
          s.add(v.message_id);
        } else {
          let a = this.changes.get(v.space_id);
          if (!a) this.changes.set(v.space_id, (a = []));
          a.push({ ...v, value: plain(v.value), previous: plain(v.previous) });
        }
        this.onRecord?.({ topic, partition, value: v, at: Date.now() });
      },
    });
    return this;
  }

  async stop() {
    await this.consumer?.disconnect().catch(() => {});
  }
}

/** The delivered calls of a round: per (subject, key, call kind), the distinct messageIds in arrival order. */
function deliveredSequences(calls, persons, computations) {
  const byId = new Map();
  for (const p of persons) {
    byId.set(p.userId, p);
    if (p.anonymousId) byId.set(p.anonymousId, p);
  }
  const keys = new Set(computations.map((c) => c.key));
  const seqs = new Map(); // `${subject}|${key}|${kind}` -> { seen: Map(messageId -> fingerprint), values: [] }
  let conflicting = 0;
  let unknown = 0;
  let resyncs = 0;
  const add = (subject, key, kind, messageId, value, body) => {
    const id = `${subject}|${key}|${kind}`;
    let s = seqs.get(id);
    if (!s) seqs.set(id, (s = { seen: new Map(), values: [], identifiers: new Set() }));
    const fingerprint = JSON.stringify({ ...body, timestamp: undefined, sentAt: undefined });
    if (s.seen.has(messageId)) {
      if (s.seen.get(messageId) !== fingerprint) conflicting++;
      return;
    }
    s.seen.set(messageId, fingerprint);
    // A new identifier (the userId of a profile known until then by its
    // anonymousId) gets the current value re-sent once (DESIGN.md, identity
    // changes): not a second transition when it repeats the last value sent.
    const identifier = body.userId ?? `anon:${body.anonymousId}`;
    const fresh = s.identifiers.size > 0 && !s.identifiers.has(identifier);
    s.identifiers.add(identifier);
    if (fresh && s.values.length > 0 && same(s.values[s.values.length - 1], value)) {
      resyncs++;
      return;
    }
    s.values.push(value);
  };
  for (const { body } of calls) {
    if (!body) continue;
    if (body.type === 'group') {
      for (const k of Object.keys(body.traits ?? {}))
        if (keys.has(k)) add(`g:${body.groupId}`, k, 'group', body.messageId, body.traits[k], body);
      continue;
    }
    const person = byId.get(body.userId) ?? byId.get(body.anonymousId);
    if (!person) {
      unknown++;
      continue;
    }
    if (body.type === 'identify') {
      for (const k of Object.keys(body.traits ?? {}))
        if (keys.has(k)) add(`p:${person.i}`, k, 'identify', body.messageId, body.traits[k], body);
    } else if (body.type === 'track') {
      const k = body.properties?.audience_key ?? body.properties?.trait_key;
      if (keys.has(k)) add(`p:${person.i}`, k, 'track', body.messageId, body.properties[k], body);
    }
  }
  return { seqs, conflicting, unknown, resyncs };
}

/** The changes of a round as sequences per (subject, key): distinct change_ids in topic order. */
function changeSequences(changes, persons) {
  const byId = new Map();
  for (const p of persons) {
    byId.set(p.userId, p);
    if (p.anonymousId) byId.set(p.anonymousId, p);
  }
  // A profile is a person's when any of its records names one of the person's ids.
  const profileOwner = new Map();
  for (const c of changes) {
    if (c.level === 'account') {
      const g = (c.external_ids ?? []).find((x) => x.type === 'group_id');
      if (g) profileOwner.set(c.profile_id, `g:${g.id}`);
      continue;
    }
    const p = byId.get(c.user_id) ?? byId.get(c.anonymous_id);
    if (p) profileOwner.set(c.profile_id, `p:${p.i}`);
  }
  const seqs = new Map();
  const bodies = new Map();
  let conflicting = 0;
  let unowned = 0;
  for (const c of changes) {
    const body = JSON.stringify([c.profile_id, c.computation_id, c.value, c.previous, c.reason, c.occurred_at]);
    if (bodies.has(c.change_id)) {
      if (bodies.get(c.change_id) !== body) conflicting++;
      continue;
    }
    bodies.set(c.change_id, body);
    // A re-sync repeats the current value to ids the profile just gained: not a transition.
    if (c.reason === 'resync') continue;
    const owner = profileOwner.get(c.profile_id);
    if (!owner) {
      unowned++;
      continue;
    }
    const id = `${owner}|${c.computation_key}|change`;
    let s = seqs.get(id);
    if (!s) seqs.set(id, (s = { values: [], profiles: new Set() }));
    s.values.push(c.value);
    s.profiles.add(c.profile_id);
  }
  return { seqs, conflicting, unowned };
}

/** Longest common subsequence length of two value sequences. */
function lcs(a, b) {
  const dp = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) dp[i][j] = same(a[i - 1], b[j - 1]) ? dp[i - 1][j - 1] + 1 : Math.max(dp[i - 1][j], dp[i][j - 1]);
  return dp[a.length][b.length];
}

const lastOr = (values, dflt) => (values.length ? values[values.length - 1] : dflt);
/** How many more times values occur in `got` than in `want`. */
function excess(want, got) {
  const count = new Map();
  for (const v of want) count.set(JSON.stringify(v), (count.get(JSON.stringify(v)) ?? 0) + 1);
  let n = 0;
  for (const v of got) {
    const k = JSON.stringify(v);
    if ((count.get(k) ?? 0) > 0) count.set(k, count.get(k) - 1);
    else n++;
  }
  return n;
}

/** Consecutive equal values: one transition emitted (or delivered) twice under different ids. */
const repeats = (values) => values.reduce((n, v, i) => n + (i > 0 && same(v, values[i - 1]) ? 1 : 0), 0);

/**
 * Compares one layer (changes or deliveries) with the expectations.
 * `kinds`: the call kinds per level whose sequences to check ('change'; or 'identify', 'track' / 'group').
 * Returns { missing, extra, wrongFinal, doubled, details[] }.
 */
function compareLayer(seqs, exp, kinds) {
  const r = { missing: 0, extra: 0, wrongFinal: 0, doubled: 0, details: [] };
  const note = (d) => r.details.length < 200 && r.details.push(d);
  for (const [i, u] of exp.users) {
    for (const c of COMPUTATIONS.filter((c) => c.level === 'user')) {
      for (const kind of kinds.user) {
        const got = seqs.get(`p:${i}|${c.key}|${kind}`)?.values ?? [];
        const final = lastOr(got, initial(c));
        // Clock-free computations are judged by their whole sequence below (which includes the final value).
        if (c.clock && !same(final, u.finals[c.key])) {
          r.wrongFinal++;
          note({ person: u.person.userId, key: c.key, kind, expectedFinal: u.finals[c.key], got });
        }
        if (!c.clock) {
          const want = u.sequences[c.key];
          const common = lcs(want, got);
          r.missing += want.length - common;
          r.extra += got.length - common;
          // A value emitted more often than the oracle's sequence has it: a transition under a second id.
          r.doubled += excess(want, got);
          if (common !== want.length || common !== got.length) note({ person: u.person.userId, key: c.key, kind, want, got });
        } else if (repeats(got)) {
          r.extra += repeats(got);
          r.doubled += repeats(got);
          note({ person: u.person.userId, key: c.key, kind, doubled: got });
        }
      }
    }
  }
  for (const [g, a] of exp.accounts) {
    for (const c of COMPUTATIONS.filter((c) => c.level === 'account')) {
      for (const kind of kinds.account) {
        const got = seqs.get(`g:${g}|${c.key}|${kind}`)?.values ?? [];
        const dbl = repeats(got);
        r.doubled += dbl;
        r.extra += dbl;
        if (!same(lastOr(got, initial(c)), a.finals[c.key])) {
          r.wrongFinal++;
          note({ account: g, key: c.key, kind, expectedFinal: a.finals[c.key], got });
        }
      }
    }
  }
  return r;
}

/**
 * The whole comparison of a round at `now`: acknowledged events missing from
 * events.resolved, and the changes and deliveries against the oracle.
 */
function compareRound({ load, sourceId, spaceId, watcher, receiver, now = Date.now(), snapshot }) {
  const persons = load.persons;
  const exp = expectations(persons, sourceId, now, { snapshot });
  const resolved = watcher.resolved.get(spaceId) ?? new Set();
  let acked = 0;
  let missingResolved = 0;
  for (const p of persons) {
    const n = snapshot ? (snapshot.get(p.i) ?? 0) : p.acked.length;
    for (const a of p.acked.slice(0, n)) {
      acked++;
      if (!resolved.has(a.call.messageId)) missingResolved++;
    }
  }
  const ch = changeSequences(watcher.changes.get(spaceId) ?? [], persons);
  const changes = compareLayer(ch.seqs, exp, { user: ['change'], account: ['change'] });
  const dl = deliveredSequences(receiver.ok, persons, COMPUTATIONS);
  const deliveries = compareLayer(dl.seqs, exp, { user: ['identify', 'track'], account: ['group'] });
  return {
    acked,
    missingResolved,
    changes: { ...changes, conflicting: ch.conflicting, unowned: ch.unowned },
    deliveries: { ...deliveries, conflicting: dl.conflicting, unknown: dl.unknown, resyncs: dl.resyncs },
    taintedPersons: persons.filter((p) => p.tainted).length,
  };
}

/**
 * Caught up with a snapshot (the calls acknowledged when the fault ended):
 * every such call resolved, and every expected transition of the snapshot
 * (clock-free user computations) already emitted and delivered, in order.
 */
function caughtUp({ load, spaceId, watcher, receiver, snapshot, snapshotExp }) {
  const resolved = watcher.resolved.get(spaceId) ?? new Set();
  for (const p of load.persons) {
    const n = snapshot.get(p.i) ?? 0;
    for (const a of p.acked.slice(0, n)) if (!resolved.has(a.call.messageId)) return false;
  }
  const ch = changeSequences(watcher.changes.get(spaceId) ?? [], load.persons).seqs;
  const dl = deliveredSequences(receiver.ok, load.persons, COMPUTATIONS).seqs;
  for (const [i, u] of snapshotExp.users) {
    for (const c of COMPUTATIONS.filter((c) => c.level === 'user' && !c.clock)) {
      const want = u.sequences[c.key];
      for (const [seqs, kind] of [
        [ch, 'change'],
        [dl, 'identify'],
        [dl, 'track'],
      ]) {
        const got = seqs.get(`p:${i}|${c.key}|${kind}`)?.values ?? [];
        // Every expected transition there, in order (extras are counted at the end of the round, not here).
        if (got.length < want.length || lcs(want, got) < want.length) return false;
      }
    }
  }
  return true;
}

module.exports = { TopicWatcher, compareRound, caughtUp, deliveredSequences, changeSequences, compareLayer, plain };
