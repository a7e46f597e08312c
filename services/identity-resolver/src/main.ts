// engage.events.raw -> identity graph in Redis -> engage.events.resolved, engage.identity.changes.
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { ConfigStore } from '@engage/config-store';
import { BatchConsumer, DeadLetterWriter, deadLetterTopicFor, ensureTopics } from '@engage/kafka';
import type { RawEvent } from '@engage/schemas';
import { createRuntime, opsComponent } from '@engage/service';
import { configSchema } from './config';
import { IdentityRepository } from './identity.repository';
import { ResolveStep } from './resolve.step';
import { SpaceRules } from './space-rules';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('identity-resolver', config);
const { kafka, codec, producer, redis, log, topics } = runtime;

const store = new ConfigStore({ topic: topics.config.name, groupPrefix: 'identity-resolver' }, { kafka, codec, log: log.child({ component: 'config-store' }) });
const spaceRules = new SpaceRules({ store, log: log.child({ component: 'space-rules' }) });
const repository = new IdentityRepository({ keyPrefix: config.REDIS_KEY_PREFIX, resultTtlSeconds: config.RESOLVER_RESULT_TTL_SECONDS }, { redis });
const step = new ResolveStep({ resolvedTopic: topics.eventsResolved.name, identityTopic: topics.identityChanges.name }, { repository, producer, codec, rulesFor: (spaceId) => spaceRules.for(spaceId) });
const dlqTopic = deadLetterTopicFor(topics.eventsRaw.name);
const consumer = new BatchConsumer<RawEvent>(
  { groupId: `${config.TOPIC_PREFIX}identity-resolver`, topics: [topics.eventsRaw.name], fromBeginning: true, chunkSize: config.RESOLVER_CHUNK_SIZE, partitionsConsumedConcurrently: config.RESOLVER_CONCURRENCY },
  {
    kafka,
    log: log.child({ component: 'events-consumer' }),
    step: 'resolve',
    decode: (m) => codec.decode<RawEvent>(m.value),
    handle: (messages) => step.handle(messages),
    deadLetters: new DeadLetterWriter({ topic: dlqTopic.name }, { producer }),
  },
);

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'dlq-topic', start: () => ensureTopics(kafka, [dlqTopic]), stop: async () => {} },
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  { name: 'events-consumer', start: () => consumer.start(), stop: () => consumer.stop(), healthcheck: () => consumer.healthcheck() },
  opsComponent(runtime, { port: config.OPS_PORT, host: config.HTTP_HOST }),
);
void runtime.service.run();
