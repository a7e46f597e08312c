// deploy/k8s checked without a cluster: the base and each overlay rendered
// (helpers/kustomize.ts applies the patches as kustomize does), then every
// object's structure, and every setting against the config schema of the
// service that reads it, so manifests and services cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configuredTopics } from '@engage/service';
import { readYamlDocuments, renderKustomization, type K8sObject } from './helpers/kustomize';
import {
  envNamesOf,
  HTTP_PORT_SETTING,
  parseServiceConfig,
  REPO,
  SERVICE_SCHEMAS,
  SERVICES,
  serviceOfCommand,
} from './helpers/service-configs';

const K8S = path.join(REPO, 'deploy/k8s');
const RENDERINGS = ['base', 'overlays/small', 'overlays/large'];

/** The keys of the engage-secrets Secret the operator creates (deploy/README.md), with values of the right shape. */
const SECRET_SAMPLES: Record<string, string> = {
  REDIS_URL: 'redis-cluster://redis-0.redis:6379,redis-1.redis:6379,redis-2.redis:6379',
  CONTROL_PLANE_TOKEN: 'a-token-of-thirty-two-characters',
};

/** How long one component of a service may take to stop (libs/service lifecycle.ts), read from the source so a change is seen. */
const COMPONENT_STOP_TIMEOUT_MS = (() => {
  const match = /stopTimeoutMs \?\? (\d+)/.exec(readFileSync(path.join(REPO, 'libs/service/src/lifecycle.ts'), 'utf8'));
  if (!match) throw new Error('libs/service lifecycle.ts no longer says its default stop timeout as `stopTimeoutMs ?? <ms>`');
  return Number(match[1]);
})();

/** The consumer groups each service consumes in, as its main.ts names them (checked against the source below). */
const CONSUMER_GROUPS: Record<string, (config: Record<string, unknown>) => Array<{ group: string; topic: string; source: string }>> = {
  'identity-resolver': (c) => [
    { group: `${c.TOPIC_PREFIX}identity-resolver`, topic: 'eventsRaw', source: '`${config.TOPIC_PREFIX}identity-resolver`' },
  ],
  'realtime-evaluator': (c) => [
    { group: `${c.TOPIC_PREFIX}realtime-evaluator`, topic: 'eventsResolved', source: '`${config.TOPIC_PREFIX}realtime-evaluator`' },
    {
      group: `${c.TOPIC_PREFIX}realtime-evaluator-identity`,
      topic: 'identityChanges',
      source: '`${config.TOPIC_PREFIX}realtime-evaluator-identity`',
    },
  ],
  dispatcher: (c) => [
    {
      group: `${c.TOPIC_PREFIX}dispatcher-${c.DESTINATION_ID}`,
      topic: 'computationsChanges',
      source: '`${topicPrefix}dispatcher-${destinationId}`',
    },
  ],
};

interface Container {
  name: string;
  image: string;
  command: string[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: { terminationGracePeriodSeconds?: number; containers: Container[] } };
  };
}
interface Workload {
  deployment: Deployment;
  container: Container;
  service: string;
  /** The container's environment as the pod gets it (ConfigMaps, then env; secrets as samples). */
  env: Record<string, string>;
  config: Record<string, unknown>;
  /** Why the service would refuse this environment at start (a required setting missing, a bad value), if it would. */
  configError: string | null;
}

