// The event tester on a destination's page (CONTRACT.md section 9): sends one
// identify or track, built as this destination receives an audience entry (a
// list destination: the add of a test user to a test audience), and shows the
// request (secrets masked by the API), the destination's answer and how long
// it took, or why it could not be sent.
import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/generated/schema';
import { ErrorList, JsonBlock, TableFrame } from './common';

type CallType = 'identify' | 'track';

function Headers({ label, headers }: { label: string; headers: Record<string, string> }) {
  const entries = Object.entries(headers);
  if (entries.length === 0) return <p className="muted">No headers.</p>;
  return (
    <TableFrame label={label} columns={['Header', 'Value']}>
      {entries.map(([k, v]) => (
        <tr key={k}>
          <th scope="row">{k}</th>
          <td className="wrap">
            <code>{v}</code>
          </td>
        </tr>
      ))}
    </TableFrame>
  );
}

/** `list`: a list destination (list-webhook, facebook-custom-audiences), which takes no call type (docs/api.md "Event tester"). */
type TestResult = NonNullable<
  paths['/spaces/{spaceId}/destinations/{id}/test']['post']['responses']['200']['content']['application/json']
>['data'];

/** What a list destination's test added: the test audience and each identifier sent or refused. */
function ListOutcome({ outcome }: { outcome: NonNullable<TestResult['list']> }) {
  return (
    <dl className="facts" aria-label="List outcome">
      <div>
        <dt>Test audience</dt>
        <dd>{outcome.audience ? `${outcome.audience.name} (${outcome.audience.id})` : '—'}</dd>
      </div>
      <div>
        <dt>Sent</dt>
        <dd data-testid="test-list-sent">{outcome.sent.map((i) => `${i.type}: ${i.value}`).join(', ') || 'nothing'}</dd>
      </div>
      {outcome.failed.length > 0 && (
        <div>
          <dt>Not sent</dt>
          <dd className="error">{outcome.failed.map((i) => `${i.type}: ${i.reason}`).join('; ')}</dd>
        </div>
      )}
    </dl>
  );
}

/** A list destination's requests before the last one (the test audience's lookup or creation). */
function EarlierRequests({ exchanges }: { exchanges: NonNullable<TestResult['exchanges']> }) {
  return (
    <>
      <h3>Earlier requests</h3>
      <TableFrame label="Earlier requests" columns={['Request', 'Status']}>
        {exchanges.map((x, i) => (
          <tr key={i}>
            <td className="wrap">
              <code>
                {x.request.method} {x.request.url}
              </code>
            </td>
            <td>{x.response?.status ?? '—'}</td>
          </tr>
        ))}
      </TableFrame>
    </>
  );
}

export function EventTester({ spaceId, destinationId, list }: { spaceId: string; destinationId: string; list: boolean }) {
  const [type, setType] = useState<CallType>('identify');
  const [userId, setUserId] = useState('');
  const [payload, setPayload] = useState('{}');
  const [parseError, setParseError] = useState<string | null>(null);
  const send = useMutation({
    mutationFn: (body: { type?: CallType; userId?: string; traits?: Record<string, unknown>; properties?: Record<string, unknown> }) =>
      unwrap(api.POST('/spaces/{spaceId}/destinations/{id}/test', { params: { path: { spaceId, id: destinationId } }, body })),
  });
  const field = list || type === 'identify' ? 'traits' : 'properties';
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let extra: unknown = undefined;
    if (payload.trim() !== '') {
      try {
        extra = JSON.parse(payload);
      } catch (err) {
        setParseError(`${field}: not JSON (${(err as Error).message})`);
        return;
      }
      if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) {
        setParseError(`${field}: must be a JSON object such as {"plan": "pro"}`);
        return;
      }
    }
    setParseError(null);
    send.mutate({
      ...(list ? {} : { type }),
      ...(userId.trim() ? { userId: userId.trim() } : {}),
      ...(extra ? { [field]: extra as Record<string, unknown> } : {}),
    });
  };
  const result = send.data?.data;

  return (
    <section className="panel" aria-labelledby="event-tester-title">
      <h2 id="event-tester-title">Event tester</h2>
      <p className="help">
        {list
          ? 'Adds one test user to a test audience, as this list destination receives an add, through its rate limit and without retries. Identifiers: the user id and traits named by identifier type (email, phone, …).'
          : 'Sends one call, as this destination receives an audience entry, through its rate limit and without retries.'}{' '}
        The answer is shown below.
      </p>
      <form className="stack" onSubmit={submit} aria-label="Event tester">
        {!list && (
          <fieldset>
            <legend>Call</legend>
            {(['identify', 'track'] as const).map((t) => (
              <label key={t} className="choice">
                <input type="radio" name="test-type" value={t} checked={type === t} onChange={() => setType(t)} /> {t}
              </label>
            ))}
          </fieldset>
        )}
        <div className="field">
          <label htmlFor="test-user-id">User id (optional)</label>
          <input
            id="test-user-id"
            value={userId}
            onChange={(e) => setUserId(e.target.value)}
            placeholder="empty: a generated test_user_…"
            autoComplete="off"
          />
        </div>
        <div className="field">
          <label htmlFor="test-payload">{field === 'traits' ? 'Traits' : 'Properties'} (JSON object, optional)</label>
          <textarea
            id="test-payload"
            className="code"
            rows={4}
            spellCheck={false}
            value={payload}
            onChange={(e) => setPayload(e.target.value)}
            aria-invalid={parseError !== null}
            aria-describedby={parseError ? 'test-payload-error' : undefined}
          />
          {parseError && (
            <p id="test-payload-error" className="field-error" role="alert">
              {parseError}
            </p>
          )}
        </div>
        <div className="row">
          <button type="submit" disabled={send.isPending}>
            {send.isPending ? 'Sending…' : 'Send test event'}
          </button>
        </div>
      </form>
      {send.error && <ErrorList error={send.error} />}
      {result && (
        <section aria-label="Test result" data-testid="test-result">
          <p data-testid="test-duration">
            {result.error ? 'Failed' : 'Answered'} in {result.durationMs.toLocaleString()} ms
          </p>
          {result.error && (
            <p className="error" role="alert" data-testid="test-error">
              {result.error}
            </p>
          )}
          {result.list && <ListOutcome outcome={result.list} />}
          {result.exchanges && result.exchanges.length > 1 && <EarlierRequests exchanges={result.exchanges.slice(0, -1)} />}
          <div className="tester-result">
            {result.request && (
              <section aria-label="Request">
                <h3>Request</h3>
                <p>
                  <code data-testid="test-request-line">
                    {result.request.method} {result.request.url}
                  </code>
                </p>
                <Headers label="Request headers" headers={result.request.headers} />
                <JsonBlock label="Request body" value={result.request.body} />
              </section>
            )}
            {result.response && (
              <section aria-label="Response">
                <h3>Response</h3>
                <p>
                  Status{' '}
                  <span className={`badge ${result.response.status < 300 ? 'ok' : 'bad'}`} data-testid="test-response-status">
                    {result.response.status}
                  </span>
                </p>
                <Headers label="Response headers" headers={result.response.headers} />
                <JsonBlock label="Response body" value={result.response.body} />
                {result.response.truncated && <p className="help">The body was cut at 64 KB.</p>}
              </section>
            )}
          </div>
        </section>
      )}
    </section>
  );
}
