// Every service starts against the real infrastructure, reports ready, and
// stops cleanly (exit 0, every component stopped) on SIGTERM.
import { testInfrastructure, uniqueName, waitFor } from '@engage/testing';
import { startService } from '@engage/testing';

const SERVICES = ['ingest', 'identity-resolver', 'realtime-evaluator', 'batch-scheduler', 'dispatcher', 'control-plane'];

it('starts all six services, each ready on /readyz and live on /healthz, and stops them on SIGTERM', async () => {
  const infra = testInfrastructure();
  const env = {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: `${uniqueName('life')}.`,
    REDIS_KEY_PREFIX: `${uniqueName('life')}:`,
    // Port 0: each service gets a free port and logs it.
    INGEST_PORT: '0',
    CONTROL_PLANE_PORT: '0',
    OPS_PORT: '0',
    DESTINATION_ID: 'dst_lifecycle',
    CONTROL_PLANE_TOKEN: 'test-token',
  };
  const procs = SERVICES.map((name) => startService(name, env));
  try {
    for (const p of procs) {
      const port = await p.port();
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
        timeoutMs: 60000,
        description: `${p.name} ready`,
      });
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect({ service: p.name, status: health.status }).toEqual({ service: p.name, status: 200 });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`process_cpu_seconds_total{service="${p.name}"}`);
    }
    const codes = await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    expect(codes).toEqual(SERVICES.map(() => 0));
    for (const p of procs) {
      const stopped = p.logs.filter((l) => l.msg === 'component_stopped').map((l) => l.component);
      // Reverse of the start order: HTTP first, Redis last.
      expect({ service: p.name, first: stopped[0], last: stopped[stopped.length - 1] }).toEqual({
        service: p.name,
        first: expect.stringMatching(/http/),
        last: 'redis',
      });
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  }
}, 300_000);
