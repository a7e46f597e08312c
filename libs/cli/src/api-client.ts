// A small client of the control plane's configuration API (CONTRACT.md
// section 2): bearer auth, {"data":...} unwrapping, pagination followed,
// {"errors":[...]} turned into one readable error.

export interface ApiErrorItem {
  type: string;
  message: string;
  field?: string;
}

export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiErrorItem[],
    readonly request: string,
  ) {
    super(`${request}: ${status} ${errors.map((e) => e.message).join('; ')}`);
    this.name = 'ControlPlaneError';
  }
}

export interface ClientConfig {
  /** Base URL, e.g. http://127.0.0.1:8088 */
  url: string;
  token: string;
}

export class ControlPlaneClient {
  private readonly base: string;

  constructor(
    private readonly config: ClientConfig,
    private readonly deps: { fetch?: typeof fetch } = {},
  ) {
    this.base = config.url.replace(/\/+$/, '');
  }

  /** The `data` of a response; throws ControlPlaneError on a non-2xx answer. */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const request = `${method} ${path}`;
    let res: Response;
    try {
      res = await (this.deps.fetch ?? fetch)(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.config.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ControlPlaneError(
        0,
        [
          {
            type: 'unreachable',
            message: `cannot reach the control plane at ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message})`,
          },
        ],
        request,
      );
    }
    const text = await res.text();
    let json: { data?: T; errors?: ApiErrorItem[] } | undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok)
      throw new ControlPlaneError(res.status, json?.errors ?? [{ type: 'http', message: text.slice(0, 300) || res.statusText }], request);
    if (!json || json.data === undefined)
      throw new ControlPlaneError(res.status, [{ type: 'protocol', message: 'response has no data' }], request);
    return json.data;
  }

  /** Every item of a paginated list, following `pagination.next`. */
  async listAll<T>(path: string, field: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const query = `pagination.count=200${cursor ? `&pagination.cursor=${encodeURIComponent(cursor)}` : ''}`;
      const data: Record<string, unknown> = await this.request('GET', `${path}${path.includes('?') ? '&' : '?'}${query}`);
      out.push(...((data[field] as T[]) ?? []));
      cursor = (data.pagination as { next?: string | null } | undefined)?.next ?? null;
    } while (cursor);
    return out;
  }
}
