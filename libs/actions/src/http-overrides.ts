// DESTINATION_HTTP_OVERRIDES (CONTRACT.md section 8): a vendor host sent to a
// local host:port over plain HTTP, path, headers and body unchanged, for
// tests and staging. Read by the dispatcher (ActionsRuntime) and the control
// plane (an audience created when a connection is made, the event tester),
// both through httpOverridesSetting in their config schema.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { z } from '@engage/config';

/** Vendor host -> `host:port` reached over plain HTTP instead (tests, staging). */
export type HttpOverrides = Record<string, string>;

/** Reads DESTINATION_HTTP_OVERRIDES: a JSON object of host -> host:port; throws naming what is wrong. */
export function parseHttpOverrides(text: string | undefined): HttpOverrides {
  if (!text) return {};
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error('DESTINATION_HTTP_OVERRIDES must be a JSON object of vendor host -> host:port');
  for (const [host, target] of Object.entries(parsed)) {
    if (typeof target !== 'string' || !/^[^:\s]+:\d{1,5}$/.test(target))
      throw new Error(`DESTINATION_HTTP_OVERRIDES: ${host} must map to "host:port", got ${JSON.stringify(target)}`);
  }
  return parsed as HttpOverrides;
}

/**
 * The DESTINATION_HTTP_OVERRIDES config key, for every service that sends to
 * destinations: a JSON object of vendor host -> `host:port`, e.g.
 * {"rest.iad-01.braze.com":"127.0.0.1:18555"}; tests and staging only, unset
 * (none) in production. A bad value is a config issue naming what is wrong.
 */
export const httpOverridesSetting = z
  .string()
  .optional()
  .transform((text, ctx): HttpOverrides => {
    try {
      return parseHttpOverrides(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

export type AgentFn = ((url: URL) => http.Agent | undefined) & { destroy(): void; close(): void };

/**
 * Requests to an overridden host go to its target over a plain TCP socket,
 * whichever the URL's scheme (the Host header stays the vendor's).
 * NOTE: actions-core's request client is node-fetch on node:http/https, so an
 * agent (a function of the URL, which node-fetch accepts) reaches it without
 * any global patch; actions-core calls `agent.destroy()` after every response
 * (prepare-response.js), so that one is a no-op and close() ends the sockets.
 */
export function overrideAgent(overrides: HttpOverrides): AgentFn {
  const connect = (target: string) => () => {
    const at = target.lastIndexOf(':');
    return net.connect({ host: target.slice(0, at), port: Number(target.slice(at + 1)) });
  };
  const agents = new Map<string, http.Agent>();
  const agentFor = (url: URL): http.Agent | undefined => {
    const target = overrides[url.host] ?? overrides[url.hostname];
    if (!target) return undefined;
    const key = `${url.protocol}${target}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
      (agent as unknown as { createConnection: () => net.Socket }).createConnection = connect(target);
      agents.set(key, agent);
    }
    return agent;
  };
  return Object.assign(agentFor, {
    destroy: () => undefined,
    close: () => agents.forEach((a) => a.destroy()),
  });
}
