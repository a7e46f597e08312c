// What the logs never show (CONTRACT.md section 7: secrets never appear in
// logs). pino's redact takes fixed paths (https://getpino.io/#/docs/redaction),
// not a rule over key names, so this lists the secret settings of the
// destination types and the shapes that carry them: a destination logged
// whole, its settings, a config record's body, HTTP headers. The control
// plane's API masks by a rule over names (services/control-plane/src/domain/
// libs/config-store destination-secrets.ts); keep the names here in step with that rule.

/** Setting names that hold secrets (webhook headers, tokens, API keys, OAuth). */
export const SECRET_SETTING_NAMES = [
  'headers',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'apiKey',
  'api_key',
  'apiSecret',
  'api_secret',
  'secret',
  'clientSecret',
  'client_secret',
  'password',
  'authorization',
  'oauth',
];

/** Where settings sit in what services log: `{ settings }`, `{ destination }`, one level deeper. */
const SETTINGS_AT = ['settings', '*.settings', 'destination.settings', '*.destination.settings'];

export const REDACT_PATHS = [
  ...SETTINGS_AT.flatMap((at) => SECRET_SETTING_NAMES.map((name) => `${at}.${name}`)),
  // A config record's body is the object as JSON text (a destination with its secrets).
  'body_json',
  '*.body_json',
  // HTTP requests and errors that carry their request's headers.
  'headers.authorization',
  '*.headers.authorization',
  '*.*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
];

export const REDACTED = '[Redacted]';
