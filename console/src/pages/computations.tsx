// The audiences (or computed traits) of a space: name, key, level, compute
// mode, status (with the backfill's progress), size, connected destinations
// and when it last changed.
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { LABELS, listComputations, type Kind } from '../api/computations';
import { ConnectedCount } from './connected-count';
import { ErrorNote, formatTime, StatusBadge } from './common';

export function ComputationsPage({ kind }: { kind: Kind }) {
  const spaceId = useParams().spaceId!;
  const label = LABELS[kind];
  const space = useQuery({
    queryKey: ['space', spaceId],
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}', { params: { path: { spaceId } } })),
  });
  const computations = useQuery({
    queryKey: [kind, spaceId],
    queryFn: () => listComputations(kind, spaceId),
    // Statuses and sizes move while computations compute.
    refetchInterval: (q) => (q.state.data?.some((a) => a.status === 'Preparing' || a.status === 'Computing') ? 2000 : 15000),
  });
  const list = computations.data ?? [];
  const example =
    kind === 'audiences' ? "event('Order Completed').within(30 days).count() >= 1" : "event('Order Completed').sum(property('revenue'))";

  return (
    <section>
      <div className="page-head">
        <h1>
          {label.title} <span className="muted">{space.data?.data.space.name}</span>
        </h1>
        <Link className="button" to={`/spaces/${spaceId}/${kind}/new`}>
          {label.create}
        </Link>
      </div>
      {space.error && <ErrorNote error={space.error} />}
      {computations.isPending && <p aria-busy="true">Loading {label.title.toLowerCase()}…</p>}
      {computations.error && <ErrorNote error={computations.error} />}
      {computations.isSuccess && list.length === 0 && (
        <p className="empty">
          No {label.title.toLowerCase()} in this space yet. <Link to={`/spaces/${spaceId}/${kind}/new`}>Create one</Link> with a query such
          as <code>{example}</code>.
        </p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table aria-label={label.title}>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Of</th>
                <th scope="col">Mode</th>
                <th scope="col">Status</th>
                {/* NOTE: the scheduler counts members of audiences only; a computed trait's size stays 0, so it is not shown. */}
                {kind === 'audiences' && (
                  <th scope="col" className="num">
                    Size
                  </th>
                )}
                <th scope="col">Destinations</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link to={`/spaces/${spaceId}/${kind}/${a.id}`}>{a.name}</Link>
                  </td>
                  <td>
                    <code>{a.key}</code>
                  </td>
                  <td>{a.definition.type}</td>
                  <td>{a.options.computeMode}</td>
                  <td>
                    <StatusBadge computation={a} />
                  </td>
                  {kind === 'audiences' && <td className="num">{a.size.toLocaleString()}</td>}
                  <td>
                    <ConnectedCount kind={kind} spaceId={spaceId} id={a.id} />
                  </td>
                  <td>{formatTime(a.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
