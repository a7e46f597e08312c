// The audiences of a space: name, key, level, compute mode, status (with the
// backfill's progress), size, connected destinations and when it last changed.
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../api/client';
import { ConnectedCount } from './connected-count';
import { ErrorNote, formatTime, StatusBadge } from './common';

export function AudiencesPage() {
  const spaceId = useParams().spaceId!;
  const space = useQuery({
    queryKey: ['space', spaceId],
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}', { params: { path: { spaceId } } })),
  });
  const audiences = useQuery({
    queryKey: ['audiences', spaceId],
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/audiences', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
    // Statuses and sizes move while audiences compute.
    refetchInterval: (q) => (q.state.data?.data.audiences.some((a) => a.status === 'Preparing' || a.status === 'Computing') ? 2000 : 15000),
  });
  const list = audiences.data?.data.audiences ?? [];

  return (
    <section>
      <div className="page-head">
        <h1>
          Audiences <span className="muted">{space.data?.data.space.name}</span>
        </h1>
        <Link className="button" to={`/spaces/${spaceId}/audiences/new`}>
          + New audience
        </Link>
      </div>
      {space.error && <ErrorNote error={space.error} />}
      {audiences.isPending && <p aria-busy="true">Loading audiences…</p>}
      {audiences.error && <ErrorNote error={audiences.error} />}
      {audiences.isSuccess && list.length === 0 && (
        <p className="empty">
          No audiences in this space yet. <Link to={`/spaces/${spaceId}/audiences/new`}>Create one</Link> with a query such as{' '}
          <code>event('Order Completed').within(30 days).count() &gt;= 1</code>.
        </p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Audiences">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Of</th>
                <th scope="col">Mode</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Size
                </th>
                <th scope="col">Destinations</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <tr key={a.id} data-audience-id={a.id}>
                  <td>
                    <Link to={`/spaces/${spaceId}/audiences/${a.id}`}>{a.name}</Link>
                  </td>
                  <td>
                    <code>{a.key}</code>
                  </td>
                  <td>{a.definition.type}</td>
                  <td>{a.options.computeMode}</td>
                  <td>
                    <StatusBadge computation={a} />
                  </td>
                  <td className="num">{a.size.toLocaleString()}</td>
                  <td>
                    <ConnectedCount spaceId={spaceId} audienceId={a.id} />
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
