import { testInfrastructure, uniqueName } from '@engage/testing';
import { createRedis, keyspace, luaScript, redisAnswers } from './index';

it('round-trips a pipeline against the real Redis', async () => {
  const redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'redis-test' });
  const key = keyspace(`${uniqueName('t')}:`);
  try {
    expect(await redisAnswers(redis)).toBe(true);
    const results = await redis
      .pipeline()
      .hset(key('profile', 'p1'), 'count', '1')
      .hincrby(key('profile', 'p1'), 'count', 41)
      .zadd(key('wake'), 1000, 'p1')
      .zrangebyscore(key('wake'), 0, 2000)
      .exec();
    expect(results).toEqual([
      [null, 1],
      [null, 42],
      [null, 1],
      [null, ['p1']],
    ]);
  } finally {
    await redis.del(key('profile', 'p1'), key('wake'));
    redis.disconnect();
  }
});

it('runs a Lua script first called while an auto-pipeline is open, and again after Redis forgot it (NOSCRIPT)', async () => {
  // ioredis's defineCommand failed here: a command defined after the pipeline
  // was opened is missing from it, and the pipeline's reply then threw from a
  // nextTick ('results[i] is not iterable'), killing the process.
  const redis = createRedis({ url: testInfrastructure().redisUrl, connectionName: 'redis-script-test' });
  const key = `${uniqueName('script')}:k`;
  try {
    await redis.ping();
    const opened = redis.set(key, '41'); // auto-pipelined: a pipeline is open until the next tick
    const incr = luaScript<number>(redis, `return redis.call('INCRBY', KEYS[1], ARGV[1]) + 0 * ${Date.now()}`, { keys: 1 });
    const [, answer] = await Promise.all([opened, incr(key, 1)]);
    expect(answer).toBe(42);
    await redis.script('FLUSH');
    expect(await incr(key, 1)).toBe(43);
    const asBuffers = luaScript<Buffer>(redis, `return redis.call('GET', KEYS[1])`, { keys: 1, buffers: true });
    expect(Buffer.isBuffer(await asBuffers(key))).toBe(true);
  } finally {
    await redis.del(key);
    redis.disconnect();
  }
});
