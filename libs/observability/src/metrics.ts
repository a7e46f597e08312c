import { collectDefaultMetrics, Registry } from 'prom-client';

/** One Registry per service (never prom-client's global one), with process metrics. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
