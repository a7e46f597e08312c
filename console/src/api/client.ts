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
    if (token) request.headers.set('authorization', `Bearer ${token}`);
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
  const errors = (error as { errors?: ApiErrorItem[] } | undefined)?.errors ?? [];
  throw new ApiFailure(response.status, errors);
}
