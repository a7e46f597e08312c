// Each service's config schema (services/*/src/config.ts) as the deployment
// checks need it: the env names it reads, and a parse of a given environment.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseConfig, type z } from '@engage/config';
import { configSchema as batchScheduler } from '../../services/batch-scheduler/src/config';
import { configSchema as controlPlane } from '../../services/control-plane/src/config';
import { configSchema as dispatcher } from '../../services/dispatcher/src/config';
import { configSchema as identityResolver } from '../../services/identity-resolver/src/config';
import { configSchema as ingest } from '../../services/ingest/src/config';
import { configSchema as realtimeEvaluator } from '../../services/realtime-evaluator/src/config';

export const REPO = path.resolve(__dirname, '../..');

export const SERVICE_SCHEMAS: Record<string, z.ZodTypeAny> = {
  'batch-scheduler': batchScheduler,
  'control-plane': controlPlane,
  dispatcher,
  'identity-resolver': identityResolver,
  ingest,
  'realtime-evaluator': realtimeEvaluator,
};

/** The services of the repository (a new one without a schema above fails the checks that iterate these). */
export const SERVICES = readdirSync(path.join(REPO, 'services')).sort();

/** The env names a schema reads: its object's keys, under any refine/transform. */
export function envNamesOf(schema: z.ZodTypeAny): Set<string> {
  let inner: z.ZodTypeAny = schema;
  // ZodEffects (.refine, .transform) keeps the object in _def.schema.
  while ((inner._def as { schema?: z.ZodTypeAny }).schema) inner = (inner._def as { schema: z.ZodTypeAny }).schema;
  const shape = (inner as z.AnyZodObject).shape as Record<string, unknown> | undefined;
  if (!shape) throw new Error('a service config schema is not a zod object');
  return new Set(Object.keys(shape));
}

/** The service's parsed config from `env`, or the ConfigError listing what is missing or wrong. */
export function parseServiceConfig(service: string, env: Record<string, string>): Record<string, unknown> {
  const schema = SERVICE_SCHEMAS[service];
  if (!schema) throw new Error(`no config schema for service ${service}`);
  return parseConfig(schema, env) as Record<string, unknown>;
}

/** The setting naming the port a service serves /healthz, /readyz and /metrics on. */
export const HTTP_PORT_SETTING: Record<string, string> = {
  ingest: 'INGEST_PORT',
  'control-plane': 'CONTROL_PLANE_PORT',
  'identity-resolver': 'OPS_PORT',
  'realtime-evaluator': 'OPS_PORT',
  'batch-scheduler': 'OPS_PORT',
  dispatcher: 'OPS_PORT',
};

/** The service a container runs, from its command (`node services/<name>/dist/main.js`). */
export function serviceOfCommand(command: unknown): string {
  const parts = Array.isArray(command) ? command.map(String) : [];
  const match = /^services\/([a-z-]+)\/dist\/main\.js$/.exec(parts[1] ?? '');
  if (!match || parts[0] !== 'node' || parts.length !== 2) throw new Error(`not a service command: ${JSON.stringify(command)}`);
  return match[1];
}
