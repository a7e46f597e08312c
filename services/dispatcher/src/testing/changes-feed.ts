// A test's own engage.computations.changes topic and a producer writing
// change records to it as the evaluator does (Avro, keyed by profile), for
// tests that run the dispatcher's Kafka-fed DestinationPipeline.
import { createKafka, createProducer, ensureTopics, topicRegistry } from '@engage/kafka';
import { silentLogger } from '@engage/logging';
import { SchemaCodec, valueSubject, type ComputationChange } from '@engage/schemas';
import { testInfrastructure, uniqueName } from '@engage/testing';

export function changesFeed(name: string) {
  const log = silentLogger();
  const prefix = `${uniqueName(name)}.`;
  const topics = topicRegistry(prefix);
  const kafka = createKafka({ brokers: testInfrastructure().kafkaBrokers, clientId: `${name}-pipeline-test` }, { log });
  const producer = createProducer(kafka);
  const codec = new SchemaCodec({ url: testInfrastructure().schemaRegistryUrl });
  const changesTopic = topics.computationsChanges.name;
  return {
    log,
    prefix,
    kafka,
    codec,
    changesTopic,
    /** Creates the topic, registers its schema, connects the producer (beforeAll). */
    start: async () => {
      await ensureTopics(kafka, [topics.computationsChanges]);
      await codec.registerTopics([topics.computationsChanges]);
      await producer.connect();
    },
    stop: () => producer.disconnect(),
    /** Change records as the evaluator writes them: Avro, keyed by profile. */
    publish: async (changes: ComputationChange[]) =>
      producer.send({
        topic: changesTopic,
        messages: await Promise.all(
          changes.map(async (c) => ({ key: c.profile_id, value: await codec.encode(valueSubject(changesTopic), c) })),
        ),
      }),
  };
}
