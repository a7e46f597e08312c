// The realtime evaluator's work without its state store: a second baseline
// for the e2e bench (issue 18), run as its own process like the evaluator so
// that its CPU is metered the same way (/proc). What an evaluator that kept
// every profile in memory and never wrote one would still pay per event.
//
// Per chunk it does what EvaluateStep does minus Redis (no locks, no load, no
// save, no history, no state encoding): the evaluator's consumer wrapper and
// settings, each event decoded, mapped (toEngineEvent), its identifiers and
// metadata noted, applied by the engine (applyEvent, with the space's
// computations from the registry the evaluator uses), each touched profile's
// next wake-up computed (nextChangeAt: the save computes it), and the change
// records built, Avro-encoded and produced (ChangeCommitter.produce, the
// evaluator's own code) to a topic nobody reads. Profiles live in a Map.
//
// Started by bench/e2e.bench.mjs (startFloor below) with the bench's services'
// environment plus FLOOR_TOPICS (comma-separated topics to consume),
// FLOOR_CHANGES_TOPIC and FLOOR_GROUP; prints {"msg":"floor_ready"} once its
// configuration has caught up, then consumes until killed. FLOOR_NODE_ARGS: its
// node flags (e.g. "--cpu-prof --cpu-prof-dir=<dir>"); FLOOR_LOG=1: its logs on stderr.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), '..');

/** Starts the floor as a child process; resolves with the child once it is ready to consume. */
export function startFloor(env, { topics, changesTopic, groupId }) {
  const child = spawn(process.execPath, [...(env.FLOOR_NODE_ARGS ? env.FLOOR_NODE_ARGS.split(' ') : []), HERE], {
    env: { ...env, FLOOR_TOPICS: topics.join(','), FLOOR_CHANGES_TOPIC: changesTopic, FLOOR_GROUP: groupId },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      if (env.FLOOR_LOG) process.stderr.write(d);
      buf = (buf + d).slice(-10_000);
      if (buf.includes('"floor_ready"')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the evaluator floor exited (${code})`)));
  });
}

async function main() {
  const require = createRequire(import.meta.url);
  const dist = (lib) => require(path.join(ROOT, lib));
  const { BatchConsumer, createKafka, createProducer, topicRegistry } = dist('libs/kafka/dist/index.js');
  const { ConfigStore } = dist('libs/config-store/dist/index.js');
  const { ChangeCommitter, ComputationsRegistry, emptyProfile, noteMetadata, toEngineEvent } = dist('libs/profile-store/dist/index.js');
  const { applyEvent, nextChangeAt } = dist('libs/engine/dist/index.js');
  const { SchemaCodec, eventKey } = dist('libs/schemas/dist/index.js');
  const { silentLogger } = dist('libs/logging/dist/index.js');
  const { emailOf, noteIdentifiers } = dist('services/realtime-evaluator/dist/evaluate.step.js');

  const env = process.env;
  const log = env.FLOOR_LOG ? dist('libs/logging/dist/index.js').createLogger({ level: 'info', service: 'floor' }) : silentLogger();
  const kafka = createKafka({ brokers: env.KAFKA_BROKERS.split(','), clientId: 'evaluator-floor' }, { log });
  const codec = new SchemaCodec({ url: env.SCHEMA_REGISTRY_URL });
  const producer = createProducer(kafka);
  await producer.connect();
  const topics = topicRegistry(env.TOPIC_PREFIX);
  await codec.registerTopics([{ ...topics.computationsChanges, name: env.FLOOR_CHANGES_TOPIC }]);
  const store = new ConfigStore({ topic: topics.config.name, groupPrefix: `${env.FLOOR_GROUP}-config` }, { kafka, codec, log });
  await store.start();
  const registry = new ComputationsRegistry({ computeMode: 'realtime' }, { store });
  // ChangeCommitter.produce does not touch the repository (only commit() saves).
  const committer = new ChangeCommitter({ changesTopic: env.FLOOR_CHANGES_TOPIC }, { producer, codec, profiles: undefined });
  const profiles = new Map();
  const handle = async (messages) => {
    const now = Date.now();
    const pending = [];
    const touched = new Set();
    for (const m of messages) {
      const e = m.value;
      const id = eventKey(e);
      const event = toEngineEvent(e, id);
      const ref = `${e.space_id}|${e.profile_id}`;
      let profile = profiles.get(ref);
      if (!profile) profiles.set(ref, (profile = emptyProfile({ spaceId: e.space_id, profileId: e.profile_id })));
      noteIdentifiers(profile, e, { email: emailOf(event) });
      noteMetadata(profile, event);
      const { ordered } = registry.forSpace(e.space_id);
      for (const change of applyEvent(profile, event, ordered, { maxEvents: 200, now }))
        pending.push({ profile, change, reason: 'realtime', occurredAt: e.timestamp, cause: id });
      touched.add(profile);
    }
    await committer.produce(pending, now);
    for (const profile of touched) {
      nextChangeAt(profile, registry.forSpace(profile.spaceId).ordered, now);
      // The evaluator's save stores the appended events and drops them from memory: so does this.
      profile.events = [];
    }
    return messages.map(() => ({ kind: 'ok' }));
  };
  const consumer = new BatchConsumer(
    {
      groupId: env.FLOOR_GROUP,
      topics: env.FLOOR_TOPICS.split(','),
      fromBeginning: true,
      // The evaluator's defaults (services/realtime-evaluator/src/config.ts).
      chunkSize: Number(env.EVALUATOR_CHUNK_SIZE ?? 2000),
      partitionsConsumedConcurrently: 6,
      coalescePartitions: true,
    },
    {
      kafka,
      log,
      step: 'floor',
      // The bench's events all decode and evaluate: a dead letter here is a bug in the bench.
      deadLetters: {
        write: async (letters) => {
          if (letters.length > 0) throw new Error(`floor: dead letters ${JSON.stringify(letters).slice(0, 300)}`);
        },
      },
      decode: (m) => codec.decodeSyncWhenKnown(m.value),
      handle,
    },
  );
  // A clean exit on the bench's SIGTERM (a --cpu-prof profile is written on exit).
  process.once('SIGTERM', () => void consumer.stop().finally(() => process.exit(0)));
  process.stdout.write('{"msg":"floor_ready"}\n');
  await consumer.start();
}

if (process.argv[1] === HERE)
  main().catch((err) => {
    process.stderr.write(`evaluator floor: ${err.stack ?? err}\n`);
    process.exit(1);
  });
