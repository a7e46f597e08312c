import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '@engage/logging';

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
}

const LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose logs go to our pino logger (kafkajs INFO is noisy: logged at debug). */
export function createKafka(opts: KafkaClientOptions, deps: { log: Logger }): Kafka {
  const log = deps.log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5000 },
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...fields } = entry;
        const lvl = LEVEL[level] ?? 'info';
        log[lvl === 'info' ? 'debug' : lvl](fields, message);
      },
  });
}
