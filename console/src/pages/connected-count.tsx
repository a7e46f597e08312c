import { useQuery } from '@tanstack/react-query';
import { listConnections, type Kind } from '../api/computations';

/** How many destinations a computation is connected to (one small request per row: spaces hold tens of computations). */
export function ConnectedCount({ kind, spaceId, id }: { kind: Kind; spaceId: string; id: string }) {
  const connections = useQuery({ queryKey: ['connections', spaceId, id], queryFn: () => listConnections(kind, spaceId, id) });
  if (!connections.data) return <span className="muted">…</span>;
  const list = connections.data;
  const live = list.filter((c) => c.status === 'Connected').length;
  if (list.length === 0) return <span className="muted">None</span>;
  return (
    <span>
      {live} connected{list.length > live && <span className="muted"> ({list.length - live} off)</span>}
    </span>
  );
}
