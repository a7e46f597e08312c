// A consumer process for the "killed mid-batch" test: handles chunks of 10,
// records what it handled, and hangs forever inside the chunk that holds
// message HANG_AT, so the test can SIGKILL it there.
// Plain JS over the built lib (dist), since it runs outside jest.
const fs = require('node:fs');
const { createKafka, BatchConsumer, DeadLetterWriter, createProducer, ok } = require('@engage/kafka');
const { silentLogger } = require('@engage/logging');

const [topic, groupId, outFile, hangAt] = process.argv.slice(2);
const log = silentLogger();
const kafka = createKafka({ brokers: process.env.KAFKA_BROKERS.split(','), clientId: 'hanging-consumer' }, { log });

(async () => {
  const producer = createProducer(kafka);
  await producer.connect();
  const consumer = new BatchConsumer(
    { groupId, topics: [topic], fromBeginning: true, chunkSize: 10, sessionTimeoutMs: 6000 },
    {
      kafka,
      log,
      step: 'test',
      deadLetters: new DeadLetterWriter({ topic: `${topic}.dlq` }, { producer }),
      decode: (m) => m.value.toString(),
      handle: async (messages) => {
        if (messages.some((m) => Number(m.value) >= Number(hangAt))) {
          fs.appendFileSync(outFile, 'HANG\n');
          await new Promise(() => {}); // never resolves: killed here
        }
        fs.appendFileSync(outFile, messages.map((m) => `${m.value}\n`).join(''));
        return messages.map(() => ok);
      },
    },
  );
  await consumer.start();
})();
