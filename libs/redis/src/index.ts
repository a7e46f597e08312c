// ioredis factory: a single node from a redis:// URL, or a cluster from a
// comma-separated list of nodes (`redis-cluster://host1:6379,host2:6379`).
import Redis, { Cluster } from 'ioredis';

export type RedisClient = Redis | Cluster;
export { Redis, Cluster };

export interface RedisOptions {
  url: string;
  /** Shown in CLIENT LIST, helps find who holds connections. */
  connectionName?: string;
}

export function createRedis(opts: RedisOptions): RedisClient {
  const common = { connectionName: opts.connectionName, maxRetriesPerRequest: 20, enableAutoPipelining: true } as const;
  if (opts.url.startsWith('redis-cluster://')) {
    const nodes = opts.url
      .slice('redis-cluster://'.length)
      .split(',')
      .map((hostPort) => {
        const [host, portText] = hostPort.split(':');
        return { host: host ?? '127.0.0.1', port: Number(portText ?? 6379) };
      });
    return new Cluster(nodes, { redisOptions: common });
  }
  return new Redis(opts.url, common);
}

/** Readiness check body: PING answers. */
export async function redisAnswers(redis: RedisClient): Promise<boolean> {
  try {
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * Keys for one service under a prefix. In a cluster, `{...}` hash tags keep
 * the keys of one profile on one slot so a pipeline / Lua script may touch
 * them together.
 */
export function keyspace(prefix: string) {
  return (...parts: string[]) => `${prefix}${parts.join(':')}`;
}
