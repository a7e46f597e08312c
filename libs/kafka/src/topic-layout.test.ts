import { deadLetterTopicFor, TopicLayoutError, topicRegistry } from './index';

const layoutOf = (registry: ReturnType<typeof topicRegistry>) =>
  Object.fromEntries(Object.values(registry).map((t) => [t.name, [t.partitions, t.replicationFactor, t.config['min.insync.replicas']]]));

describe('topicRegistry layout', () => {
  it('gives every data topic TOPIC_PARTITIONS, the config topic one partition, and one copy by default', () => {
    expect(layoutOf(topicRegistry('p.', { partitions: 12 }))).toEqual({
      'p.engage.config': [1, 1, '1'],
      'p.engage.events.inbound': [12, 1, '1'],
      'p.engage.events.raw': [12, 1, '1'],
      'p.engage.events.resolved': [12, 1, '1'],
      'p.engage.identity.changes': [12, 1, '1'],
      'p.engage.computations.changes': [12, 1, '1'],
      'p.engage.dispatch.dlq': [1, 1, '1'],
    });
  });

  it('applies per-topic overrides by name without prefix, and min.insync.replicas 2 from 3 copies', () => {
    const registry = topicRegistry('p.', {
      partitions: 6,
      replicationFactor: 3,
      partitionOverrides: { 'events.resolved': 24, 'dispatch.dlq': 3 },
    });
    expect(layoutOf(registry)).toEqual({
      'p.engage.config': [1, 3, '2'],
      'p.engage.events.inbound': [6, 3, '2'],
      'p.engage.events.raw': [6, 3, '2'],
      'p.engage.events.resolved': [24, 3, '2'],
      'p.engage.identity.changes': [6, 3, '2'],
      'p.engage.computations.changes': [6, 3, '2'],
      'p.engage.dispatch.dlq': [3, 3, '2'],
    });
    // The topics' own settings are kept next to the durability ones.
    expect(registry.config.config).toEqual({ 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'min.insync.replicas': '2' });
  });

  it('keeps min.insync.replicas at 1 below 3 copies, so one broker down does not refuse writes', () => {
    expect(topicRegistry('', { replicationFactor: 2 }).eventsRaw.config['min.insync.replicas']).toBe('1');
  });

  it('refuses an unknown topic name and a change to the config topic, naming both', () => {
    const layout = () => topicRegistry('p.', { partitionOverrides: { 'events.rawz': 12, config: 3, 'events.raw': 12 } });
    expect(layout).toThrow(TopicLayoutError);
    expect(() => layout()).toThrow(
      new TopicLayoutError([
        'TOPIC_PARTITIONS_OVERRIDES: no topic named events.rawz (topics: config, events.inbound, events.raw, events.resolved, identity.changes, computations.changes, dispatch.dlq)',
        'TOPIC_PARTITIONS_OVERRIDES: config keeps 1 partition(s): every service must see config changes in write order (one partition)',
      ]).message,
    );
  });

  it('accepts the config topic at its own count (an override restating it is harmless)', () => {
    expect(topicRegistry('', { partitionOverrides: { config: 1 } }).config.partitions).toBe(1);
  });

  it('gives a dead-letter topic the replication of its input', () => {
    expect(deadLetterTopicFor(topicRegistry('p.', { replicationFactor: 3 }).eventsRaw)).toEqual({
      name: 'p.engage.events.raw.dlq',
      partitions: 1,
      replicationFactor: 3,
      config: { 'retention.ms': String(30 * 24 * 3600 * 1000), 'min.insync.replicas': '2' },
    });
    expect(deadLetterTopicFor('t').replicationFactor).toBe(1);
  });
});
