// The topic settings as a service reads them: env through the shared config
// schema, then the registry. A typo is a ConfigError naming the setting.
import { ConfigError, infrastructureConfig, parseConfig, z } from '@engage/config';
import { configuredTopics } from './runtime';

const schema = z.object(infrastructureConfig);
const topicsFrom = (env: Record<string, string>) => configuredTopics(parseConfig(schema, env));

describe('configuredTopics', () => {
  it('reads TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR and TOPIC_PARTITIONS_OVERRIDES', () => {
    const topics = topicsFrom({
      TOPIC_PREFIX: 'x.',
      TOPIC_PARTITIONS: '12',
      TOPIC_REPLICATION_FACTOR: '3',
      TOPIC_PARTITIONS_OVERRIDES: ' events.resolved=48 , computations.changes=24',
    });
    expect(Object.values(topics).map((t) => [t.name, t.partitions, t.replicationFactor, t.config['min.insync.replicas']])).toEqual([
      ['x.engage.config', 1, 3, '2'],
      ['x.engage.events.inbound', 12, 3, '2'],
      ['x.engage.events.raw', 12, 3, '2'],
      ['x.engage.events.resolved', 48, 3, '2'],
      ['x.engage.identity.changes', 12, 3, '2'],
      ['x.engage.computations.changes', 24, 3, '2'],
      ['x.engage.dispatch.dlq', 1, 3, '2'],
    ]);
  });

  it('defaults to 6 partitions, one copy, no overrides, no growth', () => {
    const config = parseConfig(schema, {});
    expect([
      config.TOPIC_PARTITIONS,
      config.TOPIC_REPLICATION_FACTOR,
      config.TOPIC_PARTITIONS_OVERRIDES,
      config.TOPIC_PARTITIONS_ALLOW_GROWTH,
    ]).toEqual([6, 1, {}, false]);
  });

  it('refuses malformed values at parse time, naming the setting', () => {
    expect(() =>
      topicsFrom({
        TOPIC_PARTITIONS: 'six',
        TOPIC_REPLICATION_FACTOR: '0',
        TOPIC_PARTITIONS_OVERRIDES: 'events.raw:12,events.raw=3',
        TOPIC_PARTITIONS_ALLOW_GROWTH: 'ja',
      }),
    ).toThrow(
      new ConfigError([
        'TOPIC_PARTITIONS: Expected number, received nan',
        'TOPIC_REPLICATION_FACTOR: Number must be greater than 0',
        'TOPIC_PARTITIONS_OVERRIDES: "events.raw:12" is not <topic>=<partitions> (e.g. events.raw=12)',
        "TOPIC_PARTITIONS_ALLOW_GROWTH: Invalid enum value. Expected 'true' | 'false' | '1' | '0' | 'yes' | 'no', received 'ja'",
      ]).message,
    );
  });

  it('refuses an override of a topic that does not exist as a ConfigError', () => {
    expect(() => topicsFrom({ TOPIC_PARTITIONS_OVERRIDES: 'events.resolvd=48' })).toThrow(ConfigError);
    expect(() => topicsFrom({ TOPIC_PARTITIONS_OVERRIDES: 'events.resolvd=48' })).toThrow(/no topic named events\.resolvd/);
  });
});