function workloadsOf(objects: K8sObject[]): Workload[] {
  const configMaps = new Map(
    objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, (o.data ?? {}) as Record<string, string>]),
  );
  return (objects.filter((o) => o.kind === 'Deployment') as Deployment[]).map((deployment) => {
    const containers = deployment.spec.template.spec.containers;
    expect([deployment.metadata.name, containers.length]).toEqual([deployment.metadata.name, 1]);
    const container = containers[0];
    const service = serviceOfCommand(container.command);
    const env: Record<string, string> = {};
    for (const source of container.envFrom ?? []) {
      const name = source.configMapRef?.name;
      if (!name || !configMaps.has(name))
        throw new Error(`${deployment.metadata.name}: envFrom ${JSON.stringify(source)} is not a ConfigMap defined here`);
      Object.assign(env, configMaps.get(name));
    }
    for (const variable of container.env ?? []) {
      const secret = variable.valueFrom?.secretKeyRef;
      if (variable.value !== undefined) env[variable.name] = variable.value;
      else if (secret && secret.name === 'engage-secrets' && secret.key === variable.name && variable.name in SECRET_SAMPLES)
        env[variable.name] = SECRET_SAMPLES[variable.name];
      else throw new Error(`${deployment.metadata.name}: ${variable.name} is neither a value nor engage-secrets' key of the same name`);
    }
    try {
      return { deployment, container, service, env, config: parseServiceConfig(service, env), configError: null };
    } catch (err) {
      // Reported by its own test, naming the Deployment and the settings.
      return { deployment, container, service, env, config: {}, configError: (err as Error).message };
    }
  });
}

