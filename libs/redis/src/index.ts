// ioredis factory: a single node from a redis:// URL, or a cluster from a
// comma-separated list of nodes (`redis-cluster://host1:6379,host2:6379`).
import { createHash } from 'node:crypto';
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
    // NOTE: no auto-pipelining on a Cluster. ioredis groups auto-pipelined
    // commands by the nodes of their slot when they are queued and checks the
    // group again when it sends them; under load that check fails now and
    // then ("All keys in the pipeline should belong to the same slots
    // allocation group", redis/ioredis issues 1264 and 1734; seen here in the
    // evaluator and the scheduler on a local 3-master cluster). Commands are
    // still written without waiting for replies, so acrossSlots' concurrent
    // commands still share round trips per node.
    return new Cluster(nodes, { enableAutoPipelining: false, redisOptions: { ...common, enableAutoPipelining: false } });
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

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** One command: its ioredis method name (`get`, `sismember`, `evalsha`...) and arguments. */
export type RedisCommand = [name: string, ...args: Array<string | number | Buffer>];

type CommandMethod = (...args: Array<string | number | Buffer>) => Promise<unknown>;

/**
 * Runs commands whose keys may lie in different hash slots, results in order
 * (the first error thrown). On one node: one pipeline (one round trip). On a
 * Cluster, where a pipeline must stay in one slot: each command on its own,
 * all at once (written to each node's connection without waiting for
 * replies). NOT atomic in either case (a
 * pipeline is not a transaction): for writes that must land together, keep
 * their keys under one hash tag. `buffers`: replies as Buffers (the
 * `<name>Buffer` methods; NOTE: ioredis's callBuffer misreads its arguments
 * under auto-pipelining, so methods are called by name).
 */
export async function acrossSlots(redis: RedisClient, commands: RedisCommand[], opts: { buffers?: boolean } = {}): Promise<unknown[]> {
  if (commands.length === 0) return [];
  const method = (name: string) => (opts.buffers ? `${name}Buffer` : name);
  if (isCluster(redis)) {
    const client = redis as unknown as Record<string, CommandMethod>;
    return Promise.all(
      commands.map(([name, ...args]) => {
        const fn = client[method(name)];
        if (typeof fn !== 'function') throw new Error(`no ioredis method ${method(name)}`);
        return fn.apply(redis, args);
      }),
    );
  }
  const results = (await redis.pipeline(commands.map(([name, ...args]) => [method(name), ...args])).exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** The Redis Cluster hash slot of a key (its `{tag}` if it has one), as the servers compute it. */
export function keySlot(key: string): number {
  return calculateSlot(key);
}

// cluster-key-slot (ioredis's own dependency for the same job) ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const calculateSlot = require('cluster-key-slot') as (key: string) => number;

export * from './lock';

/** A Lua script's call (see luaScript): its keys and arguments. */
export type LuaScript<R = unknown> = (...args: Array<string | number | Buffer>) => Promise<R>;

/**
 * A Lua script called by its SHA1 (EVALSHA); sent whole (EVAL, which also
 * caches it in Redis) only when Redis answers NOSCRIPT: its first use after
 * a restart or a SCRIPT FLUSH. Plain commands, so ioredis's auto-pipelining
 * batches them like any other, on one node or per node on a Cluster.
 * `keys`: the fixed number of keys (else pass the count as the first argument);
 * `buffers`: bulk string replies as Buffers.
 * NOTE: not ioredis's defineCommand. A command defined on a client after one
 * of its auto-pipelines was opened is missing from that pipeline: the call
 * fails ('pipeline[functionName] is not a function') and the pipeline's
 * reply then throws from a nextTick, killing the process ('results[i] is not
 * iterable', redis/ioredis#1931). Defining scripts lazily did that to the
 * evaluator in the fault-injection run.
 */
export function luaScript<R = unknown>(redis: RedisClient, lua: string, opts: { keys?: number; buffers?: boolean } = {}): LuaScript<R> {
  const sha = createHash('sha1').update(lua).digest('hex');
  const client = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const [bySha, byText] = opts.buffers ? ['evalshaBuffer', 'evalBuffer'] : ['evalsha', 'eval'];
  return async (...args) => {
    const withKeys = opts.keys === undefined ? args : [opts.keys, ...args];
    try {
      return (await client[bySha]!.call(redis, sha, ...withKeys)) as R;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return (await client[byText]!.call(redis, lua, ...withKeys)) as R;
    }
  };
}
