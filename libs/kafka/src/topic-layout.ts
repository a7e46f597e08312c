// How many partitions and copies each topic of the registry gets, from the
// deployment's configuration (TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR,
// TOPIC_PARTITIONS_OVERRIDES; libs/config). Pure: the registry's entries are
// data, the layout is applied to whichever topics it holds.
import type { TopicKey, TopicLayout, TopicSpec } from './topics';

/** A layout the registry cannot honour (unknown topic, fixed count): a configuration error, raised at start. */
export class TopicLayoutError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid topic layout:\n  ${issues.join('\n  ')}`);
    this.name = 'TopicLayoutError';
  }
}

/**
 * Topic settings that follow the replication factor.
 * NOTE: with 3 or more copies a write acknowledged (acks=all) is on at least 2
 * brokers, and one broker can be down without refusing writes; with fewer,
 * requiring 2 in sync would refuse every write while one broker is down.
 * https://kafka.apache.org/documentation/#topicconfigs_min.insync.replicas
 */
export function durabilityConfig(replicationFactor: number): Record<string, string> {
  return { 'min.insync.replicas': replicationFactor >= 3 ? '2' : '1' };
}

/**
 * The registry's specs with the layout applied: per-topic partition overrides
 * (by name without `prefix`), the replication factor and its min.insync.replicas.
 * Throws TopicLayoutError naming every override it cannot apply.
 */
export function applyTopicLayout(
  specs: Record<TopicKey, Omit<TopicSpec, 'replicationFactor'>>,
  layout: TopicLayout & { prefix: string },
): Record<TopicKey, TopicSpec> {
  const replicationFactor = layout.replicationFactor ?? 1;
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1)
    throw new TopicLayoutError([`replication factor ${replicationFactor} is not a positive integer`]);
  const overrides = layout.partitionOverrides ?? {};
  const shortName = (spec: { name: string }) => spec.name.slice(layout.prefix.length);
  const byShortName = new Map(Object.values(specs).map((s) => [shortName(s), s]));

  const issues: string[] = [];
  for (const [topic, partitions] of Object.entries(overrides)) {
    const spec = byShortName.get(topic);
    if (!spec) issues.push(`TOPIC_PARTITIONS_OVERRIDES: no topic named ${topic} (topics: ${[...byShortName.keys()].join(', ')})`);
    else if (spec.fixedPartitions !== undefined && partitions !== spec.partitions)
      issues.push(`TOPIC_PARTITIONS_OVERRIDES: ${topic} keeps ${spec.partitions} partition(s): ${spec.fixedPartitions}`);
    else if (!Number.isInteger(partitions) || partitions < 1)
      issues.push(`TOPIC_PARTITIONS_OVERRIDES: ${topic}=${partitions} is not a positive number of partitions`);
  }
  if (issues.length > 0) throw new TopicLayoutError(issues);

  const laidOut = {} as Record<TopicKey, TopicSpec>;
  for (const key of Object.keys(specs) as TopicKey[]) {
    const spec = specs[key];
    laidOut[key] = {
      ...spec,
      partitions: overrides[shortName(spec)] ?? spec.partitions,
      replicationFactor,
      config: { ...spec.config, ...durabilityConfig(replicationFactor) },
    };
  }
  return laidOut;
}
