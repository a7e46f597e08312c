// engage.events.inbound end to end: a plain kafkajs producer (what a user
// writes, as in the README) -> the ingest process -> engage.events.raw -> the
// identity resolver -> engage.events.resolved, compared with the same calls
// sent over HTTP; bad records to engage.events.inbound.dlq
// with their reasons while the records after them go through.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, Partitioners, type Consumer, type IHeaders, type Message, type Producer } from 'kafkajs';
import { DLQ_HEADERS, ensureTopics } from '@engage/kafka';
import type { ResolvedEvent } from '@engage/schemas';
import { startService, testInfrastructure, uniqueName, waitFor, type ServiceProcess } from '@engage/testing';
import { inboundTimestampType } from './inbound.consumer';
import { WRITE_KEY_HEADER } from './inbound-record';
import { post, sourceConfig, startIngestProcess, type IngestProcess, type RawRecord } from './testing/ingest-process';

const WRITE_KEY = 'wk-inbound-0123456789';
const DISABLED_KEY = 'wk-inbound-disabled-0123';
const LATE_KEY = 'wk-inbound-late-0123456';

let ingest: IngestProcess;
let producer: Producer;
let dlqReader: Consumer;
let resolvedReader: Consumer;
let resolver: ServiceProcess;
const resolved: ResolvedEvent[] = [];
let inboundTopic: string;
const letters: Array<{ key: string | null; value: Buffer | null; headers: Record<string, string> }> = [];

beforeAll(async () => {
  ingest = await startIngestProcess(
    'inbound',
    [sourceConfig('src_main', WRITE_KEY), sourceConfig('src_disabled', DISABLED_KEY, { enabled: false })],
    // Long enough for a source written after its first record to reach the process.
    { INGEST_INBOUND_UNKNOWN_KEY_GRACE_MS: '3000' },
  );
  inboundTopic = ingest.topics.eventsInbound.name;
  resolver = startService('identity-resolver', { ...ingest.env, OPS_PORT: '0' });
  // A producer as a user writes it: kafkajs as it comes, none of our wrappers.
  const kafka = new Kafka({ clientId: 'example-producer', brokers: testInfrastructure().kafkaBrokers });
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  dlqReader = ingest.kafka.consumer({ groupId: uniqueName('inbound-dlq-reader'), maxWaitTimeInMs: 100 });
  await dlqReader.connect();
  // Created by the process before it listened (port() waited for that).
  await dlqReader.subscribe({ topic: `${inboundTopic}.dlq`, fromBeginning: true });
  await dlqReader.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      letters.push({ key: message.key?.toString() ?? null, value: message.value, headers });
    },
  });
  resolvedReader = ingest.kafka.consumer({ groupId: uniqueName('inbound-resolved-reader'), maxWaitTimeInMs: 100 });
  await resolvedReader.connect();
  // Created by the ingest at its start, as every topic of the registry.
  await resolvedReader.subscribe({ topic: ingest.topics.eventsResolved.name, fromBeginning: true });
  await resolvedReader.run({
    eachMessage: async ({ message }) => void resolved.push(await ingest.codec.decode<ResolvedEvent>(message.value)),
  });
});

afterAll(async () => {
  await resolver?.stop('SIGKILL');
  await resolvedReader?.disconnect();
  await dlqReader?.disconnect();
  await producer?.disconnect();
  await ingest?.close();
});

type Call = Record<string, unknown> & { type: string; messageId?: string; userId?: string; anonymousId?: string };

/** A record as the README's example producer writes it. */
const record = (call: Call, writeKey: string | null = WRITE_KEY, over: Partial<Message> = {}): Message => ({
  key: call.userId ?? call.anonymousId ?? null,
  value: JSON.stringify(call),
  headers: writeKey === null ? {} : ({ [WRITE_KEY_HEADER]: writeKey } as IHeaders),
  ...over,
});
const send = (messages: Message[]) => producer.send({ topic: inboundTopic, acks: -1, messages });
const httpPost = (call: Call) => post(`${ingest.base}/v1/${call.type}`, call, { writeKey: WRITE_KEY });

