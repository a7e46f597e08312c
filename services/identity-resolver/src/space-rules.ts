// Each space's identity rules from the config store, compiled once per
// configuration version (the hot path must not rebuild regexes per event).
import { DEFAULT_COMPILED_RULES, compileRules, parseIdentityRules, type CompiledIdentityRules } from '@engage/identity';
import type { Logger } from '@engage/logging';

/** What this needs of the config store: the live identity_rules object of a space (id = space id). */
export interface RulesSource {
  get(kind: 'identity_rules', id: string): Record<string, unknown> | undefined;
}

export class SpaceRules {
  private readonly compiled = new WeakMap<object, CompiledIdentityRules>();

  constructor(private readonly deps: { store: RulesSource; log: Logger }) {}

  for(spaceId: string): CompiledIdentityRules {
    const body = this.deps.store.get('identity_rules', spaceId);
    if (!body) return DEFAULT_COMPILED_RULES;
    let rules = this.compiled.get(body);
    if (!rules) {
      // The control plane validates on write; this only guards against older or hand-written records.
      const parsed = parseIdentityRules(body);
      if (parsed.errors.length > 0) this.deps.log.warn({ spaceId, errors: parsed.errors }, 'identity_rules_invalid_fields_ignored');
      rules = compileRules(parsed.rules);
      this.compiled.set(body, rules);
    }
    return rules;
  }
}
