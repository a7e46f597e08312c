// The chaos load: a steady stream of Segment calls to the ingest, through
// /v1/batch and single calls (/v1/track, /v1/identify, /v1/page, /v1/group).
//
// The identity model is simple and known to the oracle: person i has one
// userId; some persons (a share `lateShare`, "late") first send a few calls with only an
// anonymousId, then an identify with both (which attaches the userId to the
// anonymous profile: no merge), then userId calls. Each worker owns a fixed
// set of persons and sends one request at a time, retrying a failed request
// with the same body (same messageIds: the ingest drops duplicates) until it
// is acknowledged, so per person the order the ingest acknowledged is the
// order of the calls, and per person the event times only increase (except
// 'Session Started', back-dated so that its 1-hour window closes during the
// round and the scheduler's expiry runs).
'use strict';

const HOUR = 3_600_000;

/** A small seeded PRNG (mulberry32): the same seed gives the same load. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Person {
  constructor(runId, i, random, accounts, lateShare, groupFirst) {
    /** The group call right after the identify (before any order), instead of at a random moment. */
    this.groupFirst = groupFirst;
    this.i = i;
    this.userId = `${runId}-u${i}`;
    this.late = random() < lateShare;
    this.anonymousId = this.late ? `${runId}-a${i}` : null;
    this.anonLeft = this.late ? 1 + Math.floor(random() * 3) : 0;
    this.identified = false;
    this.seq = 0;
    this.lastTs = 0;
    this.groupId = random() < 0.5 ? `${runId}-g${Math.floor(random() * accounts)}` : null;
    this.grouped = false;
    this.runId = runId;
    /** Acknowledged calls, in order: { call, ackedAt }. */
    this.acked = [];
    /** A call was given up (never acknowledged): its fate is unknown, the oracle cannot judge this person. */
    this.tainted = false;
    this.busy = false;
  }

  ts() {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    return this.lastTs;
  }

  /** The person's next Segment call (plain object, as a client sends it). */
  next(random) {
    const messageId = `${this.runId}-m${this.i}-${++this.seq}`;
    const iso = (t) => new Date(t).toISOString();
    if (this.late && !this.identified) {
      if (this.anonLeft > 0) {
        this.anonLeft--;
        const t = this.ts();
        return random() < 0.5
          ? {
              type: 'track',
              event: 'Cart Viewed',
              anonymousId: this.anonymousId,
              messageId,
              timestamp: iso(t),
              properties: { sku: 'sku-1' },
            }
          : { type: 'page', name: 'Home', anonymousId: this.anonymousId, messageId, timestamp: iso(t), properties: { path: '/' } };
      }
      this.identified = true;
      return {
        type: 'identify',
        userId: this.userId,
        anonymousId: this.anonymousId,
        messageId,
        timestamp: iso(this.ts()),
        traits: { plan: random() < 0.5 ? 'pro' : 'free' },
      };
    }
    if (!this.late && !this.identified) {
      this.identified = true;
      return {
        type: 'identify',
        userId: this.userId,
        messageId,
        timestamp: iso(this.ts()),
        traits: { plan: random() < 0.6 ? 'pro' : 'free' },
      };
    }
    const base = { userId: this.userId, messageId };
    const r = random();
    if (this.groupId && !this.grouped && (r < 0.08 || this.groupFirst)) {
      this.grouped = true;
      return { ...base, type: 'group', groupId: this.groupId, timestamp: iso(this.ts()), traits: { name: `Account ${this.groupId}` } };
    }
    if (r < 0.4)
      return {
        ...base,
        type: 'track',
        event: 'Order Completed',
        timestamp: iso(this.ts()),
        properties: { revenue: 1 + Math.floor(random() * 100) },
      };
    if (r < 0.6)
      return {
        ...base,
        type: 'track',
        event: 'Cart Viewed',
        timestamp: iso(this.ts()),
        properties: { sku: `sku-${Math.floor(random() * 5)}` },
      };
    if (r < 0.75) {
      // Back-dated: its window (1 hour) ends 5 to 40 s from now.
      const t = Date.now() - HOUR + 5_000 + Math.floor(random() * 35_000);
      return { ...base, type: 'track', event: 'Session Started', timestamp: iso(t), properties: {} };
    }
    if (r < 0.85) return { ...base, type: 'identify', timestamp: iso(this.ts()), traits: { plan: random() < 0.5 ? 'pro' : 'free' } };
    if (r < 0.88) return { ...base, type: 'track', event: 'Cancelled', timestamp: iso(this.ts()), properties: {} };
    return { ...base, type: 'page', name: 'Pricing', timestamp: iso(this.ts()), properties: { path: '/pricing' } };
  }
}

