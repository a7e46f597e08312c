// Runs an Actions destination's action (Segment's open definitions,
// @segment/action-destinations) for events the dispatch step planned: the IO
// half of libs/delivery actions-plan.ts. One actions-core Destination per
// destination id, its requests sent through a per-destination agent so that
// DESTINATION_HTTP_OVERRIDES (CONTRACT.md section 8) can send a vendor host
// to a local emulator over plain HTTP, path, headers and body unchanged.
import type https from 'node:https';
import { Destination, type DecoratedResponse } from '@segment/actions-core';
import type { ActionMapping, DestinationConfig } from '@engage/config-store';
import type { ActionEvent, ActionOutcome } from '@engage/delivery';
import {
  getsTokenFromSettings,
  loadDefinition,
  overrideAgent,
  readVendorAnswer,
  type AgentFn,
  type AnyDefinition,
  type HttpOverrides,
} from '@engage/actions';

/**
 * An OAuth definition whose token refresh fails (a revoked refresh token, a
 * wrong client) gives a 401, whatever status the token endpoint answered:
 * the destination's credentials need fixing, so it is flagged, not retried.
 * A token endpoint over its vendor's limit (readVendorAnswer: Responsys's
 * login answering API_LIMIT_EXCEEDED with a 401) gives a 429: retried.
 */
function refusedRefreshIsCredentials(slug: string, auth: AnyDefinition['authentication']): AnyDefinition['authentication'] {
  if (!auth || !('refreshAccessToken' in auth) || typeof auth.refreshAccessToken !== 'function') return auth;
  const refresh = auth.refreshAccessToken;
  return {
    ...auth,
    refreshAccessToken: async (request, input) => {
      try {
        return await refresh(request, input);
      } catch (err) {
        const e = err as { message?: string; response?: { status?: number; content?: string } };
        const answer = e.response ? ` (HTTP ${e.response.status} ${String(e.response.content ?? '').slice(0, 200)})` : '';
        const limited = e.response?.status !== undefined && readVendorAnswer(slug, e.response.status, e.response.content)?.rateLimited;
        if (limited) throw Object.assign(new Error(`OAuth token request over the vendor's limit${answer}`), { status: 429 });
        throw Object.assign(new Error(`OAuth token refresh failed: ${e.message ?? String(err)}${answer}`), { status: 401 });
      }
    },
  };
}

/**
 * The definition's request options without an Authorization header built from
 * an access token it does not have.
 * NOTE: actions-core strips `settings.oauth` before a token refresh
 * (destination-kit getDestinationSettings), so a definition whose
 * extendRequest adds `Bearer ${auth.accessToken}` (HubSpot's) would send
 * "Bearer undefined" to the vendor's token endpoint: that header is dropped.
 */
function withoutUnsetToken<T extends { headers?: unknown }>(options: T, auth: { accessToken?: string } | undefined): T {
  if (auth?.accessToken || !options.headers || typeof options.headers !== 'object') return options;
  const headers = Object.fromEntries(
    Object.entries(options.headers as Record<string, unknown>).filter(
      ([name, value]) => !(name.toLowerCase() === 'authorization' && /\bundefined$/.test(String(value))),
    ),
  );
  return { ...options, headers };
}

/**
 * An outcome as the vendor meant its answer (readVendorAnswer): Salesforce's
 * 403 REQUEST_LIMIT_EXCEEDED is a rate limit; TikTok's HTTP 200 with an
 * error code is a refusal with the status that code stands for.
 */
function asVendorMeant(slug: string, outcome: ActionOutcome, body: unknown): ActionOutcome {
  if (outcome.status === undefined) return outcome;
  const reading = readVendorAnswer(slug, outcome.status, body);
  if (!reading) return outcome;
  const failed = outcome.ok ? { ok: false as const, message: '' } : outcome;
  return {
    ...failed,
    status: reading.status ?? outcome.status,
    ...(reading.message ? { message: reading.message } : {}),
    ...(reading.rateLimited ? { rateLimited: true } : {}),
  };
}

