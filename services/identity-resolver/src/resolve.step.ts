// engage.events.raw -> identity graph -> engage.events.resolved (+ changes).
// One Redis pipeline and one sendBatch per chunk; outcomes per message.
import { createHash } from 'node:crypto';
import { dlq, ok, type ConsumedMessage, type MessageOutcome, type Producer } from '@engage/kafka';
import { extractExternalIds, type ExternalId, type IdentityRules } from '@engage/identity';
import { valueSubject, type IdentityChange, type RawEvent, type ResolvedEvent, type SchemaCodec } from '@engage/schemas';
import type { IdentityRepository, ResolveRequest, ResolveResult } from './identity.repository';

const hash = (...parts: string[]) => createHash('sha1').update(parts.join('\u0000')).digest('hex');

/** Deterministic ids: a replayed event maps to the same profile and change ids. */
export const newProfileId = (spaceId: string, messageId: string) => `pro_${hash(spaceId, messageId).slice(0, 26)}`;
export const accountProfileId = (spaceId: string, groupId: string) => `acc_${hash(spaceId, 'group_id', groupId).slice(0, 26)}`;

function parseJson(text: string, field: string): Record<string, unknown> {
  const v = JSON.parse(text) as unknown;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${field} is not a JSON object`);
  return v as Record<string, unknown>;
}

export interface ResolveStepDeps {
  repository: IdentityRepository;
  producer: Producer;
  codec: SchemaCodec;
  rulesFor: (spaceId: string) => IdentityRules;
  now?: () => number;
}

export class ResolveStep {
  constructor(
    private readonly config: { resolvedTopic: string; identityTopic: string },
    private readonly deps: ResolveStepDeps,
  ) {}

  async handle(messages: Array<ConsumedMessage<RawEvent>>): Promise<MessageOutcome[]> {
    const outcomes: MessageOutcome[] = new Array(messages.length);
    const requests: ResolveRequest[] = [];
    const requestOf: number[] = [];
    messages.forEach((m, i) => {
      const e = m.value;
      try {
        const ids = extractExternalIds(
          {
            type: e.type,
            userId: e.user_id,
            anonymousId: e.anonymous_id,
            traits: parseJson(e.traits_json, 'traits_json'),
            context: parseJson(e.context_json, 'context_json'),
            externalIds: e.external_ids,
          },
          this.deps.rulesFor(e.space_id),
        );
        if (ids.length === 0) {
          outcomes[i] = dlq(`no usable identifier: userId and anonymousId missing or blocked (message ${e.message_id})`, 'resolve');
          return;
        }
        requests.push({
          spaceId: e.space_id,
          messageId: e.message_id,
          newProfileId: newProfileId(e.space_id, e.message_id),
          ids,
          rules: this.deps.rulesFor(e.space_id),
          accountId: e.type === 'group' && e.group_id ? accountProfileId(e.space_id, e.group_id) : null,
        });
        requestOf.push(i);
      } catch (err) {
        outcomes[i] = dlq(`malformed event ${e.message_id}: ${(err as Error).message}`, 'resolve');
      }
    });

    const results = await this.deps.repository.resolveAll(requests);
    const now = this.deps.now?.() ?? Date.now();
    const resolved: Array<{ key: string; value: Buffer }> = [];
    const changes: Array<{ key: string; value: Buffer }> = [];
    for (let k = 0; k < results.length; k++) {
      const e = messages[requestOf[k]!]!.value;
      const r = results[k]!;
      const record: ResolvedEvent = { ...e, profile_id: r.profileId, account_id: requests[k]!.accountId, resolved_at: now };
      resolved.push({ key: r.profileId, value: await this.deps.codec.encode(valueSubject(this.config.resolvedTopic), record) });
      for (const change of this.identityChanges(e, r, requests[k]!.accountId, now)) {
        changes.push({ key: r.profileId, value: await this.deps.codec.encode(valueSubject(this.config.identityTopic), change) });
      }
      outcomes[requestOf[k]!] = ok;
    }
    const topicMessages = [{ topic: this.config.resolvedTopic, messages: resolved }];
    if (changes.length > 0) topicMessages.push({ topic: this.config.identityTopic, messages: changes });
    if (resolved.length > 0) await this.deps.producer.sendBatch({ topicMessages });
    return outcomes;
  }

  /** Merges, ids added to an existing profile, and account links, as engage.identity.changes records. */
  identityChanges(e: RawEvent, r: ResolveResult, accountId: string | null, now: number): IdentityChange[] {
    const base = { space_id: e.space_id, profile_id: r.profileId, external_ids: r.all.map(pair), occurred_at: e.timestamp, emitted_at: now };
    const out: IdentityChange[] = [];
    if (r.merged.length > 0) {
      out.push({ ...base, change_id: `idc_${hash('merge', e.message_id, r.profileId)}`, kind: 'merge', merged_profile_ids: r.merged, added_external_ids: r.added.map(pair), account_id: null });
    } else if (r.added.length > 0 && !r.created) {
      out.push({ ...base, change_id: `idc_${hash('added', e.message_id, r.profileId)}`, kind: 'external_id_added', merged_profile_ids: [], added_external_ids: r.added.map(pair), account_id: null });
    }
    if (r.accountLinked && accountId) {
      out.push({ ...base, change_id: `idc_${hash('account', e.message_id, r.profileId)}`, kind: 'account_link', merged_profile_ids: [], added_external_ids: [], account_id: accountId });
    }
    return out;
  }
}

const pair = (x: ExternalId) => ({ type: x.type, id: x.id });
