import { ConfigError, parseConfig } from '@engage/config';
import { configSchema } from './config';

describe('ingest config', () => {
  it('defaults to a dedupe wait within the pending TTL', () => {
    const c = parseConfig(configSchema, {});
    expect([c.INGEST_DEDUPE_WAIT_MS, c.INGEST_DEDUPE_POLL_MS, c.INGEST_DEDUPE_PENDING_TTL_MS]).toEqual([5000, 25, 30000]);
  });

  it('refuses a dedupe wait longer than the pending TTL, naming both', () => {
    expect(() => parseConfig(configSchema, { INGEST_DEDUPE_WAIT_MS: '40000' })).toThrow(
      new ConfigError(['INGEST_DEDUPE_WAIT_MS: 40000 ms is longer than INGEST_DEDUPE_PENDING_TTL_MS (30000 ms)']),
    );
  });
});
