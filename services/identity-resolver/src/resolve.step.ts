// engage.events.raw -> identity graph -> engage.events.resolved (+ changes).
// Per chunk: one identity-graph script call per space (one pipelined write) and
// one sendBatch; an outcome per message (malformed ones go to the DLQ).
import { hash as digest } from 'node:crypto';
import { dlq, ok, type ConsumedMessage, type MessageOutcome, type Producer } from '@engage/kafka';
import { extractIdentifiers, type CompiledIdentityRules, type ExternalId } from '@engage/identity';
import { eventKey, valueSubject, type IdentityChange, type RawEvent, type ResolvedEvent, type SchemaCodec } from '@engage/schemas';
import type { IdentityRepository, ResolveRequest, ResolveResult } from './identity.repository';
import { resolvedExtendsRaw, resolvedFromRaw } from './resolved-encoding';
import type { ResolverMetrics } from './resolver.metrics';
import { receiveOrder } from './receive-order';

// One-shot digest: several times cheaper than createHash() on the per-event path.
const hash = (...parts: string[]) => digest('sha1', parts.join('\u0000'), 'hex');

/**
 * Deterministic ids: a replayed event maps to the same profile and change ids.
 * A new profile is named after the highest-priority id it is created for (an id
 * belongs to one profile for good), never after the sender's messageId.
 * NOTE: the identity-graph script derives new profile ids the same way (redis.sha1hex); this is the reference.
 */
export const newProfileId = (spaceId: string, first: ExternalId) => `pro_${hash(spaceId, first.type, first.id).slice(0, 26)}`;
export const accountProfileId = (spaceId: string, groupId: string) => `acc_${hash(spaceId, 'group_id', groupId).slice(0, 26)}`;

/** The context keys identifiers are read from (extractIdentifiers). */
const CONTEXT_KEYS = /"(?:traits|device|os|integrations)"/;

