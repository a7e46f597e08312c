// One destination: what its dispatchers counted (totals, and per minute in a
// chart: history-charts.tsx), its settings (secrets come
// back masked), enable / disable, "Sync now" for list destinations, and for
// Actions destinations their mappings (which action each call runs), each
// of which can be turned on or off; and the event tester (event-tester.tsx).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import { ErrorNote, formatTime } from './common';
import { EventTester } from './event-tester';
import { DeliveryHistoryChart } from './history-charts';

// List destinations get adds and removes, not identify or track calls: their test adds a test user to a test audience.
const LIST_TYPES = new Set(['list-webhook', 'facebook-custom-audiences']);

export function DestinationPage() {
  const { spaceId, id } = useParams() as { spaceId: string; id: string };
  const queryClient = useQueryClient();
  const key = ['destination', spaceId, id];
  const destination = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/destinations/{id}', { params: { path: { spaceId, id } } })),
    refetchInterval: 10000,
  });
  const setEnabled = useMutation({
    mutationFn: (enabled: boolean) =>
      unwrap(api.PATCH('/spaces/{spaceId}/destinations/{id}', { params: { path: { spaceId, id } }, body: { enabled } })),
    onSuccess: () =>
      Promise.all([
        queryClient.invalidateQueries({ queryKey: key }),
        queryClient.invalidateQueries({ queryKey: ['destinations', spaceId] }),
      ]),
  });
  const sync = useMutation({
    mutationFn: () => unwrap(api.POST('/spaces/{spaceId}/destinations/{id}/sync', { params: { path: { spaceId, id } } })),
  });
  const d = destination.data?.data.destination;
  const status = d?.deliveryStatus;

  return (
    <section>
      <p>
        <Link to={`/spaces/${spaceId}/destinations`}>← Destinations</Link>
      </p>
      {destination.isPending && <p aria-busy="true">Loading the destination…</p>}
      {destination.error && <ErrorNote error={destination.error} />}
      {d && status && (
        <>
          <div className="page-head">
            <h1>
              {d.name} <span className="muted">{d.slug ? `${d.slug} (actions)` : d.type}</span>
            </h1>
            <div className="row">
              <span className={`badge ${d.status === 'Enabled' ? 'ok' : 'neutral'}`} data-testid="destination-status">
                {d.status}
              </span>
              <button type="button" className="secondary" disabled={setEnabled.isPending} onClick={() => setEnabled.mutate(!d.enabled)}>
                {d.enabled ? 'Disable' : 'Enable'}
              </button>
              <button
                type="button"
                className="secondary"
                disabled={sync.isPending}
                onClick={() => sync.mutate()}
                title="List destinations: send pending adds and removes now"
              >
                Sync now
              </button>
            </div>
          </div>
          {setEnabled.error && <ErrorNote error={setEnabled.error} />}
          {sync.error && <ErrorNote error={sync.error} />}
          {sync.isSuccess && (
            <p role="status" className="ok">
              Sync requested.
            </p>
          )}
          {status.credentialsRefused && (
            <p className="error" role="alert">
              The vendor refused the credentials{status.credentialsRefused.at ? ` at ${formatTime(status.credentialsRefused.at)}` : ''}:{' '}
              {status.credentialsRefused.error}. Nothing was sent since; update the settings.
            </p>
          )}
          <dl className="facts">
            {(
              [
                ['Sent', status.sent],
                ['Retried', status.retried],
                ['Failed', status.failed],
                ['Throttled', status.throttled],
                ['Dead-lettered', status.deadLettered],
              ] as const
            ).map(([label, n]) => (
              <div key={label}>
                <dt>{label}</dt>
                <dd>{n.toLocaleString()}</dd>
              </div>
            ))}
            <div>
              <dt>Last sent</dt>
              <dd>{formatTime(status.lastSentAt)}</dd>
            </div>
          </dl>
          {status.lastError && (
            <p>
              Last error ({formatTime(status.lastErrorAt)}): <code>{status.lastError}</code>
            </p>
          )}
          <DeliveryHistoryChart spaceId={spaceId} destinationId={d.id} />
          <h2>Settings</h2>
          <div className="table-wrap">
            <table aria-label="Settings">
              <tbody>
                {Object.entries(d.settings).map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td className="wrap">
                      <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {d.slug && <Mappings spaceId={spaceId} destination={d} />}
          <EventTester spaceId={spaceId} destinationId={d.id} list={LIST_TYPES.has(d.type)} />
        </>
      )}
    </section>
  );
}

function Mappings({ spaceId, destination }: { spaceId: string; destination: Schemas['DestinationWithStatus'] }) {
  const queryClient = useQueryClient();
  const path = { spaceId, id: destination.id };
  const key = ['mappings', spaceId, destination.id];
  const mappings = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/destinations/{id}/mappings', { params: { path } })),
  });
  const toggle = useMutation({
    mutationFn: (m: Schemas['Mapping']) =>
      unwrap(
        api.PATCH('/spaces/{spaceId}/destinations/{id}/mappings/{mappingId}', {
          params: { path: { ...path, mappingId: m.id } },
          body: { enabled: !m.enabled },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: key }),
  });
  const list = mappings.data?.data.mappings ?? [];
  return (
    <section aria-labelledby="mappings-title">
      <h2 id="mappings-title">Mappings</h2>
      {mappings.error && <ErrorNote error={mappings.error} />}
      {toggle.error && <ErrorNote error={toggle.error} />}
      {mappings.isSuccess && list.length === 0 && <p className="empty">No mappings: no call reaches this destination.</p>}
      {list.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Mappings">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Action</th>
                <th scope="col">Subscription (FQL)</th>
                <th scope="col">Enabled</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.id}>
                  <td>{m.name ?? m.id}</td>
                  <td>{m.actionId}</td>
                  <td className="wrap">
                    <code>{m.subscribe}</code>
                  </td>
                  <td>
                    <label className="choice">
                      <input type="checkbox" checked={m.enabled} disabled={toggle.isPending} onChange={() => toggle.mutate(m)} />{' '}
                      {m.enabled ? 'On' : 'Off'}
                    </label>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