/**
 * actions-core's errors as an outcome: the vendor's status and message, or a
 * network error. An error of the definition's own with the status of the
 * vendor's latest answer (Facebook Custom Audiences' perform throws one with
 * Facebook's status, its code only in the message) is read with that answer.
 */
function outcomeOfError(slug: string, err: unknown, instance?: Destination): ActionOutcome {
  const e = err as {
    message?: string;
    status?: number;
    code?: string;
    type?: string;
    name?: string;
    response?: { status?: number; headers?: { get(name: string): string | null }; content?: string };
  };
  const status = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined);
  const vendor = e.response?.content ? ` ${e.response.content.slice(0, 300)}` : '';
  const network = status === undefined && (e.type === 'system' || e.name === 'FetchError' || /^E[A-Z]+$/.test(e.code ?? ''));
  const outcome = {
    ok: false as const,
    status,
    message: `${e.message ?? String(err)}${vendor}`,
    code: typeof e.code === 'string' ? e.code : undefined,
    network,
    retryAfter: e.response?.headers?.get('retry-after') ?? null,
  };
  const last = instance?.responses[instance.responses.length - 1];
  const body = e.response ? e.response.content : last && last.status === status ? last.content : undefined;
  return asVendorMeant(slug, outcome, body);
}

/**
 * The vendor's latest answer with `status` among the responses actions-core
 * kept for this call (to the request with `method`, when given: a definition
 * may send its adds and removes at once).
 */
function answerOf(instance: Destination, status: number, method?: string): DecoratedResponse | undefined {
  for (let i = instance.responses.length - 1; i >= 0; i--) {
    const response = instance.responses[i]!;
    if (response.status !== status) continue;
    if (method && response.request?.method && response.request.method.toUpperCase() !== method.toUpperCase()) continue;
    return response;
  }
  return undefined;
}

/** A per-item status carries no headers: the Retry-After of the vendor's answer with that status. */
function retryAfterOf(instance: Destination, status: number): string | null {
  return answerOf(instance, status)?.headers.get('retry-after') ?? null;
}

interface MultiStatusNode {
  status: number;
  errortype?: string;
  errormessage?: string;
  body?: unknown;
  /** What the definition sent for the item (Facebook Custom Audiences': its method, POST or DELETE). */
  sent?: { method?: unknown };
}

/**
 * What the vendor answered for a failed item: the item's body when the
 * vendor's reader knows it (TikTok's and Marketo's definitions put the answer
 * there), else the vendor's own answer with the item's status (Facebook
 * Custom Audiences' definition puts the payload there, Facebook's error code
 * only in its message).
 */
function vendorBodyOf(slug: string, instance: Destination, node: MultiStatusNode): unknown {
  if (readVendorAnswer(slug, node.status, node.body)) return node.body;
  const method = typeof node.sent?.method === 'string' ? node.sent.method : undefined;
  return answerOf(instance, node.status, method)?.content ?? node.body;
}

/** Events per batched request when a mapping names no batch_size, and at most. */
const DEFAULT_BATCH = 100;
const MAX_BATCH = 1000;

export class ActionsRuntime {
  private readonly instances = new Map<string, { slug: string; definition: AnyDefinition; agent: AgentFn }>();

  constructor(
    private readonly config: { overrides: HttpOverrides },
    private readonly deps: {
      /** Sees the vendor's answers of each run (with their requests) before they are dropped: the event tester shows them. */
      observe?: (responses: readonly DecoratedResponse[]) => void;
    } = {},
  ) {}

