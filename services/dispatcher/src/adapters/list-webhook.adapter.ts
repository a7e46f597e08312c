// The `list-webhook` list destination: POSTs {audience_key, audience_id, add,
// remove} to settings.url (optional settings.headers), identifiers as they
// are (settings.hashIdentifiers: SHA-256 of the normalised value). The
// audience is ours: its id is the computation id, nothing to create remotely.
import type { DestinationConfig } from '@engage/config-store';
import {
  normaliseIdentifier,
  sha256Hex,
  type BatchOutcome,
  type ExternalAudience,
  type ExternalId,
  type ListDestinationAdapter,
  type NormalisedId,
} from '@engage/delivery';
import type { DeliveryService } from '../delivery.service';
import { ListRequestError } from './list-adapter-error';

export class ListWebhookAdapter implements ListDestinationAdapter {
  readonly type = 'list-webhook';
  readonly defaultRateLimit = null;
  readonly identifierTypes = ['user_id'];

  constructor(private readonly deps: { delivery: DeliveryService }) {}

  batchLimit(destination: DestinationConfig): number {
    return Number(destination.settings.batchSize ?? 10_000);
  }

  normalise(id: ExternalId): NormalisedId {
    return { ok: true, type: id.type, value: id.id };
  }

  /** With settings.hashIdentifiers the destination gets SHA-256 hex of the normalised value. */
  private value(destination: DestinationConfig, item: NormalisedId & { ok: true }): string | { reason: string } {
    if (destination.settings.hashIdentifiers !== true) return item.value;
    const n = normaliseIdentifier(item.type, item.value);
    return n.ok ? sha256Hex(n.value) : { reason: n.reason };
  }

  /** Nothing to create remotely: the audience is identified by our computation id and key. */
  async createAudience(
    _destination: DestinationConfig,
    audience: { computationId: string; key: string; name: string },
  ): Promise<ExternalAudience> {
    return { id: audience.computationId, name: audience.key };
  }

  /** Nothing remote to look up: the flush creates (names) it each time. */
  async getAudience(): Promise<ExternalAudience | null> {
    return null;
  }

  add(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome> {
    return this.post(destination, audience, items, 'add');
  }

  remove(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome> {
    return this.post(destination, audience, items, 'remove');
  }

  private async post(
    destination: DestinationConfig,
    audience: ExternalAudience,
    items: NormalisedId[],
    op: 'add' | 'remove',
  ): Promise<BatchOutcome> {
    const failed: BatchOutcome['failed'] = [];
    const values: string[] = [];
    items.forEach((item, index) => {
      const v = item.ok ? this.value(destination, item) : { reason: item.reason };
      if (typeof v === 'string') values.push(v);
      else failed.push({ index, reason: v.reason });
    });
    if (values.length === 0) return { failed };
    const body = {
      audience_key: audience.name,
      audience_id: audience.id,
      add: op === 'add' ? values : [],
      remove: op === 'remove' ? values : [],
    };
    const result = await this.deps.delivery.deliver(destination, {
      url: String(destination.settings.url),
      method: 'POST',
      headers: (destination.settings.headers as Record<string, string>) ?? {},
      body,
    });
    if (!result.ok) throw new ListRequestError(result.reason, result.retriable);
    return { failed };
  }
}