/**
 * Runs the load until stop(): `workers` loops, each sending a request (a
 * batch of 1-6 calls of up to 4 of its persons, or one single call) then
 * waiting `pauseMs`. Failed requests are retried (same body) every 250-1000 ms
 * until acknowledged or `giveUpMs` passed.
 */
class Load {
  constructor({
    ingestUrl,
    writeKey,
    runId,
    persons = 40,
    accounts = 5,
    lateShare = 0.3,
    groupFirst = false,
    workers = 4,
    pauseMs = 100,
    giveUpMs = 150_000,
    seed = 1,
    log = () => {},
  }) {
    this.random = rng(seed);
    this.persons = Array.from({ length: persons }, (_, i) => new Person(runId, i, this.random, accounts, lateShare, groupFirst));
    Object.assign(this, { ingestUrl, writeKey, workers, pauseMs, giveUpMs, log });
    this.auth = `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
    this.stats = { requests: 0, attempts: 0, failedAttempts: 0, acked: 0, givenUp: 0, statuses: {} };
    this.running = false;
    this.loops = [];
  }

  start() {
    this.running = true;
    for (let w = 0; w < this.workers; w++) this.loops.push(this.loop(w));
    return this;
  }

  /** Stops sending new requests; resolves once every request in flight is acknowledged or given up. */
  async stop() {
    this.running = false;
    await Promise.all(this.loops);
  }

  ackedCount() {
    return this.persons.reduce((n, p) => n + p.acked.length, 0);
  }

  async loop(w) {
    const mine = this.persons.filter((p) => p.i % this.workers === w);
    while (this.running) {
      const batch = this.random() < 0.7;
      const chosen = [];
      const n = batch ? 1 + Math.floor(this.random() * 4) : 1;
      for (let k = 0; k < n; k++) {
        const p = mine[Math.floor(this.random() * mine.length)];
        if (!chosen.includes(p)) chosen.push(p);
      }
      const calls = [];
      for (const p of chosen) {
        const m = batch ? 1 + Math.floor(this.random() * 2) : 1;
        for (let k = 0; k < m; k++) calls.push({ person: p, call: p.next(this.random) });
      }
      await this.send(batch, calls);
      await new Promise((r) => setTimeout(r, this.pauseMs));
    }
  }

  async send(batch, calls) {
    const path = batch ? '/v1/batch' : `/v1/${calls[0].call.type}`;
    const body = JSON.stringify(batch ? { batch: calls.map((c) => c.call) } : calls[0].call);
    const giveUpAt = Date.now() + this.giveUpMs;
    this.stats.requests++;
    for (;;) {
      this.stats.attempts++;
      let status = 0;
      try {
        const res = await fetch(`${this.ingestUrl}${path}`, {
          method: 'POST',
          headers: { authorization: this.auth, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        await res.arrayBuffer();
      } catch {
        status = 0; // refused, reset or timed out: unknown outcome, retried
      }
      this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
      if (status === 200) {
        const at = Date.now();
        for (const c of calls) c.person.acked.push({ call: c.call, ackedAt: at });
        this.stats.acked += calls.length;
        return;
      }
      this.stats.failedAttempts++;
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        this.log(`ingest answered ${status} to ${path}: the load's calls are wrong`);
      }
      if (Date.now() > giveUpAt) {
        for (const c of calls) c.person.tainted = true;
        this.stats.givenUp += calls.length;
        return;
      }
      await new Promise((r) => setTimeout(r, 250 + Math.floor(this.random() * 750)));
    }
  }
}

module.exports = { Load, Person, rng, HOUR };
