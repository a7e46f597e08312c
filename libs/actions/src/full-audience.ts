// Definitions that sync whole audiences (audienceConfig.mode.full_audience_sync:
// each upload replaces the vendor's segment), and the feature flags their
// full sync runs with here.
import { isActionsSlug, loadDefinition } from './registry';

/**
 * Flags a full sync of the slug's definition runs with.
 * NOTE: the-trade-desk-crm's default flow uploads to Segment's own S3 bucket
 * (AWS SDK, Segment's credentials); its legacy flow calls The Trade Desk's
 * CRM data API itself (a drop endpoint, then a PUT of the file of emails).
 */
const FULL_SYNC_FEATURES: Record<string, Record<string, boolean>> = {
  'the-trade-desk-crm': { 'actions-the-trade-desk-crm-legacy-flow': true },
};

/** Whether the slug's definition takes whole audiences (the dispatcher syncs them on the connection's cadence). */
export function syncsFullAudience(slug: string | undefined): boolean {
  if (!isActionsSlug(slug)) return false;
  const config = loadDefinition(slug).audienceConfig as { mode?: { full_audience_sync?: unknown } } | undefined;
  return config?.mode?.full_audience_sync === true;
}

export function fullSyncFeatures(slug: string | undefined): Record<string, boolean> {
  return (slug && FULL_SYNC_FEATURES[slug]) || {};
}
