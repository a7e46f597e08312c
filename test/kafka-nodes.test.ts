// The pure part of `infra:up -- --brokers N` (scripts/kafka-nodes.cjs): ports,
// quorum and server.properties per node. No broker started here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { kafkaNodeLayout, kafkaNodeProperties, kafkaNodeName, parseBrokersFlag } = require('../scripts/kafka-nodes.cjs');

const props = (text: string) => Object.fromEntries(text.split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));

describe('local Kafka nodes', () => {
  it('keeps the single development broker exactly as before: node 1 on 9092, its controller on 9093, one copy of internal topics', () => {
    const layout = kafkaNodeLayout({ brokers: 1, port: 9092 });
    expect(layout).toEqual([{ nodeId: 1, port: 9092, controllerPort: 9093 }]);
    expect(kafkaNodeName(layout, 1)).toBe('kafka');
    expect(props(kafkaNodeProperties(layout, 1, '/d'))).toEqual({
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': '1@127.0.0.1:9093',
      listeners: 'PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:9092',
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'log.dirs': '/d',
      'num.partitions': '3',
      'auto.create.topics.enable': 'false',
      'offsets.topic.replication.factor': '1',
      'offsets.topic.num.partitions': '10',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'transaction.state.log.num.partitions': '10',
      'group.initial.rebalance.delay.ms': '0',
      'log.retention.hours': '168',
      'log.segment.bytes': '67108864',
      'num.network.threads': '2',
      'num.io.threads': '4',
      'delete.topic.enable': 'true',
    });
  });

  it('gives 3 nodes their own client and controller ports, one 3-voter quorum, and 3 copies (min ISR 2) of the internal topics', () => {
    const layout = kafkaNodeLayout({ brokers: 3, port: 29092 });
    expect(layout).toEqual([
      { nodeId: 1, port: 29092, controllerPort: 29093 },
      { nodeId: 2, port: 29094, controllerPort: 29095 },
      { nodeId: 3, port: 29096, controllerPort: 29097 },
    ]);
    expect(layout.map((n: { nodeId: number }) => kafkaNodeName(layout, n.nodeId))).toEqual(['kafka-1', 'kafka-2', 'kafka-3']);
    const second = props(kafkaNodeProperties(layout, 2, '/infra/kafka-2/data'));
    expect({
      id: second['node.id'],
      voters: second['controller.quorum.voters'],
      listeners: second.listeners,
      advertised: second['advertised.listeners'],
      dir: second['log.dirs'],
      offsetsCopies: second['offsets.topic.replication.factor'],
      txCopies: second['transaction.state.log.replication.factor'],
      txMinIsr: second['transaction.state.log.min.isr'],
    }).toEqual({
      id: '2',
      voters: '1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097',
      listeners: 'PLAINTEXT://127.0.0.1:29094,CONTROLLER://127.0.0.1:29095',
      advertised: 'PLAINTEXT://127.0.0.1:29094',
      dir: '/infra/kafka-2/data',
      offsetsCopies: '3',
      txCopies: '3',
      txMinIsr: '2',
    });
    // Every node names the same voters: one quorum.
    const voters = layout.map((n: { nodeId: number }) => props(kafkaNodeProperties(layout, n.nodeId, '/d'))['controller.quorum.voters']);
    expect(new Set(voters).size).toBe(1);
  });

  it('keeps one copy per broker below 3 (2 nodes: 2 copies, min ISR 1, so one node down still writes)', () => {
    const two = props(kafkaNodeProperties(kafkaNodeLayout({ brokers: 2, port: 9092 }), 1, '/d'));
    expect([two['offsets.topic.replication.factor'], two['transaction.state.log.min.isr']]).toEqual(['2', '1']);
  });

  it('parses --brokers N and --brokers=N, defaults to 1, and refuses what it cannot start', () => {
    expect(parseBrokersFlag([])).toBe(1);
    expect(parseBrokersFlag(['--brokers', '3'])).toBe(3);
    expect(parseBrokersFlag(['--brokers=3'])).toBe(3);
    expect(() => parseBrokersFlag(['--brokers'])).toThrow('--brokers must be an integer from 1 to 5, got nothing');
    expect(() => parseBrokersFlag(['--brokers', 'three'])).toThrow('got three');
    expect(() => parseBrokersFlag(['--brokers', '9'])).toThrow('got 9');
    expect(() => kafkaNodeLayout({ brokers: 3, port: 65532 })).toThrow('Kafka port 65532 leaves no room for 3 node(s)');
    expect(() => kafkaNodeProperties(kafkaNodeLayout({ brokers: 3 }), 4, '/d')).toThrow('no node 4 in a layout of 3');
  });
});
