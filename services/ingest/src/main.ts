// Segment HTTP tracking API -> engage.events.raw
// The only place that reads process.env: parse config, wire, run.
import { parseConfig } from '@engage/config';
import { createRuntime, opsComponent } from '@engage/service';
import { configSchema } from './config';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('ingest', config);
runtime.service.add(...runtime.infrastructure, opsComponent(runtime, { port: config.INGEST_PORT, host: config.HTTP_HOST }));
void runtime.service.run();
