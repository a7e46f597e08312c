// Streams an audience as CSV (GET /spaces/{spaceId}/audiences/{id}/csv).
// The membership is snapshotted first (an atomic COPY of the member set), so
// the file is the audience as it was when the request started, however long
// the download takes. Then a page of members at a time: one SSCAN, one
// pipeline for their external ids, one write, honouring backpressure, so
// memory stays flat whatever the audience size.
import type { Writable } from 'node:stream';
import {
  FormattedColumns,
  UNFORMATTED_HEADER,
  formattedRow,
  identifiersJson,
  singleColumnHeader,
  singleColumnRows,
  unformattedRow,
  type CsvFormat,
  type ExportedProfile,
  type ProfileStateRepository,
} from '@engage/profile-store';
import type { IdentityGraphReader } from './identity-graph.reader';

export interface AudienceExportRequest {
  spaceId: string;
  computationId: string;
  format: CsvFormat;
  /** single_column: the id type of the column. */
  idType: string;
  /** single_column: SHA-256 the values (Segment's default). */
  hashed: boolean;
}

export class AudienceExport {
  constructor(
    private readonly config: { snapshotTtlSeconds: number; pageSize: number },
    private readonly deps: { profiles: ProfileStateRepository; graph: IdentityGraphReader },
  ) {}

  /** Writes the whole CSV to `out` (not ended); resolves with the number of profiles. */
  async stream(req: AudienceExportRequest, out: Writable): Promise<{ profiles: number }> {
    const snapshot = await this.deps.profiles.snapshotMembers(req.computationId, this.config.snapshotTtlSeconds);
    try {
      if (req.format === 'formatted') {
        // The header names every indexed column, so a first pass finds them.
        const columns = new FormattedColumns();
        for await (const page of this.pages(req.spaceId, snapshot)) for (const p of page) columns.observe(p);
        const layout = columns.columns();
        await write(out, columns.header());
        return await this.rows(req.spaceId, snapshot, out, (p) => formattedRow(p, layout));
      }
      if (req.format === 'single_column') {
        await write(out, singleColumnHeader(req.idType));
        return await this.rows(req.spaceId, snapshot, out, (p) => singleColumnRows(p, req.idType, req.hashed));
      }
      await write(out, UNFORMATTED_HEADER);
      return await this.rows(req.spaceId, snapshot, out, unformattedRow);
    } finally {
      await this.deps.profiles.dropSnapshot(snapshot);
    }
  }

  private async rows(spaceId: string, snapshot: string, out: Writable, row: (p: ExportedProfile) => string): Promise<{ profiles: number }> {
    let profiles = 0;
    for await (const page of this.pages(spaceId, snapshot)) {
      let chunk = '';
      for (const p of page) chunk += row(p);
      profiles += page.length;
      if (chunk) await write(out, chunk);
    }
    return { profiles };
  }

  /**
   * Pages of members with their ids. NOTE: the next page is fetched while the
   * caller formats and writes this one, so Redis round trips overlap the work.
   */
  private async *pages(spaceId: string, snapshot: string): AsyncGenerator<ExportedProfile[]> {
    const members = this.deps.profiles.scanMembers(snapshot, this.config.pageSize);
    const fetchPage = async (): Promise<ExportedProfile[] | null> => {
      const next = await members.next();
      if (next.done) return null;
      const keys = next.value;
      const stored = await this.deps.profiles.identifiersOf(spaceId, keys);
      // Profiles the evaluator saved before it stored identifiers: ask the identity graph.
      const missing = keys.filter((_, i) => stored[i] === null);
      const fromGraph = new Map<string, string>();
      if (missing.length > 0) {
        const ids = await this.deps.graph.externalIdsOfMany(spaceId, missing);
        missing.forEach((key, i) => fromGraph.set(key, identifiersJson(ids[i]!)));
      }
      return keys.map((key, i) => ({ key, json: stored[i] ?? fromGraph.get(key)! }));
    };
    let pending = fetchPage();
    try {
      for (;;) {
        const page = await pending;
        if (!page) return;
        pending = fetchPage();
        yield page;
      }
    } finally {
      // The caller may stop early (client gone): the prefetch must not reject unobserved.
      pending.catch(() => undefined);
    }
  }
}

const clientGone = () => new Error('client went away during the CSV export');

async function write(out: Writable, chunk: string): Promise<void> {
  if (out.destroyed) throw clientGone();
  if (out.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(clientGone());
    };
    const cleanup = () => {
      out.off('drain', onDrain);
      out.off('close', onClose);
    };
    out.on('drain', onDrain);
    out.on('close', onClose);
  });
}
