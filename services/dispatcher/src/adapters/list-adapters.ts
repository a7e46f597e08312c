// Destination type -> list adapter. A type listed here is a list destination
// (buffered and flushed on cadence); every other type gets event calls.
import type { ListDestinationAdapter } from '@engage/delivery';
import type { DeliveryService } from '../delivery.service';
import { FacebookAudiencesAdapter } from './facebook-audiences.adapter';
import { ListWebhookAdapter } from './list-webhook.adapter';

export function listAdapters(deps: { delivery: DeliveryService }): Map<string, ListDestinationAdapter> {
  const adapters: ListDestinationAdapter[] = [new ListWebhookAdapter(deps), new FacebookAudiencesAdapter(deps)];
  return new Map(adapters.map((a) => [a.type, a]));
}
