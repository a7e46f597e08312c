// A plain in-memory identity graph with the same algorithm as the resolver's
// Redis script (identity-graph.lua.ts), written
// for reading, not speed. Tests run both on random event streams and compare:
// the script must agree with this specification.
import type { ExternalId } from './external-ids';
import { MAX_IDS_PER_PROFILE, WINDOW_MS, limitOf, type IdentityRules } from './rules';

export interface GraphEvent {
  /** The event's identity (the replay cache's key). */
  eventKey: string;
  /** Highest priority first. */
  ids: ExternalId[];
  accountId: string | null;
  /** Event time (ms). */
  timestamp: number;
}

export interface GraphAnswer {
  profileId: string;
  created: boolean;
  merged: string[];
  added: ExternalId[];
  gained: ExternalId[];
  dropped: ExternalId[];
  accountLinked: boolean;
}

const key = (x: ExternalId) => `${x.type}\u001f${x.id}`;
const unkey = (k: string): ExternalId => ({ type: k.slice(0, k.indexOf('\u001f')), id: k.slice(k.indexOf('\u001f') + 1) });

export class ReferenceGraph {
  /** id key -> live profile */
  readonly ids = new Map<string, string>();
  /** live profile -> id key -> last seen (ms) */
  readonly profiles = new Map<string, Map<string, number>>();
  readonly merges = new Map<string, number>();
  readonly accounts = new Map<string, Set<string>>();
  readonly aliases = new Map<string, string>();
  private readonly answered = new Map<string, GraphAnswer>();

  /** newProfileId names a profile created for an id (the highest-priority id the event keeps). */
  constructor(
    private readonly rules: IdentityRules,
    private readonly newProfileId: (first: ExternalId) => string = (x) => `pro:${key(x)}`,
  ) {}

  private counts(pid: string, ts: number): Map<string, number> {
    const c = new Map<string, number>();
    for (const [k, seen] of this.profiles.get(pid) ?? []) {
      const type = unkey(k).type;
      const w = WINDOW_MS[limitOf(this.rules, type).window];
      if (w === 0 || seen >= ts - w) c.set(type, (c.get(type) ?? 0) + 1);
    }
    return c;
  }

  private violations(cands: Array<ExternalId & { pid?: string }>, ts: number) {
    const totals = new Map<string, number>();
    const seen = new Set<string>();
    let merges = 0;
    for (const c of cands) {
      if (!c.pid || seen.has(c.pid)) continue;
      seen.add(c.pid);
      merges += this.merges.get(c.pid) ?? 0;
      for (const [t, n] of this.counts(c.pid, ts)) totals.set(t, (totals.get(t) ?? 0) + n);
    }
    for (const c of cands) if (!c.pid) totals.set(c.type, (totals.get(c.type) ?? 0) + 1);
    const bad = new Set([...totals].filter(([t, n]) => n > limitOf(this.rules, t).limit).map(([t]) => t));
    const mergeCapHit = seen.size > 1 && merges + seen.size - 1 > this.rules.maxMergesPerProfile;
    return { violated: bad.size > 0 || mergeCapHit, bad, mergeCapHit };
  }

  resolve(e: GraphEvent): GraphAnswer {
    const cached = this.answered.get(e.eventKey);
    if (cached) return cached;
    const cands = e.ids.map((x) => ({ ...x, pid: this.ids.get(key(x)) }));
    const dropped: ExternalId[] = [];
    const same = cands.every((c) => c.pid !== undefined && c.pid === cands[0]!.pid);
    while (!same && cands.length > 1) {
      const { violated, bad, mergeCapHit } = this.violations(cands, e.timestamp);
      if (!violated) break;
      // Drop the lowest-priority id that takes part in the violation; ids already on the best profile last.
      const anchor = cands.find((c) => c.pid)?.pid;
      let at = -1;
      for (let i = cands.length - 1; i >= 1 && at === -1; i--) {
        const c = cands[i]!;
        if (!c.pid) {
          if (bad.has(c.type)) at = i;
        } else if (c.pid !== anchor) {
          const pc = this.counts(c.pid, e.timestamp);
          if (mergeCapHit || [...bad].some((t) => (pc.get(t) ?? 0) > 0)) at = i;
        }
      }
      const [gone] = cands.splice(at === -1 ? cands.length - 1 : at, 1);
      dropped.push({ type: gone!.type, id: gone!.id });
    }

    const existing = cands.find((c) => c.pid)?.pid;
    const base = existing ?? this.newProfileId(cands[0]!);
    const ids = this.profiles.get(base) ?? new Map<string, number>();
    this.profiles.set(base, ids);
    const merged: string[] = [];
    const added: ExternalId[] = [];
    const gained: ExternalId[] = [];
    for (const c of cands) {
      const k = key(c);
      if (!c.pid && ids.size >= MAX_IDS_PER_PROFILE) {
        dropped.push({ type: c.type, id: c.id });
      } else if (!c.pid) {
        this.ids.set(k, base);
        ids.set(k, e.timestamp);
        added.push({ type: c.type, id: c.id });
      } else if (c.pid === base) {
        if (WINDOW_MS[limitOf(this.rules, c.type).window] > 0) ids.set(k, Math.max(ids.get(k)!, e.timestamp));
      } else if (!merged.includes(c.pid)) {
        const other = c.pid;
        // Lua's ZRANGE order: by last seen, then by key.
        const moved = [...this.profiles.get(other)!].sort(([ka, a], [kb, b]) => a - b || (ka < kb ? -1 : ka > kb ? 1 : 0));
        for (const [m, seen] of moved) {
          this.ids.set(m, base);
          ids.set(m, Math.max(ids.get(m) ?? -Infinity, seen));
          gained.push(unkey(m));
        }
        this.merges.set(base, (this.merges.get(base) ?? 0) + (this.merges.get(other) ?? 0) + 1);
        for (const a of this.accounts.get(other) ?? []) this.account(base).add(a);
        this.profiles.delete(other);
        this.merges.delete(other);
        this.accounts.delete(other);
        this.aliases.set(other, base);
        merged.push(other);
      }
    }
    let accountLinked = false;
    if (e.accountId !== null && !this.account(base).has(e.accountId)) {
      this.account(base).add(e.accountId);
      accountLinked = true;
    }
    const answer = { profileId: base, created: existing === undefined, merged, added, gained, dropped, accountLinked };
    if (merged.length > 0 || (added.length > 0 && existing !== undefined) || accountLinked) this.answered.set(e.eventKey, answer);
    return answer;
  }

  private account(pid: string): Set<string> {
    let s = this.accounts.get(pid);
    if (!s) this.accounts.set(pid, (s = new Set()));
    return s;
  }
}
