// Configuration API (engage.config), Profile API and CSV export.
// The only place that reads process.env: parse config, wire, run.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseConfig } from '@engage/config';
import { ConfigStore, ConfigWriter, HistoryStore } from '@engage/config-store';
import { createRuntime } from '@engage/service';
import { ComputationsService } from './computations.service';
import { configSchema } from './config';
import { JourneysService } from './journeys.service';
import { EngineQueryChecker } from './engine-query-checker';
import { createApp } from './http/app';
import { controlPlaneRouters } from './http/routers';
import { DestinationHostGuard, systemLookup } from './destination-host.guard';
import { EventTester } from './event-tester';
import { SpacesGuard } from './routes/spaces.routes';
import { StatusReader } from './status.reader';
import { SyncTrigger } from './sync-trigger';
import { ProfileStateRepository } from '@engage/profile-store';
import { AudienceExport } from './read/audience-export';
import { AudiencePreview } from './read/audience-preview';
import { IdentityGraphReader } from './read/identity-graph.reader';

const config = parseConfig(configSchema, process.env);
const runtime = createRuntime('control-plane', config);
const { kafka, codec, producer, redis, log } = runtime;

const store = new ConfigStore(
  { topic: runtime.topics.config.name, groupPrefix: 'control-plane', destinationSecrets: 'keep' },
  { kafka, codec, log: log.child({ component: 'config-store' }) },
);
const writer = new ConfigWriter({ topic: runtime.topics.config.name }, { producer, codec, store });
const spaces = new SpacesGuard(store);
const status = new StatusReader({ redisKeyPrefix: config.REDIS_KEY_PREFIX }, { redis });
const history = new HistoryStore({ keyPrefix: config.REDIS_KEY_PREFIX }, { redis });
const checker = new EngineQueryChecker();
const computations = new ComputationsService({ store, writer, checker });
const journeys = new JourneysService({ store, writer, computations });
const profiles = new ProfileStateRepository({ keyPrefix: config.REDIS_KEY_PREFIX }, { redis });
const graph = new IdentityGraphReader({ keyPrefix: config.REDIS_KEY_PREFIX }, { redis });
const preview = new AudiencePreview({ pageSize: 500, sampleSize: 10 }, { profiles });
const exporter = new AudienceExport(
  { snapshotTtlSeconds: config.CSV_SNAPSHOT_TTL_SECONDS, pageSize: config.CSV_PAGE_SIZE, spoolDir: config.CSV_SPOOL_DIR },
  { profiles, graph },
);

const app = createApp(
  { token: config.CONTROL_PLANE_TOKEN, maxBodyBytes: config.CONTROL_PLANE_MAX_BODY_BYTES },
  {
    log: log.child({ component: 'http' }),
    ops: runtime.ops,
    ...controlPlaneRouters(
      {
        token: config.CONTROL_PLANE_TOKEN,
        profileApiRateLimit: config.PROFILE_API_RATE_LIMIT,
        // The workspace's build output (console/dist) when run from the repository.
        consoleDir: config.CONSOLE_DIR ?? path.resolve(__dirname, '../../../console/dist'),
      },
      {
        store,
        writer,
        spaces,
        status,
        history,
        computations,
        journeys,
        checker,
        preview,
        exporter,
        graph,
        profiles,
        syncTrigger: new SyncTrigger({ redisKeyPrefix: config.REDIS_KEY_PREFIX }, { redis }),
        httpOverrides: config.DESTINATION_HTTP_OVERRIDES,
        tester: new EventTester(
          {
            keyPrefix: config.REDIS_KEY_PREFIX,
            rateMarginMs: config.DISPATCH_RATE_MARGIN_MS,
            timeoutMs: config.DESTINATION_TEST_TIMEOUT_MS,
            overrides: config.DESTINATION_HTTP_OVERRIDES,
          },
          { redis },
        ),
        hosts: new DestinationHostGuard(
          { allowList: config.DESTINATION_ALLOWED_HOSTS, lookupTimeoutMs: config.DESTINATION_LOOKUP_TIMEOUT_MS },
          { lookup: systemLookup, log: log.child({ component: 'destination-hosts' }) },
        ),
        log,
      },
    ),
  },
);
const server = http.createServer(app);
// TRICKY: with Node's default 5 s keep-alive, a client whose event loop was
// busy past its own idle timer (e.g. while checking a large CSV) reuses a
// socket the server is closing at that instant: "other side closed". A long
// server-side idle timeout leaves clients the first move, as load balancers do.
// https://nodejs.org/api/http.html#serverkeepalivetimeout
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

runtime.service.add(
  ...runtime.infrastructure,
  { name: 'config-store', start: () => store.start(), stop: () => store.stop() },
  {
    name: 'api-http',
    start: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.CONTROL_PLANE_PORT, config.HTTP_HOST, () => {
          log.info({ port: (server.address() as AddressInfo).port }, 'http_listening');
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  },
);
void runtime.service.run();
