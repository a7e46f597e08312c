// The admin token, entered once: checked against the API (GET /spaces) before
// it is kept for the browser session.
import { useState, type FormEvent } from 'react';
import { useLocation, useNavigate } from 'react-router';
import { ApiFailure, api, unwrap } from '../api/client';
import { clearToken, saveToken } from '../auth';

export function LoginPage() {
  const navigate = useNavigate();
  const location = useLocation();
  const state = (location.state ?? {}) as { from?: string; expired?: boolean };
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(state.expired ? 'Your token is no longer accepted: enter it again.' : null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    saveToken(token.trim());
    try {
      await unwrap(api.GET('/spaces', { params: { query: { 'pagination.count': '1' } } }));
      navigate(state.from && state.from !== '/login' ? state.from : '/spaces', { replace: true });
    } catch (err) {
      clearToken();
      setError(
        err instanceof ApiFailure && err.status === 401
          ? 'This token was refused: use the CONTROL_PLANE_TOKEN the control plane runs with.'
          : `The control plane did not answer as expected: ${(err as Error).message}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <h1>Engage console</h1>
      <form onSubmit={submit} noValidate>
        <label htmlFor="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          autoFocus
          required
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error ? 'token-error' : 'token-help'}
        />
        {error ? (
          <p id="token-error" className="field-error" role="alert">
            {error}
          </p>
        ) : (
          <p id="token-help" className="help">
            The control plane's CONTROL_PLANE_TOKEN. Kept for this browser tab only.
          </p>
        )}
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