describe.each(RENDERINGS)('deploy/k8s/%s', (rendering) => {
  const objects = renderKustomization(path.join(K8S, rendering));
  const ofKind = <T extends K8sObject>(kind: string) => objects.filter((o) => o.kind === kind) as T[];
  const workloads = workloadsOf(objects);

  it('holds only objects with apiVersion, kind and a DNS-1123 name, labelled part of engage where they run pods', () => {
    const KNOWN = [
      'v1/ConfigMap',
      'v1/Service',
      'apps/v1/Deployment',
      'policy/v1/PodDisruptionBudget',
      'autoscaling/v2/HorizontalPodAutoscaler',
      'keda.sh/v1alpha1/ScaledObject',
    ];
    for (const o of objects) {
      expect(KNOWN).toContain(`${o.apiVersion}/${o.kind}`);
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    for (const { deployment } of workloads) {
      expect(deployment.spec.template.metadata.labels).toMatchObject({
        ...deployment.spec.selector.matchLabels,
        'app.kubernetes.io/part-of': 'engage',
      });
    }
  });

  it('runs every service, with the settings its config schema reads and nothing else', () => {
    expect([...new Set(workloads.map((w) => w.service))].sort()).toEqual(SERVICES);
    expect(Object.keys(SERVICE_SCHEMAS).sort()).toEqual(SERVICES);
    for (const { deployment, service, env } of workloads) {
      const unread = Object.keys(env).filter((name) => !envNamesOf(SERVICE_SCHEMAS[service]).has(name));
      expect([deployment.metadata.name, unread]).toEqual([deployment.metadata.name, []]);
    }
    // Every ConfigMap is given to some service (a forgotten one would be settings nobody reads).
    const used = new Set(workloads.flatMap((w) => (w.container.envFrom ?? []).map((s) => s.configMapRef?.name)));
    expect(
      ofKind('ConfigMap')
        .map((c) => c.metadata.name)
        .filter((n) => !used.has(n)),
    ).toEqual([]);
  });

  it('provides every setting each service requires, with values its schema accepts', () => {
    expect(workloads.filter((w) => w.configError).map((w) => `${w.deployment.metadata.name}: ${w.configError}`)).toEqual([]);
  });

  it('gives every container its port, probes on the ops endpoints, resources and a pinned image', () => {
    for (const { deployment, container, service, config } of workloads) {
      const port = config[HTTP_PORT_SETTING[service]];
      expect([deployment.metadata.name, container.ports?.map((p) => p.containerPort)]).toEqual([deployment.metadata.name, [port]]);
      const portName = container.ports![0].name;
      expect([container.livenessProbe?.httpGet, container.readinessProbe?.httpGet, container.startupProbe?.httpGet]).toEqual([
        { path: '/healthz', port: portName },
        { path: '/readyz', port: portName },
        { path: '/healthz', port: portName },
      ]);
      expect(container.resources?.requests).toEqual({ cpu: expect.stringMatching(/^\d+m$/), memory: expect.stringMatching(/^\d+[MG]i$/) });
      expect(container.resources?.limits).toEqual({ memory: expect.stringMatching(/^\d+[MG]i$/) });
      expect(container.image).toBe('engage:latest');
      expect(deployment.spec.template.metadata).toMatchObject({
        annotations: { 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' },
      });
    }
  });

  it('gives a stopping pod longer than the service takes to stop', () => {
    for (const { deployment, container, config } of workloads) {
      const preStop = container.lifecycle?.preStop?.exec?.command;
      const preStopMs = preStop ? (expect(preStop.slice(0, 1)).toEqual(['sleep']), Number(preStop[1]) * 1000) : 0;
      // Requests in flight, then the slowest component (consumers finishing their chunk), one after the other.
      const neededMs = preStopMs + Number(config.INGEST_SHUTDOWN_GRACE_MS ?? 0) + COMPONENT_STOP_TIMEOUT_MS;
      const graceMs = (deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
      expect([deployment.metadata.name, graceMs > neededMs]).toEqual([deployment.metadata.name, true]);
    }
  });

  it('has one PodDisruptionBudget per Deployment, selecting its pods, letting one go at a time', () => {
    const budgets = ofKind<K8sObject & { spec: { maxUnavailable?: number; selector: { matchLabels: Record<string, string> } } }>(
      'PodDisruptionBudget',
    );
    for (const { deployment } of workloads) {
      const matching = budgets.filter((b) =>
        Object.entries(b.spec.selector.matchLabels).every(([k, v]) => deployment.spec.template.metadata.labels[k] === v),
      );
      expect([deployment.metadata.name, matching.map((b) => b.spec.maxUnavailable)]).toEqual([deployment.metadata.name, [1]]);
    }
    expect(budgets.length).toBe(workloads.length);
  });

  it('scales ingest, the control plane and the * dispatcher on CPU, the consumers on their groups lag, within the partitions', () => {
    const hpas = ofKind<
      K8sObject & { spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number; metrics: unknown[] } }
    >('HorizontalPodAutoscaler');
    const scaledObjects = ofKind<
      K8sObject & {
        spec: {
          scaleTargetRef: { name: string };
          minReplicaCount: number;
          maxReplicaCount: number;
          triggers: Array<{ type: string; metadata: Record<string, string> }>;
        };
      }
    >('ScaledObject');
    const scaler = (name: string) => [
      ...hpas.filter((h) => h.spec.scaleTargetRef.name === name).map(() => 'cpu'),
      ...scaledObjects.filter((s) => s.spec.scaleTargetRef.name === name).map(() => 'lag'),
    ];

    for (const { deployment, service, config } of workloads) {
      const name = deployment.metadata.name;
      const expected =
        service === 'ingest' || service === 'control-plane' || (service === 'dispatcher' && config.DESTINATION_ID === '*')
          ? ['cpu']
          : service === 'batch-scheduler'
            ? []
            : ['lag'];
      expect([name, scaler(name)]).toEqual([name, expected]);
      // An autoscaled Deployment leaves the count to its autoscaler (a fixed one would reset it on every apply).
      expect([name, deployment.spec.replicas === undefined]).toEqual([name, expected.length > 0]);
    }
    for (const hpa of hpas) {
      expect(hpa.spec.scaleTargetRef.kind).toBe('Deployment');
      expect(hpa.spec.metrics).toEqual([
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: expect.any(Number) } } },
      ]);
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    }
    for (const scaled of scaledObjects) {
      const workload = workloads.find((w) => w.deployment.metadata.name === scaled.spec.scaleTargetRef.name)!;
      const topics = configuredTopics(workload.config as never);
      const groups = CONSUMER_GROUPS[workload.service](workload.config);
      // Exactly the groups the service consumes in, on the topics of the registry as configured.
      expect(scaled.spec.triggers.map((t) => [t.type, t.metadata.consumerGroup, t.metadata.topic, t.metadata.bootstrapServers])).toEqual(
        groups.map((g) => ['kafka', g.group, topics[g.topic as keyof typeof topics].name, workload.env.KAFKA_BROKERS]),
      );
      for (const trigger of scaled.spec.triggers)
        expect(trigger.metadata).toMatchObject({ lagThreshold: expect.stringMatching(/^\d+$/), allowIdleConsumers: 'false' });
      // Members past the partition count sit idle: the ceiling is the smallest topic it consumes.
      const partitions = Math.min(...groups.map((g) => topics[g.topic as keyof typeof topics].partitions));
      expect([scaled.metadata.name, scaled.spec.minReplicaCount >= 1, scaled.spec.maxReplicaCount <= partitions]).toEqual([
        scaled.metadata.name,
        true,
        true,
      ]);
    }
  });

  it('runs one * dispatcher and at most one dispatcher per destination', () => {
    const destinations = workloads.filter((w) => w.service === 'dispatcher').map((w) => w.config.DESTINATION_ID);
    expect(destinations.filter((d) => d === '*')).toEqual(['*']);
    expect(new Set(destinations).size).toBe(destinations.length);
  });

  it('exposes the HTTP services through a Service on their named port', () => {
    const services = ofKind<K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> } }>('Service');
    expect(services.map((s) => s.metadata.name).sort()).toEqual(['engage-control-plane', 'engage-ingest']);
    for (const s of services) {
      const workload = workloads.find((w) =>
        Object.entries(s.spec.selector).every(([k, v]) => w.deployment.spec.template.metadata.labels[k] === v),
      )!;
      expect(s.spec.ports.map((p) => p.targetPort)).toEqual(workload.container.ports!.map((p) => p.name));
    }
  });

  it('allows destinations no private host by default (CONTRACT.md section 7)', () => {
    const controlPlane = workloads.find((w) => w.service === 'control-plane')!;
    expect(controlPlane.env.DESTINATION_ALLOWED_HOSTS ?? '').toBe('');
  });
});

