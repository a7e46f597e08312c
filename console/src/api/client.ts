// The API client: typed by the OpenAPI document (generated/schema.ts), on the
// console's own origin, with the admin token from the session (auth.ts).
import createClient, { type Middleware } from 'openapi-fetch';
import { clearToken, readToken } from '../auth';
import type { components, paths } from './generated/schema';

export type Schemas = components['schemas'];
export type ApiErrorItem = Schemas['Errors']['errors'][number];

/** An API answer that was not a success: its status and Segment-shaped errors. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiErrorItem[],
  ) {
    super(errors.map((e) => e.message).join('; ') || `HTTP ${status}`);
  }
  /** The message of the error about `field` (or a field under it), if any. */
  forField(field: string): string | undefined {
    return this.errors.find((e) => e.field === field || e.field?.startsWith(`${field}.`))?.message;
  }
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = readToken();
    if (!token) return request;
    // The Profile API (/v1/...) takes the token as Basic username, as Segment's does; the rest takes it as a bearer.
    const profileApi = new URL(request.url).pathname.startsWith('/v1/');
    request.headers.set('authorization', profileApi ? `Basic ${btoa(`${token}:`)}` : `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    // A token revoked or changed under a running console: back to the login form.
    if (response.status === 401 && readToken()) {
      clearToken();
      window.dispatchEvent(new Event('engage:signed-out'));
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** The data of an openapi-fetch answer, or an ApiFailure. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok && data !== undefined) return data;
  // The configuration API answers {errors:[...]}, the Profile API {error:{code, message}}.
  const body = error as { errors?: ApiErrorItem[]; error?: { code: string; message: string } } | undefined;
  const errors = body?.errors ?? (body?.error ? [{ type: body.error.code, message: body.error.message }] : []);
  throw new ApiFailure(response.status, errors);
}

/**
 * Downloads a file the API streams (CSV) with the token in a header, not in
 * a link: fetched as a blob, then saved under the name the API gives.
 */
export async function download(path: string, fallbackName: string): Promise<void> {
  const response = await fetch(path, { headers: { authorization: `Bearer ${readToken() ?? ''}` } });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { errors?: ApiErrorItem[] };
    throw new ApiFailure(response.status, body.errors ?? []);
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // NOTE: revoked on the next task, once the click has started the download.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
