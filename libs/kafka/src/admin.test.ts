import { planTopics, TopicPartitionsError } from './admin';

const wanted = [
  { name: 'new', partitions: 6, replicationFactor: 3, config: {} },
  { name: 'fewer', partitions: 12, replicationFactor: 3, config: {} },
  { name: 'more', partitions: 6, replicationFactor: 3, config: {} },
  { name: 'same', partitions: 6, replicationFactor: 3, config: {} },
  { name: 'one-copy', partitions: 6, replicationFactor: 3, config: {} },
];
const existing = [
  { name: 'fewer', partitions: 6, replicationFactor: 3 },
  { name: 'more', partitions: 24, replicationFactor: 3 },
  { name: 'same', partitions: 6, replicationFactor: 3 },
  { name: 'one-copy', partitions: 6, replicationFactor: 1 },
  { name: 'not-ours', partitions: 1, replicationFactor: 1 },
];

describe('planTopics', () => {
  it('creates the missing, refuses to grow, reports more partitions and fewer copies', () => {
    expect(planTopics(wanted, existing, { allowPartitionGrowth: false })).toEqual({
      create: [wanted[0]],
      grow: [],
      refused: [{ name: 'fewer', has: 6, wanted: 12 }],
      morePartitions: [{ name: 'more', has: 24, wanted: 6 }],
      fewerReplicas: [{ name: 'one-copy', has: 1, wanted: 3 }],
    });
  });

  it('grows when allowed', () => {
    const plan = planTopics(wanted, existing, { allowPartitionGrowth: true });
    expect([plan.grow, plan.refused]).toEqual([[{ name: 'fewer', from: 6, to: 12 }], []]);
  });

  it('counts a topic without a replication factor as one copy', () => {
    const plan = planTopics([{ name: 'one-copy', partitions: 6, config: {} }], existing, { allowPartitionGrowth: false });
    expect(plan).toEqual({ create: [], grow: [], refused: [], morePartitions: [], fewerReplicas: [] });
  });

  it('explains the refusal: what, why and the way out', () => {
    expect(new TopicPartitionsError([{ name: 'engage.events.raw', has: 6, wanted: 12 }]).message).toMatch(
      /^topics have fewer partitions than configured: engage\.events\.raw has 6, configured 12\. Growing a live topic breaks per-profile order .*TOPIC_PARTITIONS_ALLOW_GROWTH=true\.$/,
    );
  });
});
