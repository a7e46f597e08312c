// Every router of the control plane, in mounting order: main.ts wires them
// into the app, and openapi.test.ts builds the same list to check that the
// API reference documents each route.
import type { HttpOverrides } from '@engage/actions';
import type { ConfigStore, ConfigWriter, HistoryStore } from '@engage/config-store';
import type { Logger } from '@engage/logging';
import type { ProfileStateRepository } from '@engage/profile-store';
import type { ComputationsService } from '../computations.service';
import type { DestinationHostGuard } from '../destination-host.guard';
import type { QueryChecker } from '../domain/query-checker';
import type { AudienceExport } from '../read/audience-export';
import type { AudiencePreview } from '../read/audience-preview';
import type { IdentityGraphReader } from '../read/identity-graph.reader';
import { accessTokensRouter } from '../routes/access-tokens.routes';
import { audienceCsvRouter } from '../routes/audience-csv.routes';
import { audiencePreviewRouter } from '../routes/audience-preview.routes';
import { computationsRouter } from '../routes/computations.routes';
import { destinationsRouter } from '../routes/destinations.routes';
import { destinationTestRouter } from '../routes/destination-test.routes';
import type { EventTester } from '../event-tester';
import { historyRouter } from '../routes/history.routes';
import { identityRulesRouter } from '../routes/identity-rules.routes';
import { journeysRouter } from '../routes/journeys.routes';
import type { JourneysService } from '../journeys.service';
import { profileApiRouter } from '../routes/profiles.routes';
import { queryCheckRouter } from '../routes/query-check.routes';
import { spacesRouter, type SpacesGuard } from '../routes/spaces.routes';
import type { StatusReader } from '../status.reader';
import type { SyncTrigger } from '../sync-trigger';
import type { AppDeps } from './app';
import { consoleRouter } from './console';
import { openApiRouter } from './openapi';

export interface RouterDeps {
  store: ConfigStore;
  writer: ConfigWriter;
  spaces: SpacesGuard;
  status: StatusReader;
  /** Audience sizes and delivery counts over time (the console's charts). */
  history: HistoryStore;
  computations: ComputationsService;
  journeys: JourneysService;
  checker: QueryChecker;
  preview: AudiencePreview;
  exporter: AudienceExport;
  syncTrigger: SyncTrigger;
  hosts: DestinationHostGuard;
  /** Sends one test call to a destination (POST .../destinations/{id}/test). */
  tester: EventTester;
  graph: IdentityGraphReader;
  profiles: ProfileStateRepository;
  log: Logger;
  /** DESTINATION_HTTP_OVERRIDES: where vendors are reached when an Actions destination's audience is created. */
  httpOverrides?: HttpOverrides;
}

export function controlPlaneRouters(
  config: { token: string; profileApiRateLimit: number; consoleDir: string },
  deps: RouterDeps,
): Pick<AppDeps, 'apiRouters' | 'publicRouters'> {
  const { store, writer, spaces, status, computations } = deps;
  return {
    apiRouters: [
      spacesRouter({ store, writer, spaces }),
      queryCheckRouter({ checker: deps.checker, spaces }),
      computationsRouter('audience', { computations, status, spaces }),
      computationsRouter('computed_trait', { computations, status, spaces }),
      destinationsRouter({
        store,
        writer,
        spaces,
        status,
        syncTrigger: deps.syncTrigger,
        hosts: deps.hosts,
        httpOverrides: deps.httpOverrides,
      }),
      destinationTestRouter({ store, spaces, hosts: deps.hosts, tester: deps.tester }),
      accessTokensRouter({ store, writer, spaces }),
      audiencePreviewRouter({ store, computations, spaces, preview: deps.preview }),
      audienceCsvRouter({ computations, spaces, exporter: deps.exporter, log: deps.log.child({ component: 'csv' }) }),
      identityRulesRouter({ store, writer, spaces }),
      journeysRouter({ journeys: deps.journeys, status, spaces }),
      historyRouter({ computations, store, spaces, history: deps.history }),
    ],
    publicRouters: [
      openApiRouter(),
      consoleRouter({ dir: config.consoleDir }),
      profileApiRouter(
        { token: config.token, requestsPerSecondPerSpace: config.profileApiRateLimit },
        { store, graph: deps.graph, profiles: deps.profiles, log: deps.log.child({ component: 'profile-api' }) },
      ),
    ],
  };
}
