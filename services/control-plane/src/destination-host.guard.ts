// Refuses destination URLs that reach loopback, private, link-local or
// unspecified addresses (CONTRACT.md section 7), resolving host names with the
// system resolver (node:dns lookup, as the dispatcher's HTTP client connects).
// The policy itself is pure: domain/destination-hosts.ts.
import { lookup as dnsLookup } from 'node:dns/promises';
import type { Logger } from '@engage/logging';
import { hostRefusal, isIpLiteral, unbracket, urlSettings, type AllowList } from './domain/destination-hosts';

export type Lookup = (host: string) => Promise<string[]>;

/** Every address of `host` (v4 and v6), as getaddrinfo answers. */
export const systemLookup: Lookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export class DestinationHostGuard {
  constructor(
    private readonly config: { allowList: AllowList; lookupTimeoutMs: number },
    private readonly deps: { lookup: Lookup; log: Logger },
  ) {}

  /** [field, reason] for each URL setting whose host is refused; empty when all may be called. */
  async issues(settings: Record<string, unknown>): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const { field, host } of urlSettings(settings)) {
      const addresses = isIpLiteral(host) ? [unbracket(host)] : await this.resolve(host);
      const reason = hostRefusal(host, addresses, this.config.allowList);
      if (reason !== null) out.push([field, reason]);
    }
    return out;
  }

  /**
   * NOTE: a name that does not resolve now (NXDOMAIN, no resolver, a timeout)
   * is admitted with no address to check: a destination may be set up before
   * its DNS exists, and any name can be re-pointed after this check anyway.
   * This check keeps honest mistakes and plain addresses out; it is not a
   * defence against DNS rebinding, which needs the check where the dispatcher
   * connects.
   */
  private async resolve(host: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.deps.lookup(host),
        new Promise<string[]>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`lookup timed out after ${this.config.lookupTimeoutMs} ms`)),
            this.config.lookupTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.deps.log.warn({ host, err }, 'destination_host_unresolved');
      return [];
    } finally {
      clearTimeout(timer);
    }
  }
}
