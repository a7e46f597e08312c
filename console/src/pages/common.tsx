import type { ReactNode } from 'react';
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
        <>
          <progress max={1} value={computation.progress} aria-label={`${computation.name} backfill progress`}>
            {Math.round(computation.progress * 100)}%
          </progress>
          <span className="muted" data-testid="progress-percent">
            {Math.round(computation.progress * 100)}%
          </span>
        </>
      )}
    </span>
  );
}

/** A column header: a label, right-aligned when it holds numbers. */
export type Column = string | { label: string; num: true };

/**
 * The framed, sideways-scrolling table the list and detail pages share
 * (`.table-wrap`): its accessible name and column headers; rows are the children.
 */
export function TableFrame({ label, columns, children }: { label: string; columns: Column[]; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((c) =>
              typeof c === 'string' ? (
                <th scope="col" key={c}>
                  {c}
                </th>
              ) : (
                <th scope="col" key={c.label} className="num">
                  {c.label}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A JSON value (an API body) indented in a code block; strings shown as they are. */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  const text = typeof value === 'string' ? value : (JSON.stringify(value, null, 2) ?? '');
  return (
    <pre className="query" aria-label={label}>
      <code>{text === '' ? '(empty)' : text}</code>
    </pre>
  );
}

/** Every message of a refused write, one per line, beside the form that sent it (400/409/422 name fields in the text). */
export function ErrorList({ error, id }: { error: Error; id?: string }) {
  const items = error instanceof ApiFailure && error.errors.length > 0 ? error.errors.map((e) => e.message) : [error.message];
  const status = error instanceof ApiFailure ? ` (HTTP ${error.status})` : '';
  return (
    <div id={id} className="field-error" role="alert">
      {items.map((m, i) => (
        <p key={i}>
          {m}
          {i === items.length - 1 && status}
        </p>
      ))}
    </div>
  );
}
