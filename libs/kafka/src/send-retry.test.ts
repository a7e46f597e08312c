// kafkajs's send is patched (libs/kafka/patches, sendMessages.js) to track
// acknowledgements per partition: upstream kept one response per broker
// across retries, so when a broker died and its partitions moved to a broker
// that had already answered, the retry sent nothing and the send resolved
// without writing them (tulios/kafkajs issue 1303). bench/broker-failover
// shows it against a real 3-broker cluster (acknowledged events missing after
// a SIGKILL); a leader change cannot be made on the single test broker, so
// these tests drive the patched module through the scenarios with a scripted
// cluster: which broker leads what, and which produce requests fail, when.
import { javaCompatiblePartitioner } from './partitioner';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internal modules have no types */
const createSendMessages = require('kafkajs/src/producer/sendMessages') as (deps: object) => (args: object) => Promise<unknown[]>;
const createEosManager = require('kafkajs/src/producer/eosManager') as (args: object) => object;
const createRetry = require('kafkajs/src/retry') as (opts: object) => unknown;
const { KafkaJSConnectionError } = require('kafkajs/src/errors') as { KafkaJSConnectionError: new (msg: string) => Error };
/* eslint-enable @typescript-eslint/no-require-imports */

interface ProduceCall {
  nodeId: number;
  partitions: number[];
  messages: number;
}

const TOPIC = 't';
const noLog = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A cluster whose partition leaders are `leaders` (partition -> nodeId; null:
 * no leader known) and whose refreshMetadata() applies the next entry of
 * `refreshes`. `produce(nodeId, call)` decides each request's fate.
 */
function scriptedCluster(
  leaders: Record<number, number | null>,
  refreshes: Array<Record<number, number | null>>,
  produce: (nodeId: number, call: ProduceCall) => Promise<void>,
) {
  const written: ProduceCall[] = [];
  const brokers = new Map<number, object>();
  const brokerFor = (nodeId: number) => {
    let broker = brokers.get(nodeId);
    if (!broker) {
      broker = {
        nodeId,
        async produce({
          topicData,
        }: {
          topicData: Array<{ topic: string; partitions: Array<{ partition: number; messages: unknown[] }> }>;
        }) {
          const partitions = topicData.flatMap((t) => t.partitions);
          const call = {
            nodeId,
            partitions: partitions.map((p) => p.partition),
            messages: partitions.reduce((n, p) => n + p.messages.length, 0),
          };
          await produce(nodeId, call);
          written.push(call);
          return {
            topics: topicData.map((t) => ({
              topicName: t.topic,
              partitions: t.partitions.map((p) => ({
                partition: p.partition,
                errorCode: 0,
                baseOffset: '0',
                logAppendTime: '-1',
                logStartOffset: '0',
              })),
            })),
          };
        },
      };
      brokers.set(nodeId, broker);
    }
    return broker;
  };
  const cluster = {
    retry: {},
    targetTopics: new Set<string>(),
    async addMultipleTargetTopics() {},
    async refreshMetadataIfNecessary() {},
    async refreshMetadata() {
      const next = refreshes.shift();
      if (next) leaders = next;
    },
    isConnected: () => true,
    removeBroker() {},
    findTopicPartitionMetadata: () => Object.keys(leaders).map((p) => ({ partitionId: Number(p), leader: leaders[Number(p)] })),
    findLeaderForPartitions(_topic: string, partitions: string[]) {
      const result: Record<string, number[]> = {};
      for (const p of partitions) {
        const leader = leaders[Number(p)];
        if (leader === null || leader === undefined) continue;
        (result[leader] ??= []).push(Number(p));
      }
      return result;
    },
    async findBroker({ nodeId }: { nodeId: string }) {
      return brokerFor(Number(nodeId));
    },
  };
  return { cluster, written };
}

