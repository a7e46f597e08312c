// Facebook Custom Audiences over the Marketing API (the pure rules are in
// @engage/delivery facebook-audiences). Destination settings:
//   accessToken (required), adAccountId (required to create audiences),
//   apiBaseUrl (default https://graph.facebook.com/v19.0; tests point it at the emulator),
//   batchSize (<= 10,000).
import type { DestinationConfig } from '@engage/config-store';
import {
  classifyFacebookResponse,
  DEFAULT_RATE_LIMITS,
  FACEBOOK_API_BASE,
  FACEBOOK_BATCH_LIMIT,
  facebookNormalise,
  facebookOutcome,
  facebookPayloads,
  type BatchOutcome,
  type ExternalAudience,
  type ExternalId,
  type ListDestinationAdapter,
  type NormalisedId,
} from '@engage/delivery';
import type { DeliveryService } from '../delivery.service';
import { ListRequestError } from './list-adapter-error';

export class FacebookAudiencesAdapter implements ListDestinationAdapter {
  readonly type = 'facebook-custom-audiences';
  readonly defaultRateLimit = DEFAULT_RATE_LIMITS['facebook-custom-audiences']!;
  readonly identifierTypes = ['email', 'phone', 'ios.idfa', 'android.idfa'];

  constructor(private readonly deps: { delivery: DeliveryService }) {}

  batchLimit(destination: DestinationConfig): number {
    return Math.min(FACEBOOK_BATCH_LIMIT, Number(destination.settings.batchSize ?? FACEBOOK_BATCH_LIMIT));
  }

  normalise(id: ExternalId): NormalisedId {
    return facebookNormalise(id);
  }

  private base(destination: DestinationConfig): string {
    return String(destination.settings.apiBaseUrl ?? FACEBOOK_API_BASE).replace(/\/$/, '');
  }

  private headers(destination: DestinationConfig): Record<string, string> {
    const token = destination.settings.accessToken;
    if (typeof token !== 'string' || token === '')
      throw new ListRequestError(`destination ${destination.id} (facebook-custom-audiences) has no settings.accessToken`, false);
    return { authorization: `Bearer ${token}` };
  }

  private async call(destination: DestinationConfig, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const result = await this.deps.delivery.deliver(destination, {
      url: `${this.base(destination)}${path}`,
      method,
      headers: this.headers(destination),
      body,
      classify: classifyFacebookResponse,
    });
    if (!result.ok) throw new ListRequestError(result.reason, result.retriable);
    return result.body;
  }

  async createAudience(
    destination: DestinationConfig,
    audience: { computationId: string; key: string; name: string },
  ): Promise<ExternalAudience> {
    const account = destination.settings.adAccountId;
    if (typeof account !== 'string' || account === '')
      throw new ListRequestError(
        `destination ${destination.id} (facebook-custom-audiences) has no settings.adAccountId to create audiences in`,
        false,
      );
    const body = {
      name: audience.name,
      subtype: 'CUSTOM',
      description: `Engage audience ${audience.key} (${audience.computationId})`,
      customer_file_source: 'USER_PROVIDED_ONLY',
    };
    const created = (await this.call(destination, 'POST', `/act_${account.replace(/^act_/, '')}/customaudiences`, body)) as { id: string };
    return { id: created.id, name: audience.name };
  }

  async getAudience(destination: DestinationConfig, externalId: string): Promise<ExternalAudience | null> {
    try {
      const found = (await this.call(destination, 'GET', `/${encodeURIComponent(externalId)}?fields=id,name`)) as {
        id: string;
        name: string;
      };
      return { id: found.id, name: found.name };
    } catch (err) {
      // Deleted on Facebook's side (or never there): the flush creates a new one.
      if (err instanceof ListRequestError && !err.retriable) return null;
      throw err;
    }
  }

  add(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome> {
    return this.users(destination, audience, items, 'POST');
  }

  remove(destination: DestinationConfig, audience: ExternalAudience, items: NormalisedId[]): Promise<BatchOutcome> {
    return this.users(destination, audience, items, 'DELETE');
  }

  private async users(
    destination: DestinationConfig,
    audience: ExternalAudience,
    items: NormalisedId[],
    method: 'POST' | 'DELETE',
  ): Promise<BatchOutcome> {
    const failed: BatchOutcome['failed'] = [];
    items.forEach((item, index) => {
      if (!item.ok) failed.push({ index, reason: item.reason });
    });
    for (const { body, indexes } of facebookPayloads(items)) {
      const answer = await this.call(destination, method, `/${encodeURIComponent(audience.id)}/users`, body);
      failed.push(...facebookOutcome(answer, body.payload.data, indexes).failed);
    }
    return { failed };
  }
}
