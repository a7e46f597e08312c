// JSON logs on stdout (CONTRACT.md section 0). Components take a child logger:
// `log.child({ component: 'events-consumer' })`, stable message keys with fields.
import pino from 'pino';
import { REDACT_PATHS, REDACTED } from './redaction';

export { REDACT_PATHS, REDACTED, SECRET_SETTING_NAMES } from './redaction';

export type Logger = pino.Logger;

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where to write; stdout when absent. Tests pass a stream to capture lines. */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: opts.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    // NOTE: synchronous writes (pino's default). With sync: false, lines were
    // seen on stdout out of the order they were logged in (a shutdown's
    // component_stopped lines, test/services-lifecycle.test.ts) and the last
    // ones can be lost to process.exit; the services log little per message.
    opts.destination ?? pino.destination({ sync: true }),
  );
}

/** A logger that drops everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