it('writes identify and track calls to engage.events.raw, and so to engage.events.resolved, exactly as the same calls sent over HTTP', async () => {
  const calls = (channel: string): Call[] => [
    {
      type: 'identify',
      userId: 'same-u',
      anonymousId: 'same-anon',
      messageId: `${channel}-identify`,
      timestamp: '2026-11-30T10:00:00.000Z',
      traits: { email: 'ada@example.com', plan: 'pro' },
      context: { ip: '192.0.2.1', externalIds: [{ id: 'crm-1', type: 'crm_id', collection: 'users', encoding: 'none' }] },
      integrations: { All: true },
    },
    // No timestamp: the receive time is the event time.
    {
      type: 'track',
      userId: 'same-u',
      messageId: `${channel}-track`,
      event: 'Order Completed',
      properties: { total: 42.5, items: [{ sku: 'a' }] },
    },
    { type: 'track', anonymousId: 'same-anon', messageId: `${channel}-anon`, event: 'Viewed', timestamp: '2026-11-30T10:01:00Z' },
  ];
  const started = Date.now();
  // A producer's own record timestamp (here 2001) is not the receive time: the broker's append time is.
  await send(calls('kafka').map((c) => record(c, WRITE_KEY, { timestamp: '1000000000000' })));
  for (const call of calls('http')) expect((await httpPost(call)).status).toBe(200);

  const read = (channel: string) => Promise.all(calls(channel).map((c) => ingest.waitForMessage(c.messageId!)));
  const [viaKafka, viaHttp] = [await read('kafka'), await read('http')];
  // Everything but the messageId and the receive time (and the event time taken from it) is the same.
  const comparable = (r: RawRecord) => ({
    key: r.key,
    value: {
      ...r.value,
      message_id: r.value.message_id.replace(/^(kafka|http)-/, ''),
      received_at: 'receive time',
      timestamp: r.value.timestamp === r.value.received_at ? 'receive time' : r.value.timestamp,
    },
  });
  expect(viaKafka.map(comparable)).toEqual(viaHttp.map(comparable));
  expect(viaKafka.map((r) => [r.key, r.value.source_id, r.value.space_id])).toEqual([
    ['same-u', 'src_main', 'spa_ingest'],
    ['same-u', 'src_main', 'spa_ingest'],
    ['same-anon', 'src_main', 'spa_ingest'],
  ]);
  for (const r of viaKafka) expect(r.value.received_at).toBeGreaterThanOrEqual(started - 1000);
  expect(calls('kafka').map((c) => ingest.byMessageId(c.messageId!).length)).toEqual([1, 1, 1]);

  // Resolved: the same profiles (the person of both copies), the same fields.
  const resolvedOf = (channel: string) =>
    waitFor(
      () => {
        const got = calls(channel).map((c) => resolved.find((r) => r.message_id === c.messageId));
        return got.every((r) => r !== undefined) ? (got as ResolvedEvent[]) : null;
      },
      { timeoutMs: 30000, description: `the ${channel} calls in engage.events.resolved` },
    );
  const comparableResolved = (r: ResolvedEvent) => ({
    ...r,
    message_id: r.message_id.replace(/^(kafka|http)-/, ''),
    received_at: 'receive time',
    timestamp: r.timestamp === r.received_at ? 'receive time' : r.timestamp,
    resolved_at: 'resolve time',
  });
  const [resolvedKafka, resolvedHttp] = [await resolvedOf('kafka'), await resolvedOf('http')];
  expect(resolvedKafka.map(comparableResolved)).toEqual(resolvedHttp.map(comparableResolved));
  expect(new Set(resolvedKafka.map((r) => r.profile_id)).size).toBe(1);
});

it("keeps a producer's order per key; a call without messageId gets one derived from its record", async () => {
  const calls = Array.from({ length: 40 }, (_, i) => ({ type: 'track', userId: `order-${i % 2}`, event: 'Step', properties: { i } }));
  await send(calls.map((c) => record(c)));
  const of = (user: string) => ingest.received.filter((r) => r.value.user_id === user);
  await waitFor(() => of('order-0').length + of('order-1').length >= 40, { timeoutMs: 20000, description: '40 ordered events' });
  for (const user of ['order-0', 'order-1']) {
    expect(of(user).map((r) => JSON.parse(r.value.properties_json).i)).toEqual(
      calls.filter((c) => c.userId === user).map((c) => c.properties.i),
    );
  }
  // Derived from the record's place in the log (a UUID's shape), distinct per record.
  const ids = [...of('order-0'), ...of('order-1')].map((r) => r.value.message_id);
  expect(new Set(ids).size).toBe(40);
  expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))).toBe(true);
});

it('drops a duplicate messageId from the same source as HTTP does: within a send, across sends and across HTTP and Kafka', async () => {
  const call = { type: 'track', userId: 'dup-u', event: 'Dup', messageId: 'dup-1' };
  await send([record(call), record({ ...call, properties: { second: true } })]);
  await ingest.waitForMessage('dup-1');
  await send([record({ ...call, properties: { third: true } })]);
  // The same messageId over HTTP is a duplicate of the Kafka copy; and the other way round.
  expect(await httpPost({ ...call, properties: { http: true } })).toEqual({ status: 200, retryAfter: null, body: { success: true } });
  expect((await httpPost({ ...call, messageId: 'dup-2' })).status).toBe(200);
  await send([record({ ...call, messageId: 'dup-2', properties: { kafka: true } }), record({ ...call, messageId: 'dup-sentinel' })]);
  // Same key, one partition in and out: once the sentinel is read, so is everything before it.
  await ingest.waitForMessage('dup-sentinel');
  expect(['dup-1', 'dup-2'].map((id) => ingest.byMessageId(id).map((r) => r.value.properties_json))).toEqual([['{}'], ['{}']]);
});

