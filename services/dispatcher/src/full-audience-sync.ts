// Full-audience destinations (syncsFullAudience: The Trade Desk CRM, whose
// every upload replaces the vendor's segment): the IO half of libs/delivery
// full-audience.ts. ListBuffer buffers their connections' changes as a list's
// and, on the list cadence or "sync now", calls sync() instead of sending the
// changes: a snapshot of the audience's members, their identifiers, and one
// run of the destination's batch action with all of them.
//
// Outcomes go to the connection's sync status, member by member: a refusal of
// the whole upload (The Trade Desk's minimum of 1,500 records, a bad token) is
// its error there, and one failure in the destination's counts (one upload is
// one call there, sent or failed, whatever it carries: DeliveryService
// deliverActions); members without an email are counted failed with the reason. Nothing is dead-lettered: the membership stays in
// Redis and the next sync sends it again.
import { randomUUID } from 'node:crypto';
import { fullSyncFeatures, syncsFullAudience } from '@engage/actions';
import type { ConfigStore, ConnectionConfig, DestinationConfig } from '@engage/config-store';
import { actionEvent, fullAudienceCalls, subscriptionMatches, type FullAudienceMember } from '@engage/delivery';
import type { Logger } from '@engage/logging';
import { parseIdentifiers, type ProfileStateRepository } from '@engage/profile-store';
import type { DeliveryService } from './delivery.service';
import type { DeliveryStatus } from './delivery-status';

/** A snapshot outlives a sync's retries (the retry window); it expires by itself if the dispatcher dies. */
const SNAPSHOT_TTL_SECONDS = 6 * 3600;
const PAGE = 1000;

export class FullAudienceSync {
  constructor(
    private readonly deps: {
      store: ConfigStore;
      profiles: Pick<ProfileStateRepository, 'snapshotMembers' | 'scanMembers' | 'identifierBytesOf' | 'dropSnapshot'>;
      delivery: Pick<DeliveryService, 'deliverActions'>;
      status: Pick<DeliveryStatus, 'connection'>;
      log: Logger;
      now?: () => number;
    },
  ) {}

  handles(destination: DestinationConfig): boolean {
    return destination.type === 'actions' && syncsFullAudience(destination.slug);
  }

  /** One full sync of the connection's audience: its members now, sent at once. */
  async sync(destination: DestinationConfig, connection: ConnectionConfig): Promise<void> {
    const audience = this.deps.store.get('audience', connection.computationId);
    if (connection.computationClass !== 'audience' || !audience) {
      await this.deps.status.connection(connection.id, { state: 'Failed', error: `${destination.name} takes audiences only` });
      return;
    }
    const members = await this.members(audience.spaceId, connection.computationId);
    const at = new Date(this.deps.now?.() ?? Date.now()).toISOString();
    const { calls, withoutEmail } = fullAudienceCalls(
      members,
      { id: audience.id, key: audience.key, spaceId: audience.spaceId },
      connection,
      randomUUID().replace(/-/g, ''),
      at,
    );
    const events = calls.map(actionEvent);
    const noEmail = withoutEmail.length > 0 ? `${withoutEmail.length} members have no email` : undefined;
    const mapping = events[0] && (destination.mappings ?? []).find((m) => m.enabled && subscriptionMatches(m.subscribe, events[0]));
    const results = !events[0]
      ? [{ kind: 'fail' as const, reason: 'the audience has no member with an email' }]
      : !mapping
        ? [{ kind: 'fail' as const, reason: `${destination.name} has no enabled mapping for "Audience Entered"` }]
        : await this.deps.delivery.deliverActions(destination, mapping, events, fullSyncFeatures(destination.slug));
    const refused = results.find((r) => r.kind !== 'delivered');
    const sent = refused ? 0 : events.length;
    await this.deps.status.connection(connection.id, {
      state: refused ? 'Failed' : withoutEmail.length > 0 ? 'Partially Synced' : 'Synced',
      matched: members.length,
      sent,
      failed: members.length - sent,
      error: refused ? `full sync of ${events.length} members not sent: ${refused.reason}` : noEmail,
    });
    this.deps.log.info(
      { connectionId: connection.id, members: members.length, sent, withoutEmail: withoutEmail.length, error: refused?.reason },
      'full_audience_synced',
    );
  }

  /** The audience's members at one moment (a snapshot of its set), with their identifiers. */
  private async members(spaceId: string, computationId: string): Promise<FullAudienceMember[]> {
    const snapshot = await this.deps.profiles.snapshotMembers(computationId, SNAPSHOT_TTL_SECONDS);
    try {
      const out: FullAudienceMember[] = [];
      for await (const page of this.deps.profiles.scanMembers(snapshot, PAGE)) {
        for (let i = 0; i < page.length; i += PAGE) {
          const ids = page.slice(i, i + PAGE);
          const bytes = await this.deps.profiles.identifierBytesOf(spaceId, ids);
          ids.forEach((profileId, j) => {
            const raw = bytes[j];
            out.push({ profileId, identifiers: raw ? parseIdentifiers(raw.toString()) : {} });
          });
        }
      }
      return out;
    } finally {
      await this.deps.profiles.dropSnapshot(snapshot);
    }
  }
}