it('watches the consumer groups the services name in their source', () => {
  const sources: Record<string, string> = {
    'identity-resolver': 'services/identity-resolver/src/main.ts',
    'realtime-evaluator': 'services/realtime-evaluator/src/main.ts',
    dispatcher: 'services/dispatcher/src/destination-pipeline.ts',
  };
  for (const [service, file] of Object.entries(sources)) {
    const text = readFileSync(path.join(REPO, file), 'utf8');
    for (const { source } of CONSUMER_GROUPS[service]({ TOPIC_PREFIX: '', DESTINATION_ID: 'x' }))
      expect([file, text.includes(source)]).toEqual([file, true]);
  }
});

it('names the Secret keys and the external dependencies in deploy/README.md', () => {
  const readme = readFileSync(path.join(REPO, 'deploy/README.md'), 'utf8');
  for (const key of Object.keys(SECRET_SAMPLES)) expect(readme).toContain(`--from-literal=${key}=`);
  for (const dependency of ['Strimzi', 'Apicurio', 'Redis Cluster', 'KEDA']) expect(readme).toContain(dependency);
});

it('points KAFKA_BROKERS at the example Strimzi Kafka, which has the brokers and durability the topics ask for', () => {
  const [pool, cluster] = readYamlDocuments(path.join(K8S, 'dependencies/strimzi-kafka.yaml')) as Array<
    K8sObject & { metadata: { namespace: string }; spec: any }
  >;
  expect([pool.kind, cluster.kind, pool.metadata.labels?.['strimzi.io/cluster']]).toEqual([
    'KafkaNodePool',
    'Kafka',
    cluster.metadata.name,
  ]);
  const plain = cluster.spec.kafka.listeners.find((l: { tls: boolean }) => !l.tls);
  const bootstrap = `${cluster.metadata.name}-kafka-bootstrap.${cluster.metadata.namespace}.svc:${plain.port}`;
  expect(cluster.spec.kafka.config).toMatchObject({
    'auto.create.topics.enable': false,
    'default.replication.factor': 3,
    'min.insync.replicas': 2,
  });
  expect(pool.spec.roles).toContain('broker');
  for (const rendering of RENDERINGS) {
    for (const { deployment, config } of workloadsOf(renderKustomization(path.join(K8S, rendering)))) {
      expect([rendering, deployment.metadata.name, config.KAFKA_BROKERS]).toEqual([rendering, deployment.metadata.name, [bootstrap]]);
      // More copies than brokers and the topics could not be created.
      expect(config.TOPIC_REPLICATION_FACTOR).toBeLessThanOrEqual(pool.spec.replicas);
    }
  }
});