it('dead-letters bad records with their reasons, and the records after them go through', async () => {
  const track = (over: Record<string, unknown> = {}): Call => ({ type: 'track', userId: 'bad-u', event: 'E', ...over });
  const avro = Buffer.from([0, 0, 0, 0, 7, 2, 0x61]);
  const bad: Array<[Message, string | RegExp]> = [
    [record(track(), WRITE_KEY, { value: '{"type":"track","userId":"bad-u",' }), /^invalid JSON body: /],
    [
      record(track({ messageId: 'bad-nokey' }), null),
      "missing write key: set the engage-write-key record header to the source's write key",
    ],
    [record(track({ messageId: 'bad-unknown' }), 'wk-nobody'), 'invalid write key'],
    [record(track({ messageId: 'bad-disabled' }), DISABLED_KEY), 'source src_disabled is disabled'],
    [
      record(track({ messageId: 'bad-big', properties: { blob: 'x'.repeat(40_000) } })),
      /^event is 400\d\d bytes, over the 32 KB \(32768 bytes\) per-event limit$/,
    ],
    [record(track({ messageId: 'bad-noevent', event: undefined })), 'event is required for track calls'],
    [
      record(track({ messageId: 'bad-notype', type: undefined })),
      'type must be one of identify, track, page, screen, group, alias, got null',
    ],
    [record(track({ messageId: 'bad-xid', context: { externalIds: [{ id: 'x' }] } })), 'context.externalIds[0].type is required'],
    [record(track(), WRITE_KEY, { value: avro }), 'an Avro record (magic byte 0): engage.events.inbound takes Segment calls as JSON text'],
  ];
  const before = letters.length;
  await send([...bad.map(([m]) => ({ ...m, key: 'bad-u' })), record(track({ userId: 'bad-u', messageId: 'good-after-bad' }))]);

  await ingest.waitForMessage('good-after-bad');
  await waitFor(() => letters.length >= before + bad.length, { timeoutMs: 20000, description: `${bad.length} dead letters` });
  const got = letters.slice(before);
  expect(got).toHaveLength(bad.length);
  expect(
    got.map((l) => ({ key: l.key, value: l.value, reason: l.headers[DLQ_HEADERS.reason], step: l.headers[DLQ_HEADERS.step] })),
  ).toEqual(
    bad.map(([m, reason]) => ({
      key: 'bad-u',
      value: Buffer.from(m.value as string | Buffer),
      reason: typeof reason === 'string' ? reason : expect.stringMatching(reason),
      step: 'ingest-inbound',
    })),
  );
  expect(got.every((l) => l.headers[DLQ_HEADERS.sourceTopic] === inboundTopic)).toBe(true);
  // Nothing of them reached engage.events.raw; the record after them did.
  expect(ingest.received.filter((r) => r.value.user_id === 'bad-u').map((r) => r.value.message_id)).toEqual(['good-after-bad']);
});

it('takes the first records of a source created just after they were written', async () => {
  await send([record({ type: 'track', userId: 'late-u', event: 'Early', messageId: 'late-1' }, LATE_KEY)]);
  await ingest.writer.write('source', 'src_late', 'spa_ingest', sourceConfig('src_late', LATE_KEY));
  expect((await ingest.waitForMessage('late-1')).value.source_id).toBe('src_late');
});

it("runs the README's example producer as written, and its calls arrive", async () => {
  const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
  const example = /## Producing to Kafka directly[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("topic: 'engage.events.inbound'");
  // Only where it runs changes: this test's broker and topic prefix.
  const code = example!
    .replace("['127.0.0.1:9092']", JSON.stringify(testInfrastructure().kafkaBrokers))
    .replace("'engage.events.inbound'", JSON.stringify(inboundTopic));
  await promisify(execFile)(process.execPath, ['--input-type=module', '--eval', code], {
    cwd: path.resolve(__dirname, '../../..'),
    env: { ...process.env, WRITE_KEY, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
  });
  const [identify, track] = [await ingest.waitForMessage('crm-4711-1'), await ingest.waitForMessage('order-1001')];
  expect([identify.key, identify.value.type, identify.value.traits_json, identify.value.source_id]).toEqual([
    'u123',
    'identify',
    '{"email":"ada@example.com"}',
    'src_main',
  ]);
  expect([track.key, track.value.event, track.value.properties_json]).toEqual(['u123', 'Order Completed', '{"total":42.5}']);
});

it("checks the topic's timestamp type at start: LogAppendTime as the ingest creates it, anything else is reported", async () => {
  expect(await inboundTimestampType(ingest.kafka, inboundTopic)).toBe('LogAppendTime');
  expect(ingest.proc.logs.filter((l) => l.msg === 'inbound_topic_not_log_append_time')).toEqual([]);
  // As an operator might create it by hand.
  const byHand = `${uniqueName('inbound-byhand')}.engage.events.inbound`;
  await ensureTopics(ingest.kafka, [{ name: byHand, partitions: 1, replicationFactor: 1, config: {} }]);
  expect(await inboundTimestampType(ingest.kafka, byHand)).toBe('CreateTime');
});
