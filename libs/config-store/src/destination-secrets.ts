// Destination secrets are write-only (CONTRACT.md section 7): the API shows a
// secret setting as MASK and a write that sends MASK back keeps the stored
// value. engage.config keeps the real values: the dispatchers send with them,
// and the control plane restores them; every other service's ConfigStore
// holds them masked (`destinationSecrets: 'mask'`, the default).
//
// The rule: a setting is secret when its name (at any depth of `settings`)
// matches SECRET_SETTING, e.g. `headers`, `accessToken`, `api_key`,
// `apiSecret`, `password`, `authorization`, `clientSecret`, `oauth`. A secret
// object or array (webhook `headers`) keeps its keys visible and masks every
// value in it, so a client sees which headers are set, not their values.
// A URL anywhere in the settings (a webhook's `url`) has the same rule for its
// query parameters (`?api_key=...`) and its userinfo password, so a token
// pasted into a URL is not shown either.

export const MASK = '********';

/** Names of secret settings. NOTE: matched anywhere in the name, so `apiKey` and `x-api-key` both are. */
export const SECRET_SETTING = /token|secret|key|password|passwd|authorization|headers|credential|oauth/i;

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every leaf masked; empty strings and nulls stay as they are (they hold no secret). */
function maskAll(value: Json): Json {
  if (Array.isArray(value)) return value.map(maskAll);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskAll(v)]));
  if (value === null || value === '' || value === undefined) return value;
  return MASK;
}

/** Query parameters (name=value) and userinfo password of an http(s) URL: the parts that can hold a secret. */
const URL_QUERY_PARAM = /([?&])([^=&#]+)=([^&#]*)/g;
const URL_USERINFO = /^(https?:\/\/[^:/?#@]*:)([^@/?#]*)@/i;
const isUrl = (v: Json): v is string => typeof v === 'string' && /^https?:\/\//i.test(v);
const paramName = (raw: string) => {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
};

/** A URL with its secret query values and userinfo password masked. */
export function maskUrl(url: string): string {
  return url
    .replace(URL_USERINFO, (_, head: string, pass: string) => `${head}${pass ? MASK : ''}@`)
    .replace(URL_QUERY_PARAM, (whole, sep: string, name: string, value: string) =>
      value && SECRET_SETTING.test(paramName(name)) ? `${sep}${name}=${MASK}` : whole,
    );
}

/** `incoming` with every masked part put back from `stored` (the same URL as stored before); the names left masked with nothing behind. */
function restoreUrl(incoming: string, stored: Json): { url: string; missing: string[] } {
  const before = typeof stored === 'string' ? stored : '';
  const storedParams = new Map([...before.matchAll(URL_QUERY_PARAM)].map((m) => [m[2]!, m[3]!]));
  const storedPass = URL_USERINFO.exec(before)?.[2];
  const missing: string[] = [];
  const url = incoming
    .replace(URL_USERINFO, (whole, head: string, pass: string) => {
      if (pass !== MASK) return whole;
      if (!storedPass) missing.push('password');
      return `${head}${storedPass ?? ''}@`;
    })
    .replace(URL_QUERY_PARAM, (whole, sep: string, name: string, value: string) => {
      if (value !== MASK) return whole;
      const previous = storedParams.get(name);
      if (previous === undefined || previous === MASK) missing.push(name);
      return `${sep}${name}=${previous ?? ''}`;
    });
  return { url, missing };
}

/**
 * The settings as the API shows them. `secretFields`: top-level settings
 * secret by the destination's own schema (an Actions definition's password
 * fields, whatever their name), masked too.
 */
export function maskSettings(settings: Record<string, Json>, secretFields: readonly string[] = []): Record<string, Json> {
  const walk = (value: Json, top: boolean): Json => {
    if (Array.isArray(value)) return value.map((v) => walk(v, false));
    if (isUrl(value)) return maskUrl(value);
    if (!isObject(value)) return value;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_SETTING.test(k) || (top && secretFields.includes(k)) ? maskAll(v) : walk(v, false)]),
    );
  };
  return walk(settings, true) as Record<string, Json>;
}

/** A destination (or anything with `settings`) as the API shows it. */
export function maskDestination<T extends { settings: Record<string, Json>; secretFields?: string[] }>(destination: T): T {
  return { ...destination, settings: maskSettings(destination.settings, destination.secretFields) };
}

/**
 * `incoming` settings with every MASK under a secret name replaced by the
 * stored value at the same path. A MASK with no stored value behind it is an
 * issue ([field, reason]): storing the mask text itself as a secret would send
 * "********" to the destination.
 */
export function restoreSecrets(
  incoming: Record<string, Json>,
  stored: Record<string, Json> | undefined,
  secretFields: readonly string[] = [],
): { settings: Record<string, Json>; issues: Array<[string, string]> } {
  const issues: Array<[string, string]> = [];
  const walk = (value: Json, previous: Json, path: string, secret: boolean): Json => {
    if (secret && value === MASK) {
      if (previous === undefined) {
        issues.push([path, `'${MASK}' stands for a stored secret, and there is none here: send the value itself`]);
      }
      return previous;
    }
    if (Array.isArray(value))
      return value.map((v, i) => walk(v, Array.isArray(previous) ? previous[i] : undefined, `${path}.${i}`, secret));
    if (!secret && isUrl(value) && value.includes(MASK)) {
      const { url, missing } = restoreUrl(value, previous);
      for (const name of missing)
        issues.push([
          path,
          `'${MASK}' for '${name}' in this URL stands for a stored secret, and there is none here: send the value itself`,
        ]);
      return url;
    }
    if (!isObject(value)) return value;
    const before = isObject(previous) ? previous : {};
    const top = path === 'settings';
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        walk(v, before[k], `${path}.${k}`, secret || SECRET_SETTING.test(k) || (top && secretFields.includes(k))),
      ]),
    );
  };
  const settings = walk(incoming, stored ?? {}, 'settings', false) as Record<string, Json>;
  return { settings, issues };
}