  /**
   * The destination's definition with its extendRequest adding our agent
   * (one agent per destination, so its kept-alive sockets are its own).
   * NOTE: each call gets its own actions-core Destination (~0.5 ms): its
   * `responses` then hold that call's answers only, which the per-item Retry-After
   * is read from, while other calls of the destination run concurrently.
   */
  private instanceFor(destination: DestinationConfig) {
    const slug = destination.slug ?? '';
    const cached = this.instances.get(destination.id);
    if (cached && cached.slug === slug) return cached;
    const definition = loadDefinition(slug);
    const agent = overrideAgent(this.config.overrides);
    const extendRequest = definition.extendRequest;
    const wrapped: AnyDefinition = {
      ...definition,
      authentication: refusedRefreshIsCredentials(slug, definition.authentication),
      // actions-core types `agent` as an Agent; node-fetch, which gets it, also takes a function of the URL.
      extendRequest: (data) => ({ ...withoutUnsetToken(extendRequest?.(data) ?? {}, data.auth), agent: agent as unknown as https.Agent }),
    };
    const entry = { slug, definition: wrapped, agent };
    this.instances.set(destination.id, entry);
    return entry;
  }

  /**
   * Events per request for `mapping`: the mapping's batch_size (Braze's
   * presets say 75, its API's limit) when its action batches and batching is
   * on, else 1. Capped at MAX_BATCH.
   */
  batchSize(destination: DestinationConfig, mapping: ActionMapping): number {
    let action;
    try {
      action = loadDefinition(destination.slug ?? '').actions[mapping.actionId];
    } catch {
      return 1;
    }
    if (typeof action?.performBatch !== 'function' || mapping.mapping.enable_batching !== true) return 1;
    const size = Number(mapping.mapping.batch_size);
    return Number.isInteger(size) && size > 0 ? Math.min(size, MAX_BATCH) : DEFAULT_BATCH;
  }