function parseJson(text: string, field: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${field} is not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${field} is not a JSON object`);
  return v as Record<string, unknown>;
}

export interface ResolveStepDeps {
  repository: IdentityRepository;
  producer: Producer;
  codec: SchemaCodec;
  /** The space's rules, compiled once per configuration version. */
  rulesFor: (spaceId: string) => CompiledIdentityRules;
  metrics?: ResolverMetrics;
  now?: () => number;
}

interface Prepared {
  index: number;
  request: ResolveRequest;
  accountIds: ExternalId[];
}

export class ResolveStep {
  /** Registry ids for the byte-splicing encoder (resolved-encoding.ts); null: encode generically. */
  private fastIds: Promise<{ raw: number; resolved: number } | null> | null = null;

  constructor(
    private readonly config: { resolvedTopic: string; identityTopic: string; rawTopic?: string },
    private readonly deps: ResolveStepDeps,
  ) {}

  /** The registry ids of RawEvent and ResolvedEvent under this step's subjects, or null when the byte splicing cannot apply. */
  schemaIds(): Promise<{ raw: number; resolved: number } | null> {
    const rawTopic = this.config.rawTopic;
    if (!rawTopic || !resolvedExtendsRaw()) return Promise.resolve(null);
    // Registering an identical schema is idempotent and answers its id.
    this.fastIds ??= Promise.all([
      this.deps.codec.register(valueSubject(rawTopic), 'RawEvent'),
      this.deps.codec.register(valueSubject(this.config.resolvedTopic), 'ResolvedEvent'),
    ]).then(
      ([raw, resolved]) => ({ raw, resolved }),
      (err: unknown) => {
        // Not cached: the next chunk asks the registry again (this one is retried).
        this.fastIds = null;
        throw err;
      },
    );
    return this.fastIds;
  }

  /** Pure part: the ids of one raw event, or why it cannot be resolved. */
  prepare(e: RawEvent, index: number): Prepared | MessageOutcome {
    try {
      const rules = this.deps.rulesFor(e.space_id);
      // JSON parts are parsed only when they can hold an identifier (a substring
      // test is far cheaper than a parse); their validity is otherwise the ingest's
      // business, and a part that is read and does not parse dead-letters the event.
      const custom = rules.rules.customIdentifiers.length > 0;
      const traits = custom || e.traits_json.includes('"email"') ? parseJson(e.traits_json, 'traits_json') : {};
      const context = custom || CONTEXT_KEYS.test(e.context_json) ? parseJson(e.context_json, 'context_json') : {};
      const properties = custom ? parseJson(e.properties_json, 'properties_json') : undefined;
      const integrations = e.integrations_json.includes('Google Analytics')
        ? parseJson(e.integrations_json, 'integrations_json')
        : undefined;
      const ids = extractIdentifiers(
        {
          type: e.type,
          userId: e.user_id,
          anonymousId: e.anonymous_id,
          groupId: e.group_id,
          traits,
          context,
          properties,
          integrations,
          externalIds: e.external_ids,
        },
        rules,
      );
      if (ids.user.length === 0)
        return dlq(`no usable identifier in message ${e.message_id}: userId, anonymousId and every other id missing or blocked`, 'resolve');
      const groupId = ids.account.find((x) => x.type === 'group_id');
      return {
        index,
        accountIds: ids.account,
        request: {
          spaceId: e.space_id,
          eventKey: eventKey(e),
          ids: ids.user,
          rules,
          accountId: groupId ? accountProfileId(e.space_id, groupId.id) : null,
          timestamp: e.timestamp,
        },
      };
    } catch (err) {
      return dlq(`malformed event ${e.message_id}: ${(err as Error).message}`, 'resolve');
    }
  }

  async handle(messages: Array<ConsumedMessage<RawEvent>>): Promise<MessageOutcome[]> {
    const outcomes: MessageOutcome[] = new Array(messages.length);
    const prepared: Prepared[] = [];
    // In receive order: a chunk of several partitions (coalescePartitions) is resolved in the order
    // its events came in, each partition's in offset order (receive-order.ts says why).
    for (const i of receiveOrder(messages)) {
      const p = this.prepare(messages[i]!.value, i);
      if ('request' in p) prepared.push(p);
      else outcomes[i] = p;
    }

    // One atomic script call per space for the whole chunk (events in that order).
    const started = performance.now();
    const results = await this.deps.repository.resolveAll(prepared.map((p) => p.request));
    this.deps.metrics?.graphUpdate((performance.now() - started) / 1000, results);
    this.deps.metrics?.deadLettered(messages.length - prepared.length);
    const now = this.deps.now?.() ?? Date.now();
    const schemaIds = await this.schemaIds();
    const resolvedSubject = valueSubject(this.config.resolvedTopic);
    const changesSubject = valueSubject(this.config.identityTopic);
    const resolved: Array<{ key: string; value: Buffer }> = [];
    const changeMessages: Array<{ key: string; value: Buffer }> = [];
    for (let k = 0; k < prepared.length; k++) {
      const p = prepared[k]!;
      const e = messages[p.index]!.value;
      const r = results[k]!;
      const fast =
        schemaIds &&
        resolvedFromRaw(messages[p.index]!.raw.value, schemaIds, {
          profileId: r.profileId,
          accountId: p.request.accountId,
          resolvedAt: now,
        });
      const record: ResolvedEvent | null = fast
        ? null
        : { ...e, profile_id: r.profileId, account_id: p.request.accountId, resolved_at: now };
      resolved.push({ key: r.profileId, value: fast ?? this.deps.codec.encodeSync(resolvedSubject, record) });
      for (const change of this.identityChanges(e, r, p, now)) {
        changeMessages.push({ key: r.profileId, value: this.deps.codec.encodeSync(changesSubject, change) });
        this.deps.metrics?.announced(change.kind);
      }
      outcomes[p.index] = ok;
    }
    // One sendBatch per chunk; kafkajs keeps the order of messages per partition, so per-profile order holds.
    const topicMessages = [{ topic: this.config.resolvedTopic, messages: resolved }];
    if (changeMessages.length > 0) topicMessages.push({ topic: this.config.identityTopic, messages: changeMessages });
    if (resolved.length > 0) await this.deps.producer.sendBatch({ topicMessages });
    return outcomes;
  }

  /** Merges, ids added to an existing profile, and account links, as engage.identity.changes records. */
  identityChanges(e: RawEvent, r: ResolveResult, p: Pick<Prepared, 'request' | 'accountIds'>, now: number): IdentityChange[] {
    const accountId = p.request.accountId;
    // Most events announce nothing: no records built for them.
    if (r.merged.length === 0 && (r.added.length === 0 || r.created) && !(r.accountLinked && accountId)) return [];
    const base = {
      space_id: e.space_id,
      profile_id: r.profileId,
      external_ids: r.all.map(pair),
      occurred_at: e.timestamp,
      emitted_at: now,
    };
    const out: IdentityChange[] = [];
    if (r.merged.length > 0) {
      out.push({
        ...base,
        change_id: `idc_${hash('merge', p.request.eventKey, r.profileId)}`,
        kind: 'merge',
        merged_profile_ids: r.merged,
        // Every id new to the survivor (the event's and the merged profiles'): the dispatcher re-syncs on them.
        added_external_ids: [...r.added, ...r.gained].map(pair),
        account_id: null,
      });
    } else if (r.added.length > 0 && !r.created) {
      out.push({
        ...base,
        change_id: `idc_${hash('added', p.request.eventKey, r.profileId)}`,
        kind: 'external_id_added',
        merged_profile_ids: [],
        added_external_ids: r.added.map(pair),
        account_id: null,
      });
    }
    if (r.accountLinked && accountId) {
      out.push({
        ...base,
        change_id: `idc_${hash('account', p.request.eventKey, r.profileId)}`,
        kind: 'account_link',
        merged_profile_ids: [],
        added_external_ids: p.accountIds.map(pair),
        account_id: accountId,
      });
    }
    return out;
  }
}

const pair = (x: ExternalId) => ({ type: x.type, id: x.id });
