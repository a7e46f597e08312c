import { isInfrastructureError } from './retry';

describe('isInfrastructureError: a dependency down or busy, not the record', () => {
  it.each([
    ['ioredis, connection closed', new Error('Connection is closed.'), true],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), true],
    [
      'undici, registry unreachable',
      new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }),
      true,
    ],
    ['Redis loading its AOF', new Error('LOADING Redis is loading the dataset in memory'), true],
    ['kafkajs retriable', Object.assign(new Error('There is no leader for this topic-partition'), { retriable: true }), true],
    [
      'kafkajs retries exhausted on a broker down',
      Object.assign(new Error('Connection error'), {
        name: 'KafkaJSNumberOfRetriesExceeded',
        retriable: false,
        cause: Object.assign(new Error('Connection timeout'), { name: 'KafkaJSConnectionError', retriable: true }),
      }),
      true,
    ],
    ['kafkajs message too large', Object.assign(new Error('message larger than the max'), { retriable: false }), false],
    ['a bug some input trips', new TypeError("Cannot read properties of undefined (reading 'x')"), false],
    ['a Lua error on odd data', new Error('ERR user_script:12: attempt to compare nil with number'), false],
    ['not an error', 'boom', false],
  ])('%s', (_name, err, expected) => {
    expect(isInfrastructureError(err)).toBe(expected);
  });
});
