// A local emulator of The Trade Desk's CRM data API (api.thetradedesk.com/v3,
// the-trade-desk-crm definition's versioning-info.js), enforcing the contract
// its legacy flow relies on over real HTTP, and keeping each segment's last
// uploaded file so a test can read what The Trade Desk holds. Faults (429
// with Retry-After, 500, ...) queued by a test answer the next requests first.
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

type Answer = ReturnType<Responder>;

/** Where the emulator's drop URLs point (an S3 presigned URL at The Trade Desk); map this host to the emulator too. */
export const TTD_DROP_HOST = 'thetradedesk-crm-data.s3.amazonaws.com';

/**
 * The Trade Desk CRM data (api.thetradedesk.com/v3/portal/api/doc/CrmData):
 * `TTD-Auth: <token>` on every API call (401 otherwise).
 * POST /v3/crmdata/targeting/segment {AdvertiserId, SegmentName, Region,
 * DataProviderId} -> {CrmDataId} creates a CRM data segment;
 * GET /v3/crmdata/segment/{advertiser} -> {Segments, PagingToken} lists them;
 * POST /v3/crmdata/segment/{advertiser}/{crmDataId} {PiiType, MergeMode,
 * RetentionEnabled} -> {ReferenceId, Url} gives a drop endpoint, and a PUT of
 * a text/plain file (one identifier a line) to that URL is the segment's
 * data: with MergeMode Replace it replaces the segment's members.
 */
export async function tradeDeskEmulator(authToken: string, advertiserId: string) {
  const segments = new Map<string, { name: string; region: string; members: string[] | null; piiType?: string }>();
  const drops = new Map<string, { crmDataId: string; piiType: string }>();
  const uploads: Array<{ crmDataId: string; piiType: string; lines: string[] }> = [];
  const faults: Answer[] = [];
  const refuse = (status: number, message: string): Answer => ({ status, body: { Message: message } });
  const check = (method: string, path: string, body: unknown, headers: http.IncomingHttpHeaders): Answer => {
    const drop = /^\/drop\/([\w-]+)$/.exec(path);
    if (drop) {
      // The presigned URL carries its own credentials: no TTD-Auth.
      const target = drops.get(drop[1]!);
      if (method !== 'PUT' || !target) return refuse(403, 'no such drop endpoint');
      if (!String(headers['content-type'] ?? '').startsWith('text/plain')) return refuse(400, 'the file must be text/plain');
      drops.delete(drop[1]!); // one upload per drop endpoint
      const lines = String(body ?? '')
        .split('\n')
        .filter((l) => l !== '');
      uploads.push({ crmDataId: target.crmDataId, piiType: target.piiType, lines });
      segments.get(target.crmDataId)!.members = lines;
      return { status: 200, body: {} };
    }
    if (headers['ttd-auth'] !== authToken) return refuse(401, 'Authentication failed: invalid TTD-Auth token');
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'POST' && path === '/v3/crmdata/targeting/segment') {
      if (b.AdvertiserId !== advertiserId) return refuse(403, `no access to advertiser ${String(b.AdvertiserId)}`);
      if (typeof b.SegmentName !== 'string' || b.SegmentName === '') return refuse(400, "'SegmentName' is required");
      if (!['US', 'EU', 'APAC'].includes(String(b.Region))) return refuse(400, "'Region' must be US, EU or APAC");
      const crmDataId = randomUUID().slice(0, 8);
      segments.set(crmDataId, { name: b.SegmentName, region: String(b.Region), members: null });
      return { status: 200, body: { CrmDataId: crmDataId } };
    }
    if (method === 'GET' && path.split('?')[0] === `/v3/crmdata/segment/${advertiserId}`) {
      // One page, then an empty one (the definition pages until Segments is empty).
      const first = !path.includes('pagingToken=');
      const list = first ? [...segments].map(([CrmDataId, s]) => ({ CrmDataId, SegmentName: s.name })) : [];
      return { status: 200, body: { Segments: list, PagingToken: 'next' } };
    }
    const endpoint = /^\/v3\/crmdata\/segment\/([^/]+)\/([^/?]+)$/.exec(path);
    if (method === 'POST' && endpoint) {
      if (endpoint[1] !== advertiserId) return refuse(403, `no access to advertiser ${endpoint[1]}`);
      const segment = segments.get(endpoint[2]!);
      if (!segment) return refuse(404, `no CRM data segment ${endpoint[2]}`);
      if (!['Email', 'EmailHashedUnifiedId2'].includes(String(b.PiiType)))
        return refuse(400, "'PiiType' must be Email or EmailHashedUnifiedId2");
      if (!['Add', 'Replace'].includes(String(b.MergeMode))) return refuse(400, "'MergeMode' must be Add or Replace");
      const id = randomUUID();
      drops.set(id, { crmDataId: endpoint[2]!, piiType: String(b.PiiType) });
      return { status: 200, body: { ReferenceId: id, Url: `https://${TTD_DROP_HOST}/drop/${id}` } };
    }
    return refuse(404, `no such endpoint ${method} ${path}`);
  };
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();
  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  /** Makes a segment as if created in The Trade Desk's UI: its CrmDataId. */
  const seed = (name: string): string => {
    const crmDataId = randomUUID().slice(0, 8);
    segments.set(crmDataId, { name, region: 'US', members: null });
    return crmDataId;
  };
  return { ...emulator, segments, uploads, seed };
}
