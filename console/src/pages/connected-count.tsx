import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';

/** How many destinations an audience is connected to (one small request per row: spaces hold tens of audiences). */
export function ConnectedCount({ spaceId, audienceId }: { spaceId: string; audienceId: string }) {
  const connections = useQuery({
    queryKey: ['connections', spaceId, audienceId],
    queryFn: () =>
      unwrap(
        api.GET('/spaces/{spaceId}/audiences/{id}/destinations', {
          params: { path: { spaceId, id: audienceId }, query: { 'pagination.count': '200' } },
        }),
      ),
  });
  if (!connections.data) return <span className="muted">…</span>;
  const list = connections.data.data.connections;
  const live = list.filter((c) => c.status === 'Connected').length;
  if (list.length === 0) return <span className="muted">None</span>;
  return (
    <span>
      {live} connected{list.length > live && <span className="muted"> ({list.length - live} off)</span>}
    </span>
  );
}
