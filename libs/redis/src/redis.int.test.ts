import { testInfrastructure, uniqueName } from '@engage/testing';
import { createRedis, keyspace, redisAnswers } from './index';

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
