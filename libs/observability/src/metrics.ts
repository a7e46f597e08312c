import { collectDefaultMetrics, Registry } from 'prom-client';

/** One Registry per service (never prom-client's global one), with process metrics. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // NOTE: the event loop lag is sampled every 100 ms (prom-client's default, 10 ms,
  // is a timer waking every process 100 times a second, busy or idle; each sample
  // still measures the lag to the nanosecond).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return registry;
}
