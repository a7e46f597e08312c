// The pure part of `infra:up -- --redis-cluster` (scripts/redis-cluster-nodes.cjs):
// ports, redis-server arguments, the create call and the REDIS_URL. No Redis started here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodes = require('../scripts/redis-cluster-nodes.cjs');

describe('local Redis Cluster nodes', () => {
  it('puts 3 masters on 7000-7002 (cluster bus 17000-17002), named after their port, and gives the services all three', () => {
    const layout = nodes.redisClusterLayout();
    expect(layout).toEqual([
      { name: 'redis-cluster-7000', port: 7000, busPort: 17000 },
      { name: 'redis-cluster-7001', port: 7001, busPort: 17001 },
      { name: 'redis-cluster-7002', port: 7002, busPort: 17002 },
    ]);
    expect(nodes.redisClusterUrl(layout)).toBe('redis-cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002');
    expect(nodes.redisClusterCreateArgs(layout)).toEqual([
      '--cluster',
      'create',
      '127.0.0.1:7000',
      '127.0.0.1:7001',
      '127.0.0.1:7002',
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
  });

  it('runs each node in cluster mode on its own port and dir, AOF fsynced every second, serving its slots while another master is down', () => {
    const [node] = nodes.redisClusterLayout({ port: 7100 });
    const args: string[] = nodes.redisClusterNodeArgs(node, '/d');
    const opts = Object.fromEntries(Array.from({ length: args.length / 2 }, (_, i) => [args[2 * i], args[2 * i + 1]]));
    expect(opts).toEqual({
      '--bind': '127.0.0.1',
      '--port': '7100',
      '--dir': '/d',
      '--cluster-enabled': 'yes',
      '--cluster-config-file': 'nodes.conf',
      '--cluster-node-timeout': '5000',
      '--cluster-require-full-coverage': 'no',
      '--save': '',
      '--appendonly': 'yes',
      '--appendfsync': 'everysec',
    });
  });

  it('refuses a first port whose nodes or bus ports would pass 65535, and reads the flag', () => {
    expect(() => nodes.redisClusterLayout({ port: 55534 })).toThrow(/leaves no room/);
    expect(nodes.redisClusterLayout({ port: 55532 })).toHaveLength(3);
    expect(nodes.parseRedisClusterFlag(['--brokers', '3', '--redis-cluster'])).toBe(true);
    expect(nodes.parseRedisClusterFlag(['--brokers', '3'])).toBe(false);
  });
});
