// POST /spaces/{spaceId}/audiences/preview: how many current profiles a
// definition would select, and a few of them, without creating anything.
// Evaluated with the reference evaluator over what the realtime evaluator
// stores per profile (its bounded recent history, traits and the values of
// the space's computations, which trait() reads by key), a page of state
// documents per MGET, so 100,000 profiles take seconds, not minutes.
import { evaluateReference, type QueryAst, type Value } from '@engage/engine';
import type { ProfileStateRepository, StoredProfile } from '@engage/profile-store';

export interface PreviewSample {
  id: string;
  user_id: string | null;
  anonymous_id: string | null;
  external_ids: Array<{ type: string; id: string }>;
  traits: Record<string, unknown>;
}

export interface PreviewResult {
  size: number;
  /** Profiles scanned (the space's profiles with state). */
  scanned: number;
  sample: PreviewSample[];
}

export class AudiencePreview {
  constructor(
    private readonly config: { pageSize: number; sampleSize: number },
    private readonly deps: { profiles: ProfileStateRepository; now?: () => number },
  ) {}

  /** `keysById`: computation id -> key, so trait('<audience key>') reads the stored values. */
  async preview(spaceId: string, ast: QueryAst, keysById: Map<string, string>): Promise<PreviewResult> {
    const now = this.deps.now?.() ?? Date.now();
    const result: PreviewResult = { size: 0, scanned: 0, sample: [] };
    for await (const ids of this.deps.profiles.scanMembers(this.deps.profiles.spaceProfilesKey(spaceId), this.config.pageSize)) {
      const profiles = await this.deps.profiles.load(ids.map((profileId) => ({ spaceId, profileId })));
      for (const p of profiles) {
        result.scanned++;
        if (evaluateReference(ast, { events: p.events, traits: p.traits, computed: computedByKey(p, keysById), now }) !== true) continue;
        result.size++;
        if (result.sample.length < this.config.sampleSize) result.sample.push(sampleOf(p));
      }
    }
    return result;
  }
}

function computedByKey(p: StoredProfile, keysById: Map<string, string>): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [id, stored] of Object.entries(p.values)) {
    const key = keysById.get(id);
    if (key !== undefined) out[key] = stored.value;
  }
  return out;
}

function sampleOf(p: StoredProfile): PreviewSample {
  return { id: p.profileId, user_id: p.userId, anonymous_id: p.anonymousId, external_ids: p.externalIds, traits: p.traits };
}
