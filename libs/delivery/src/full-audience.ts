// Full-audience destinations (an Actions definition whose audienceConfig.mode
// says full_audience_sync, as The Trade Desk CRM's: each upload REPLACES the
// vendor's segment): the pure half. A sync sends the whole membership at
// once, one "Audience Entered" call per member with an email, as Segment's
// full sync does; entries and exits are not sent one by one (the dispatcher
// buffers them as a list's and the next sync carries them).
import type { SegmentCall } from './payloads';

export interface FullAudienceMember {
  profileId: string;
  /** The profile's identifiers by type (the stored identifiersJson), in the order it gained them. */
  identifiers: Record<string, string[]>;
}

export interface FullAudienceSync {
  calls: SegmentCall[];
  /** Members with no email: the vendor matches on emails only, so they cannot be sent (counted in the status). */
  withoutEmail: string[];
}

/**
 * The calls of one full sync of `audience` (its members at one moment):
 * context.traits.email is the member's latest email (the definitions' email
 * field reads it there), context.personas the audience's and the vendor's
 * audience id (the definitions' external_id reads external_audience_id).
 */
export function fullAudienceCalls(
  members: FullAudienceMember[],
  audience: { id: string; key: string; spaceId: string },
  connection: { externalAudienceId?: string; audienceSettings?: Record<string, unknown> },
  syncId: string,
  at: string,
): FullAudienceSync {
  const calls: SegmentCall[] = [];
  const withoutEmail: string[] = [];
  for (const member of members) {
    const emails = member.identifiers.email ?? [];
    const email = emails[emails.length - 1];
    if (!email) {
      withoutEmail.push(member.profileId);
      continue;
    }
    const userIds = member.identifiers.user_id ?? [];
    calls.push({
      type: 'track',
      event: 'Audience Entered',
      ...(userIds.length ? { userId: userIds[userIds.length - 1] } : {}),
      messageId: `personas_${syncId}_${member.profileId}`,
      timestamp: at,
      properties: { audience_key: audience.key, [audience.key]: true },
      context: {
        traits: { email },
        personas: {
          computation_class: 'audience',
          computation_id: audience.id,
          computation_key: audience.key,
          space_id: audience.spaceId,
          ...(connection.externalAudienceId ? { external_audience_id: connection.externalAudienceId } : {}),
          ...(connection.audienceSettings ? { audience_settings: connection.audienceSettings } : {}),
        },
      },
      integrations: { All: false },
    });
  }
  return { calls, withoutEmail };
}
