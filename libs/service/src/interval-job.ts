import type { Logger } from '@engage/logging';
import type { Component } from './lifecycle';

/**
 * A job run every `everyMs` (the next run is scheduled when one finishes, so
 * runs never overlap). A failing run is logged and tried again next time;
 * the component reports itself wedged when no run succeeded for 20 periods
 * (at least 2 minutes). stop() waits for the run in flight.
 */
export function intervalJob(name: string, everyMs: number, job: () => Promise<unknown>, deps: { log: Logger }): Component {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> = Promise.resolve();
  let lastOkAt = Date.now();
  const schedule = () => {
    timer = setTimeout(() => {
      running = job()
        .then(() => (lastOkAt = Date.now()))
        .catch((err) => deps.log.error({ err, job: name }, 'job_failed'))
        .finally(() => timer && schedule());
    }, everyMs);
  };
  return {
    name,
    start: async () => schedule(),
    stop: async () => {
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
    healthcheck: () =>
      Date.now() - lastOkAt < Math.max(everyMs * 20, 120_000) ? { ok: true } : { ok: false, detail: 'no successful run' },
  };
}
