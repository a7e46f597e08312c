import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { ApiFailure, api, unwrap } from '../api/client';
import { ErrorNote, formatTime } from './common';

export function SpacesPage() {
  const queryClient = useQueryClient();
  const spaces = useQuery({
    queryKey: ['spaces'],
    queryFn: () => unwrap(api.GET('/spaces', { params: { query: { 'pagination.count': '200' } } })),
  });
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: (body: { name: string }) => unwrap(api.POST('/spaces', { body })),
    onSuccess: () => {
      setName('');
      return queryClient.invalidateQueries({ queryKey: ['spaces'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ name });
  };
  const list = spaces.data?.data.spaces ?? [];
  const nameError = create.error instanceof ApiFailure ? (create.error.forField('name') ?? create.error.message) : create.error?.message;

  return (
    <section>
      <h1>Spaces</h1>
      {spaces.isPending && <p aria-busy="true">Loading spaces…</p>}
      {spaces.error && <ErrorNote error={spaces.error} />}
      {spaces.isSuccess && list.length === 0 && (
        <p className="empty">No spaces yet. A space holds sources, audiences and destinations: create your first one below.</p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Id</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link to={`/spaces/${s.id}/audiences`}>{s.name}</Link>
                  </td>
                  <td>
                    <code>{s.id}</code>
                  </td>
                  <td>{formatTime(s.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form className="inline-form" onSubmit={submit}>
        <h2>New space</h2>
        <label htmlFor="space-name">Name</label>
        <div className="row">
          <input
            id="space-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={nameError !== undefined}
            aria-describedby={nameError ? 'space-name-error' : undefined}
          />
          <button type="submit" disabled={create.isPending || name.trim() === ''}>
            Create space
          </button>
        </div>
        {nameError && (
          <p id="space-name-error" className="field-error" role="alert">
            {nameError}
          </p>
        )}
      </form>
    </section>
  );
}
