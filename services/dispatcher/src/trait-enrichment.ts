// Trait Enrichment (Segment's trait-activation/trait-enrichment): the traits a
// connection lists, added to its calls. Custom traits come from the change
// record's traits_json; computed traits are not in the record, so their
// current values are read from the profile state, once per chunk (one MGET)
// and only for the profiles of connections that list a computed trait.
import type { ConfigStore, ConnectionConfig } from '@engage/config-store';
import { customTraitsOf, enrichmentTraits } from '@engage/delivery';
import type { ProfileRef, ProfileStateRepository } from '@engage/profile-store';
import type { ComputationChange } from '@engage/schemas';

/** The enrichment traits of one (change, connection): {} when the connection lists none. */
export type EnrichmentOf = (change: ComputationChange, connection: ConnectionConfig) => Record<string, unknown>;

const profileKey = (spaceId: string, profileId: string) => `${spaceId}|${profileId}`;

export class TraitEnrichment {
  constructor(private readonly deps: { store: ConfigStore; profiles: Pick<ProfileStateRepository, 'loadStates'> }) {}

  /** The space's computed traits by key: their id and the definition version a current value carries. */
  private computedTraits(spaceId: string): Map<string, { id: string; version: number }> {
    return new Map(this.deps.store.list('computed_trait', spaceId).map((t) => [t.key, { id: t.id, version: t.definitionVersion }]));
  }

  /**
   * Loads what the chunk's calls need (`items`: each change with a connection
   * it goes to; account changes already fanned out to their users) and
   * answers per (change, connection). No Redis read when no connection of
   * the chunk lists a computed trait.
   */
  async load(items: Array<{ change: ComputationChange; connection: ConnectionConfig }>): Promise<EnrichmentOf> {
    const traitsBySpace = new Map<string, Map<string, { id: string; version: number }>>();
    const traitsOf = (spaceId: string) => {
      let traits = traitsBySpace.get(spaceId);
      if (!traits) traitsBySpace.set(spaceId, (traits = this.computedTraits(spaceId)));
      return traits;
    };
    const refs = new Map<string, ProfileRef>();
    for (const { change, connection } of items) {
      const keys = connection.settings.traitEnrichment;
      if (!keys?.length) continue;
      const traits = traitsOf(change.space_id);
      if (keys.some((k) => traits.has(k)))
        refs.set(profileKey(change.space_id, change.profile_id), { spaceId: change.space_id, profileId: change.profile_id });
    }
    const states = new Map(
      (await this.deps.profiles.loadStates([...refs.values()])).map((p) => [profileKey(p.spaceId, p.profileId), p.values]),
    );
    const custom = new WeakMap<ComputationChange, Record<string, unknown>>();
    return (change, connection) => {
      const keys = connection.settings.traitEnrichment;
      if (!keys?.length) return {};
      const values = states.get(profileKey(change.space_id, change.profile_id));
      const computed: Record<string, unknown> = {};
      if (values) {
        const traits = traitsOf(change.space_id);
        for (const key of keys) {
          const trait = traits.get(key);
          const stored = trait && values[trait.id];
          // A value of an older definition is being recomputed: no current value yet.
          if (stored && stored.version === trait.version) computed[key] = stored.value;
        }
      }
      let customTraits = custom.get(change);
      if (!customTraits) custom.set(change, (customTraits = customTraitsOf(change.traits_json)));
      return enrichmentTraits(keys, { custom: customTraits, computed });
    };
  }
}