  /**
   * Runs `mapping` for `events`: one outcome per event. Actions that batch go
   * through onBatch (a status per item: one refused item does not fail the
   * others, and a 401 is not hidden in a success-looking result as onEvent
   * can hide it); the others, and mappings that turn batching off
   * (`enable_batching: false`, as Segment then calls perform: Salesforce's
   * performBatch refuses to run without it), through onEvent, one at a time.
   */
  async run(
    destination: DestinationConfig,
    mapping: ActionMapping,
    events: ActionEvent[],
    /** The definition's feature flags (a full sync's: fullSyncFeatures). */
    features?: Record<string, boolean>,
  ): Promise<ActionOutcome[]> {
    let entry;
    try {
      entry = this.instanceFor(destination);
    } catch (err) {
      return events.map(() => ({ ok: false, message: (err as Error).message }));
    }
    const instance = new Destination(entry.definition);
    const action = instance.definition.actions[mapping.actionId];
    if (!action) return events.map(() => ({ ok: false, message: `${destination.slug} has no action '${mapping.actionId}'` }));
    // A copy: actions-core writes a refreshed token into settings.oauth in place.
    const settings = {
      ...structuredClone(destination.settings),
      // A definition that gets its token from its settings starts without one: actions-core writes the one it gets here.
      ...(getsTokenFromSettings(entry.slug) ? { oauth: {} } : {}),
      ...this.keptToken(destination),
      subscription: { partnerAction: mapping.actionId, subscribe: mapping.subscribe, mapping: mapping.mapping },
    } as never;
    const options = {
      onTokenRefresh: async (tokens: { accessToken: string; refreshToken?: string }) => this.keepToken(destination, tokens),
      ...(features ? { features } : {}),
    };
    try {
      // NOTE: a definition that gets its token from its settings and has none kept (a new destination, a restart) gets
      // one first: Marketo Static Lists would otherwise send no token and read Marketo's 600 as a retriable error.
      if (getsTokenFromSettings(entry.slug) && !this.keptToken(destination).oauth) {
        // Their settings hold no oauth (the catalog refuses one): the destination's own settings are what the token request reads.
        const tokens = await instance.refreshAccessToken(structuredClone(destination.settings) as never, {} as never);
        if (!tokens?.accessToken)
          throw Object.assign(new Error(`${destination.slug}: the token request gave no access token`), { status: 401 });
        this.keepToken(destination, tokens);
        (settings as { oauth: Record<string, unknown> }).oauth = { access_token: tokens.accessToken };
      }
      if (typeof action.performBatch === 'function' && mapping.mapping.enable_batching !== false) {
        const results = await instance.onBatch(events as never, settings, options);
        const statuses = (results[0]?.multistatus ?? []) as MultiStatusNode[];
        return events.map((_, i) => {
          const node = statuses[i];
          if (!node) return { ok: false, message: 'the action returned no status for this event' };
          if (node.status >= 200 && node.status < 300) return asVendorMeant(entry.slug, { ok: true, status: node.status }, node.body);
          const body =
            node.body === undefined ? '' : ` ${(typeof node.body === 'string' ? node.body : JSON.stringify(node.body)).slice(0, 300)}`;
          const outcome = {
            ok: false as const,
            status: node.status,
            code: node.errortype,
            message: `${node.errormessage ?? ''}${body}`.trim(),
            retryAfter: retryAfterOf(instance, node.status),
          };
          const meant = asVendorMeant(entry.slug, outcome, vendorBodyOf(entry.slug, instance, node));
          // A limit the vendor answered in its body (Marketo's 606 in a 200): the Retry-After of an HTTP 429, if one came.
          return !meant.ok && meant.rateLimited && !meant.retryAfter ? { ...meant, retryAfter: retryAfterOf(instance, 429) } : meant;
        });
      }
      const out: ActionOutcome[] = [];
      for (const event of events) {
        try {
          await instance.onEvent(event as never, settings, options);
          // The vendor's last answer for this event, for vendors that answer errors with a 2xx.
          const last = instance.responses[instance.responses.length - 1];
          const meant = last && asVendorMeant(entry.slug, { ok: true, status: last.status }, last.content);
          out.push(meant && !meant.ok ? meant : { ok: true });
        } catch (err) {
          out.push(outcomeOfError(entry.slug, err, instance));
        }
      }
      return out;
    } catch (err) {
      const outcome = outcomeOfError(entry.slug, err);
      return events.map(() => outcome);
    } finally {
      this.deps.observe?.(instance.responses);
      // NOTE: actions-core keeps every response, with the request's Authorization header, in `responses`.
      instance.responses.length = 0;
    }
  }

  /**
   * OAuth tokens refreshed through the definition, per destination, kept for
   * its later calls while its stored access token is still the one they replaced.
   * NOTE: kept in this process only: after a restart the stored (expired)
   * token is refreshed once again. Writing it back to engage.config is the
   * control plane's to do (issue 19 follow-up).
   */
  private readonly refreshed = new Map<string, { replaced: unknown; oauth: Record<string, unknown> }>();

  private keptToken(destination: DestinationConfig): { oauth?: Record<string, unknown> } {
    const kept = this.refreshed.get(destination.id);
    const stored = destination.settings.oauth as Record<string, unknown> | undefined;
    // NOTE: a definition that gets its token from its settings has no stored one (undefined, as the token it replaced).
    if (!kept || stored?.access_token !== kept.replaced) return {};
    return { oauth: { ...stored, ...kept.oauth } };
  }

  private keepToken(destination: DestinationConfig, tokens: { accessToken: string; refreshToken?: string }): void {
    const stored = destination.settings.oauth as Record<string, unknown> | undefined;
    this.refreshed.set(destination.id, {
      replaced: stored?.access_token,
      oauth: { access_token: tokens.accessToken, ...(tokens.refreshToken ? { refresh_token: tokens.refreshToken } : {}) },
    });
  }

  /** Ends the kept-alive sockets to overridden hosts (shutdown). */
  close(): void {
    for (const { agent } of this.instances.values()) agent.close();
    this.instances.clear();
  }
}
