// docker-compose.yml checked without a Docker engine (none on our machines):
// parsed as Compose reads it (anchors, `<<` merges, ${VAR:-default}), then its
// images, ports, addresses and every service's environment checked against the
// service's config schema and the contract's defaults (CONTRACT.md section 0).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import {
  envNamesOf,
  HTTP_PORT_SETTING,
  parseServiceConfig,
  REPO,
  SERVICE_SCHEMAS,
  SERVICES,
  serviceOfCommand,
} from './helpers/service-configs';

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  ports?: string[];
  environment?: Record<string, string | number>;
  depends_on?: string[];
}

const compose = parse(readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const INFRASTRUCTURE = ['kafka', 'schema-registry', 'redis'];

/** Compose's interpolation with nothing set in the shell: `${X:-default}` is the default, `${X}` empty. */
function interpolate(value: string | number): string {
  return String(value).replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_, _name: string, fallback?: string) => fallback ?? '');
}

/** `host:container` published ports as [host, container]. */
const published = (service: ComposeService) => (service.ports ?? []).map((p) => p.split(':').map(Number) as [number, number]);

const environmentOf = (service: ComposeService) =>
  Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));

/** The listeners a KRaft broker advertises, by name: { INTERNAL: 'kafka:29092', ... }. */
function advertisedListeners(kafka: ComposeService): Record<string, string> {
  return Object.fromEntries(
    String(kafka.environment?.KAFKA_ADVERTISED_LISTENERS)
      .split(',')
      .map((l) => /^([A-Z_]+):\/\/(.+)$/.exec(l)!.slice(1)),
  );
}

const applications = Object.entries(compose.services).filter(([name]) => !INFRASTRUCTURE.includes(name));

it('runs the infrastructure of the design: Kafka 3.9 in KRaft mode, Apicurio Registry 3, Redis, on the contract ports', () => {
  const { kafka, 'schema-registry': registry, redis } = compose.services;
  expect(kafka.image).toMatch(/^apache\/kafka:3\.9\.\d+$/);
  expect(registry.image).toMatch(/^apicurio\/apicurio-registry:3\.\d+\.\d+$/);
  expect(redis.image).toMatch(/^redis:\d/);
  expect([published(kafka), published(registry), published(redis)]).toEqual([[[9092, 9092]], [[8081, 8080]], [[6379, 6379]]]);
  // DESIGN.md: topics are created explicitly (KRaft auto-create races kafkajs).
  expect(kafka.environment).toMatchObject({ KAFKA_PROCESS_ROLES: 'broker,controller', KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false' });
  // The host reaches the broker at the address it advertises on the published port.
  const listeners = String(kafka.environment?.KAFKA_LISTENERS).split(',');
  const hostListener = listeners.find((l) => l.endsWith(`:${published(kafka)[0][1]}`))!.split(':')[0];
  expect(advertisedListeners(kafka)[hostListener]).toBe(`127.0.0.1:${published(kafka)[0][0]}`);
});

it('runs every service from the repository image, after the infrastructure', () => {
  expect(applications.map(([name, s]) => [name, serviceOfCommand(s.command), s.build, s.image]).sort()).toEqual(
    SERVICES.map((name) => [name, name, '.', undefined]),
  );
  for (const [, service] of applications) expect([...(service.depends_on ?? [])].sort()).toEqual([...INFRASTRUCTURE].sort());
});

describe.each(applications.map(([name, service]) => [name, service] as const))('%s', (name, service) => {
  const env = environmentOf(service);

  it('is given only settings its config schema reads, and every one it requires', () => {
    expect(Object.keys(env).filter((k) => !envNamesOf(SERVICE_SCHEMAS[name]).has(k))).toEqual([]);
    expect(() => parseServiceConfig(name, env)).not.toThrow();
  });

  it('reaches Kafka, the registry and Redis at the addresses their containers listen on', () => {
    const config = parseServiceConfig(name, env) as {
      KAFKA_BROKERS: string[];
      SCHEMA_REGISTRY_URL: string;
      REDIS_URL: string;
      TOPIC_REPLICATION_FACTOR: number;
    };
    expect(config.KAFKA_BROKERS).toEqual([advertisedListeners(compose.services.kafka).INTERNAL]);
    const registry = new URL(config.SCHEMA_REGISTRY_URL);
    expect([registry.hostname, Number(registry.port), registry.pathname]).toEqual([
      'schema-registry',
      published(compose.services['schema-registry'])[0][1],
      '/apis/ccompat/v7',
    ]);
    expect(new URL(config.REDIS_URL).host).toBe(`redis:${published(compose.services.redis)[0][1]}`);
    // One broker holds one copy: a larger factor would refuse to create the topics.
    expect(config.TOPIC_REPLICATION_FACTOR).toBe(1);
  });

  it('listens on all interfaces, publishing its HTTP port where the contract says', () => {
    const config = parseServiceConfig(name, env);
    expect(config.HTTP_HOST).toBe('0.0.0.0');
    const contractPorts: Record<string, number> = { ingest: 8080, 'control-plane': 8088 };
    const port = config[HTTP_PORT_SETTING[name]] as number;
    expect(published(service)).toEqual(name in contractPorts ? [[contractPorts[name], port]] : []);
  });
});

it('lets destinations reach no private host and runs one dispatcher for every destination by default', () => {
  expect(environmentOf(compose.services['control-plane']).DESTINATION_ALLOWED_HOSTS).toBe('');
  expect(environmentOf(compose.services.dispatcher).DESTINATION_ID).toBe('*');
});
