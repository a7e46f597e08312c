// Google's OAuth token endpoint (https://oauth2.googleapis.com/token) as the
// Google emulators answer it: a refresh_token grant from the configured OAuth
// client and refresh token gets a new access token, which the caller's
// emulator then accepts; anything else is refused as Google refuses it.
import type { Responder } from './receiver';

type Answer = ReturnType<Responder>;

export interface GoogleOAuthClient {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

/** A token endpoint for `client`: each grant issues `ya29.<tag>-<n>` for `scope` and adds it to `live`. */
export function googleTokenEndpoint(client: GoogleOAuthClient, opts: { tag: string; scope: string; live: Set<string> }) {
  let issued = 0;
  return (body: unknown): Answer => {
    const form = new URLSearchParams(typeof body === 'string' ? body : '');
    if (form.get('grant_type') !== 'refresh_token') return { status: 400, body: { error: 'unsupported_grant_type' } };
    if (form.get('client_id') !== client.clientId || form.get('client_secret') !== client.clientSecret)
      return { status: 401, body: { error: 'invalid_client', error_description: 'The OAuth client was not found.' } };
    if (form.get('refresh_token') !== client.refreshToken)
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } };
    const accessToken = `ya29.${opts.tag}-${++issued}`;
    opts.live.add(accessToken);
    return { status: 200, body: { access_token: accessToken, expires_in: 3599, scope: opts.scope, token_type: 'Bearer' } };
  };
}
