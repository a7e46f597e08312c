// The lifecycle every service follows: components start in the order given and
// stop in reverse, so listing them as [redis, producer, consumers, http]
// gives STYLE.md's shutdown order: stop HTTP, stop consumers (finish and commit
// in-flight work), flush producers, close Redis.
import type { Logger } from '@engage/logging';

export interface Component {
  name: string;
  start(): Promise<unknown>;
  /** Idempotent. */
  stop(): Promise<void>;
  /** Liveness of this component: false only when it is wedged. */
  healthcheck?(): { ok: boolean; detail?: string };
}

export class Service {
  private readonly components: Component[] = [];
  private started: Component[] = [];
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly config: { name: string; stopTimeoutMs?: number },
    private readonly deps: { log: Logger; exit?: (code: number) => void },
  ) {}

  add(...components: Component[]): this {
    this.components.push(...components);
    return this;
  }

  async start(): Promise<void> {
    for (const c of this.components) {
      this.deps.log.info({ component: c.name }, 'component_starting');
      await c.start();
      this.started.push(c);
    }
    this.deps.log.info({ service: this.config.name }, 'service_started');
  }

  /** Idempotent; stops what started, in reverse order, each with a deadline. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of [...this.started].reverse()) {
        try {
          await withTimeout(c.stop(), this.config.stopTimeoutMs ?? 15000, `${c.name} did not stop`);
          this.deps.log.info({ component: c.name }, 'component_stopped');
        } catch (err) {
          this.deps.log.error({ component: c.name, err }, 'component_stop_failed');
        }
      }
      this.started = [];
    })();
    return this.stopping;
  }

  healthcheck(): { ok: boolean; detail?: string } {
    for (const c of this.started) {
      const h = c.healthcheck?.();
      if (h && !h.ok) return { ok: false, detail: `${c.name}: ${h.detail ?? 'unhealthy'}` };
    }
    return { ok: true };
  }

  /**
   * Starts the service and stops it on SIGTERM/SIGINT (exit 0) or on an
   * uncaught error (exit 1). The only place a service calls process.exit.
   */
  async run(): Promise<void> {
    const exit = this.deps.exit ?? ((code: number) => process.exit(code));
    const shutdown = (code: number, why: string, err?: unknown) => {
      if (err) this.deps.log.fatal({ err }, why);
      else this.deps.log.info({ signal: why }, 'shutting_down');
      // The logger writes asynchronously: flush it so the shutdown lines are not
      // lost to process.exit.
      void this.stop().then(() => this.deps.log.flush(() => exit(code)));
    };
    process.once('SIGTERM', () => shutdown(0, 'SIGTERM'));
    process.once('SIGINT', () => shutdown(0, 'SIGINT'));
    process.on('uncaughtException', (err) => shutdown(1, 'uncaught_exception', err));
    process.on('unhandledRejection', (err) => shutdown(1, 'unhandled_rejection', err));
    try {
      await this.start();
    } catch (err) {
      shutdown(1, 'start_failed', err);
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
