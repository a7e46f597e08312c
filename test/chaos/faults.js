// The faults, each a function of the round's context that resolves when the
// fault is over (the broken part answers again). Random moments come from
// the caller's seeded PRNG so that a run can be repeated.
'use strict';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL `service` `times` times at random moments (`minGapMs`..`maxGapMs` apart), restarting it each time. */
const killService = (service, { times = 3, minGapMs = 4_000, maxGapMs = 15_000, random = Math.random } = {}) =>
  async function kill({ fleet, log }) {
    for (let k = 0; k < times; k++) {
      await sleep(minGapMs + Math.floor(random() * (maxGapMs - minGapMs)));
      const t = Date.now();
      await fleet.procs[service].killAndRestart();
      log(`  SIGKILL ${service} #${k + 1}; listening again after ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
  };

/** Several services killed in one round, each once, at random overlapping moments. */
const killEach = (services, { withinMs = 20_000, random = Math.random } = {}) =>
  async function killAll({ fleet, log }) {
    await Promise.all(
      services.map(async (service) => {
        await sleep(Math.floor(random() * withinMs));
        await fleet.procs[service].killAndRestart();
        log(`  SIGKILL ${service}; restarted`);
      }),
    );
  };

/** SIGSTOP a component of the run's own infrastructure for `ms`, then SIGCONT. */
const pause = (component, ms) =>
  async function paused({ infra, log }) {
    infra[component].signal('SIGSTOP');
    log(`  ${component} stopped (SIGSTOP) for ${ms / 1000} s`);
    await sleep(ms);
    infra[component].signal('SIGCONT');
  };

/** Redis killed (SIGKILL: only what the AOF fsynced survives) and restarted on its port and dir. */
const redisRestart = ({ downMs = 5_000 } = {}) =>
  async function restart({ infra, log }) {
    await infra.redis.kill();
    log('  redis killed (SIGKILL)');
    await sleep(downMs);
    await infra.redis.start(30_000);
    log('  redis restarted (AOF)');
  };

/** The destination refuses connections for `refuseMs`, then answers 429 with Retry-After for `throttleMs`, then 200. */
const destinationOutage = ({ refuseMs = 60_000, throttleMs = 20_000, retryAfterSeconds = 2 } = {}) =>
  async function outage({ receiver, log }) {
    await receiver.refuse();
    log(`  receiver closed (connections refused) for ${refuseMs / 1000} s`);
    await sleep(refuseMs);
    await receiver.answer('429', retryAfterSeconds);
    log(`  receiver answers 429 (Retry-After: ${retryAfterSeconds}) for ${throttleMs / 1000} s`);
    await sleep(throttleMs);
    await receiver.answer('ok');
    log(`  receiver answers 200 again (${receiver.rejected} calls got 429)`);
  };

module.exports = { killService, killEach, pause, redisRestart, destinationOutage };
