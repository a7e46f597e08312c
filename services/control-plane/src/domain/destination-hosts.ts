// Which hosts a destination may send to (CONTRACT.md section 7). Pure: the
// control plane resolves names (destination-host.guard.ts) and asks here about
// each address. A destination URL is chosen by whoever holds the API token, and
// the dispatcher POSTs to it from inside the network: without this rule a
// destination could reach the metadata service (169.254.169.254), Redis or any
// internal HTTP endpoint (SSRF).
import ipaddr from 'ipaddr.js';

/** Address ranges refused unless allowed (ipaddr.js range names). */
const REFUSED_RANGES: Record<string, string> = {
  unspecified: 'an unspecified', // 0.0.0.0/8, ::
  loopback: 'a loopback', // 127.0.0.0/8, ::1
  private: 'a private', // RFC 1918: 10/8, 172.16/12, 192.168/16
  uniqueLocal: 'a private', // fc00::/7
  linkLocal: 'a link-local', // 169.254/16, fe80::/10
};

export interface AllowList {
  /** Lower-cased host names allowed whatever they resolve to. */
  hosts: Set<string>;
  ranges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
}

export const EMPTY_ALLOW_LIST: AllowList = { hosts: new Set(), ranges: [] };

/**
 * Parses DESTINATION_ALLOWED_HOSTS: comma-separated host names, addresses or
 * CIDRs (`127.0.0.0/8,::1,hooks.internal`). Throws naming a bad entry.
 */
export function parseAllowList(text: string): AllowList {
  const list: AllowList = { hosts: new Set(), ranges: [] };
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw new Error(`'${entry}' is not a valid CIDR`);
      list.ranges.push(ipaddr.parseCIDR(entry));
    } else if (ipaddr.isValid(unbracket(entry))) {
      const address = ipaddr.process(unbracket(entry));
      list.ranges.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(entry)) {
      list.hosts.add(entry);
    } else {
      throw new Error(`'${entry}' is neither a host name, an IP address nor a CIDR`);
    }
  }
  return list;
}

/** `[::1]` (a URL's hostname) -> `::1`. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** True when `host` is an IP literal (v4 or v6, bracketed or not) rather than a name to resolve. */
export function isIpLiteral(host: string): boolean {
  return ipaddr.isValid(unbracket(host));
}

/** True when the allow-list names the host itself: its addresses are then not checked. */
export function hostAllowed(host: string, allow: AllowList): boolean {
  return allow.hosts.has(unbracket(host).toLowerCase());
}

/**
 * Why an address may not be a destination, or null when it may: public
 * addresses may, refused ranges only when an allowed CIDR holds them.
 * IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it maps.
 */
export function addressRefusal(address: string, allow: AllowList): string | null {
  if (!ipaddr.isValid(unbracket(address))) return `'${address}' is not an IP address`;
  const ip = ipaddr.process(unbracket(address));
  const refused = REFUSED_RANGES[ip.range()];
  if (refused === undefined) return null;
  if (allow.ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return null;
  return `${ip.toString()} is ${refused} address`;
}

/**
 * The verdict for a host and the addresses it resolved to: every address must
 * be allowed (a name with one public and one private address is refused).
 */
export function hostRefusal(host: string, addresses: string[], allow: AllowList): string | null {
  if (hostAllowed(host, allow)) return null;
  for (const address of addresses) {
    const reason = addressRefusal(address, allow);
    if (reason !== null) {
      const shown = unbracket(host);
      const via = shown === address || isIpLiteral(host) ? '' : ` (${shown} resolves to it)`;
      return `${reason}${via}; destinations may not reach loopback, private, link-local or unspecified addresses unless DESTINATION_ALLOWED_HOSTS allows them`;
    }
  }
  return null;
}

/**
 * The settings holding URLs a dispatcher will call: every top-level string
 * that is an absolute http(s) URL (webhook `url`, `apiBaseUrl`, `endpoint`...),
 * so a new destination type's URL settings are covered without a list here.
 */
export function urlSettings(settings: Record<string, unknown>): Array<{ field: string; host: string }> {
  const out: Array<{ field: string; host: string }> = [];
  for (const [name, value] of Object.entries(settings)) {
    if (typeof value !== 'string') continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      continue;
    }
    // NOTE: WHATWG URL parsing normalises 2130706433, 0x7f.1 and 127.1 to 127.0.0.1, so those spellings are judged as loopback.
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '')
      out.push({ field: `settings.${name}`, host: url.hostname });
  }
  return out;
}
