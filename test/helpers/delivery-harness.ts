// What the delivery tests share: the services' environment, a control-plane
// client, and publishing change records as the evaluator would.
import type { Producer } from '@engage/kafka';
import { valueSubject, type ComputationChange, type SchemaCodec } from '@engage/schemas';
import { serviceEnv } from '@engage/testing';

/** Environment of the control plane and dispatchers of one test file (its own topic and key prefix). */
export function deliveryEnv(prefix: string, token: string, extra: Record<string, string> = {}): Record<string, string> {
  // Short backoffs: the tests watch retries happen. Receivers are local HTTP
  // servers, so loopback is allowed as `npm start` allows it (CONTRACT.md section 7).
  return serviceEnv(prefix, {
    CONTROL_PLANE_TOKEN: token,
    DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
    DISPATCH_INITIAL_BACKOFF_MS: '200',
    DISPATCH_MAX_BACKOFF_MS: '1000',
    ...extra,
  });
}

export type Api = (method: string, path: string, body?: unknown) => Promise<any>;

/** A JSON client of the control plane at `base`, with its bearer token. */
export function controlPlaneApi(base: string, token: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return res.json();
  };
}

/** Writes change records to `topic` (Avro, keyed by profile), in sends of 2,000. */
export async function publishChanges(producer: Producer, codec: SchemaCodec, topic: string, changes: ComputationChange[]): Promise<void> {
  const subject = valueSubject(topic);
  for (let i = 0; i < changes.length; i += 2000) {
    const part = changes.slice(i, i + 2000);
    await producer.send({
      topic,
      messages: await Promise.all(part.map(async (c) => ({ key: c.profile_id, value: await codec.encode(subject, c) }))),
    });
  }
}
