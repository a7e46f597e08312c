import { ApiFailure, type Schemas } from '../api/client';

export function ErrorNote({ error }: { error: Error }) {
  const detail = error instanceof ApiFailure ? `${error.message} (HTTP ${error.status})` : error.message;
  return (
    <p className="error" role="alert">
      {detail}
    </p>
  );
}

export const formatTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** snake_case as the API derives a key from a name (services/control-plane/src/domain/ids.ts). */
export const snakeCase = (name: string) =>
  name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');

/** Compute status, with the backfill's progress while it runs. */
export function StatusBadge({ computation }: { computation: Schemas['Computation'] }) {
  const tone = computation.status === 'Live' ? 'ok' : computation.status === 'Failed' ? 'bad' : 'neutral';
  return (
    <span className="status">
      <span className={`badge ${tone}`}>{computation.status}</span>
      {computation.progress !== null && (
        <progress max={1} value={computation.progress} aria-label={`${computation.name} backfill progress`}>
          {Math.round(computation.progress * 100)}%
        </progress>
      )}
    </span>
  );
}
