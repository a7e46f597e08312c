// The pure part of the local Kafka: which ports each KRaft node takes and the
// server.properties it runs with, for one node (the default, what CI and the
// tests use) or a cluster of N combined broker+controller nodes (`infra:up --
// --brokers 3`). No IO here: scripts/infra.mjs writes the files and starts the
// JVMs; test/kafka-nodes.test.ts checks the output. CommonJS so both the ESM
// script and jest load it.
/* global module */
'use strict';

/** The most brokers `--brokers` accepts: each takes two ports and a JVM of up to 768 MB. */
const MAX_BROKERS = 5;

/**
 * Node i (1-based) listens for clients on `port + 2 * (i - 1)` and for the
 * controller quorum one port above: 9092/9093, 9094/9095, 9096/9097. One node
 * keeps 9092/9093 as before.
 */
function kafkaNodeLayout({ brokers = 1, port = 9092 } = {}) {
  if (!Number.isInteger(brokers) || brokers < 1 || brokers > MAX_BROKERS)
    throw new Error(`--brokers must be an integer from 1 to ${MAX_BROKERS}, got ${brokers}`);
  if (!Number.isInteger(port) || port < 1 || port + 2 * brokers > 65535)
    throw new Error(`Kafka port ${port} leaves no room for ${brokers} node(s)`);
  return Array.from({ length: brokers }, (_, i) => ({ nodeId: i + 1, port: port + 2 * i, controllerPort: port + 2 * i + 1 }));
}

/**
 * server.properties of one node of `layout` (from kafkaNodeLayout). Every node
 * is broker and controller, and every node is a voter: with 3 nodes the quorum
 * survives one down. The internal topics (__consumer_offsets, transaction
 * state) take min(3, N) copies and min ISR 2 from 3 copies, as the engage
 * topics do (libs/kafka topic-layout.ts), so committed offsets survive a broker
 * loss too.
 */
function kafkaNodeProperties(layout, nodeId, dataDir) {
  const node = layout.find((n) => n.nodeId === nodeId);
  if (!node) throw new Error(`no node ${nodeId} in a layout of ${layout.length}`);
  const copies = Math.min(3, layout.length);
  const minIsr = copies >= 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${nodeId}`,
    `controller.quorum.voters=${layout.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',')}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=3',
    // Topics are created explicitly (KRaft auto-create races kafkajs metadata).
    'auto.create.topics.enable=false',
    `offsets.topic.replication.factor=${copies}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${copies}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=168',
    'log.segment.bytes=67108864',
    'num.network.threads=2',
    'num.io.threads=4',
    // Many short-lived test groups and topics: keep the controller fast.
    'delete.topic.enable=true',
  ].join('\n');
}

/** The pid-file / directory name of a node: `kafka` for the single node (unchanged), `kafka-<id>` in a cluster. */
const kafkaNodeName = (layout, nodeId) => (layout.length === 1 ? 'kafka' : `kafka-${nodeId}`);

/** Parses `--brokers N` (or `--brokers=N`) from argv; 1 when absent. */
function parseBrokersFlag(argv) {
  for (let i = 0; i < argv.length; i++) {
    const m = /^--brokers(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    const raw = m[1] ?? argv[i + 1];
    const n = Number(raw);
    if (raw === undefined || !Number.isInteger(n) || n < 1 || n > MAX_BROKERS)
      throw new Error(`--brokers must be an integer from 1 to ${MAX_BROKERS}, got ${raw ?? 'nothing'}`);
    return n;
  }
  return 1;
}

module.exports = { MAX_BROKERS, kafkaNodeLayout, kafkaNodeProperties, kafkaNodeName, parseBrokersFlag };