function sender(cluster: object) {
  return createSendMessages({
    logger: noLog,
    cluster,
    partitioner: javaCompatiblePartitioner(),
    eosManager: createEosManager({ logger: noLog, cluster, transactional: false }),
    retrier: createRetry({ retries: 5, initialRetryTime: 1, maxRetryTime: 5 }),
  });
}

/** One message per partition 0..n-1 (explicit partitions: the scenario decides who leads them). */
const onePerPartition = (n: number) => [
  { topic: TOPIC, messages: Array.from({ length: n }, (_, partition) => ({ partition, key: `k${partition}`, value: `v${partition}` })) },
];

const partitionsWritten = (written: ProduceCall[]) => written.flatMap((c) => c.partitions).sort((a, b) => a - b);

describe('patched kafkajs send: acknowledgements per partition across retries', () => {
  test("a dead broker's partitions that move to a broker that already answered are still written", async () => {
    // Partition 1's leader (broker 2) dies mid-send; the new metadata hands it to broker 1, which had acknowledged partition 0.
    const { cluster, written } = scriptedCluster({ 0: 1, 1: 2, 2: 3 }, [{ 0: 1, 1: 1, 2: 3 }], async (nodeId) => {
      if (nodeId === 2) throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED');
    });
    const result = await sender(cluster)({ acks: -1, timeout: 1000, topicMessages: onePerPartition(3) });
    expect(partitionsWritten(written)).toEqual([0, 1, 2]);
    expect(written.find((c) => c.partitions.includes(1))?.nodeId).toBe(1);
    expect((result as Array<{ partition: number }>).map((r) => r.partition).sort()).toEqual([0, 1, 2]);
  });

  test('partitions acknowledged before the failure are not written again', async () => {
    const { cluster, written } = scriptedCluster({ 0: 1, 1: 2, 2: 3 }, [{ 0: 1, 1: 3, 2: 3 }], async (nodeId) => {
      if (nodeId === 2) throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED');
    });
    await sender(cluster)({ acks: -1, timeout: 1000, topicMessages: onePerPartition(3) });
    expect(partitionsWritten(written)).toEqual([0, 1, 2]);
  });

  test('a partition without a known leader is retried, not skipped', async () => {
    const { cluster, written } = scriptedCluster({ 0: 1, 1: null }, [{ 0: 1, 1: 2 }], async () => {});
    const result = await sender(cluster)({ acks: -1, timeout: 1000, topicMessages: onePerPartition(2) });
    expect(partitionsWritten(written)).toEqual([0, 1]);
    expect(result).toHaveLength(2);
  });

  test("a retry waits for the attempt's other requests to settle: never two requests in flight for one partition", async () => {
    let inFlight = 0;
    let mostInFlightOnBroker1 = 0;
    let releaseSlow: () => void = () => {};
    const slow = new Promise<void>((resolve) => (releaseSlow = resolve));
    const { cluster, written } = scriptedCluster({ 0: 1, 1: 2 }, [{ 0: 1, 1: 1 }], async (nodeId) => {
      if (nodeId === 2) {
        // Fails while broker 1's request is still waiting for its replicas.
        setImmediate(releaseSlow);
        throw new KafkaJSConnectionError('Connection error: connection closed');
      }
      inFlight++;
      mostInFlightOnBroker1 = Math.max(mostInFlightOnBroker1, inFlight);
      await slow;
      inFlight--;
    });
    await sender(cluster)({ acks: -1, timeout: 1000, topicMessages: onePerPartition(2) });
    expect(mostInFlightOnBroker1).toBe(1);
    expect(partitionsWritten(written)).toEqual([0, 1]);
  });

  test('a send whose retries run out rejects', async () => {
    const { cluster } = scriptedCluster({ 0: 1 }, [], async () => {
      throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED');
    });
    await expect(sender(cluster)({ acks: -1, timeout: 1000, topicMessages: onePerPartition(1) })).rejects.toThrow(/ECONNREFUSED/);
  });
});
