// The pure part of the local Redis Cluster (`infra:up -- --redis-cluster`):
// which ports the masters take, the redis-server arguments of each, the
// `redis-cli --cluster create` call and the REDIS_URL the services get. No IO
// here: scripts/infra.mjs starts the processes; test/redis-cluster-nodes.test.ts
// checks the output. CommonJS so both the ESM script and jest load it.
/* global module */
'use strict';

/** Masters only, no replicas: the smallest layout Redis Cluster accepts (3 masters) is what tests need. */
const REDIS_CLUSTER_MASTERS = 3;

/** Node i (0-based) listens on `port + i`: 7000, 7001, 7002. Redis adds 10000 for the cluster bus (17000-17002). */
function redisClusterLayout({ port = 7000, masters = REDIS_CLUSTER_MASTERS } = {}) {
  if (!Number.isInteger(port) || port < 1 || port + masters - 1 + 10000 > 65535)
    throw new Error(`Redis Cluster port ${port} leaves no room for ${masters} nodes and their cluster bus ports (+10000)`);
  return Array.from({ length: masters }, (_, i) => ({ name: `redis-cluster-${port + i}`, port: port + i, busPort: port + i + 10000 }));
}

/**
 * redis-server arguments of one node, its files in `dir`. Persistence as the
 * single node's (AOF fsynced every second): a restarted node keeps its keys and
 * its nodes.conf (the slots it owns), so `up` after a crash needs no re-create.
 */
function redisClusterNodeArgs(node, dir) {
  return [
    '--bind',
    '127.0.0.1',
    '--port',
    String(node.port),
    '--dir',
    dir,
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    '5000',
    // NOTE: without this a local cluster answers CLUSTERDOWN for every slot
    // while one master is down; tests that stop a node want the others served.
    '--cluster-require-full-coverage',
    'no',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
  ];
}

/** `redis-cli` arguments that join the nodes into one cluster, the 16384 slots split evenly. */
function redisClusterCreateArgs(layout) {
  return ['--cluster', 'create', ...layout.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'];
}

/** The REDIS_URL of the services (libs/redis createRedis): every master, so any one starts the discovery. */
const redisClusterUrl = (layout) => `redis-cluster://${layout.map((n) => `127.0.0.1:${n.port}`).join(',')}`;

/** `--redis-cluster` present in argv. */
const parseRedisClusterFlag = (argv) => argv.includes('--redis-cluster');

module.exports = {
  REDIS_CLUSTER_MASTERS,
  redisClusterLayout,
  redisClusterNodeArgs,
  redisClusterCreateArgs,
  redisClusterUrl,
  parseRedisClusterFlag,
};
