// Profile look-up through the Profile API (Basic auth with the admin token,
// api/client.ts): by any identifier, then its traits, audiences and computed
// traits, identifiers, recent events, the profiles merged into it (the `merges`
// resource, ours: Segment's Profile API has none) and metadata. The identifier looked up is
// in the page's URL (?id=email:a@b.co) so a look-up can be linked to.
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useParams, useSearchParams } from 'react-router';
import { ApiFailure, api, unwrap } from '../api/client';
import { ErrorNote, formatTime } from './common';

const TYPES = ['user_id', 'anonymous_id', 'email', 'phone', 'segment_id'];

export function ProfilesPage() {
  const spaceId = useParams().spaceId!;
  const [search, setSearch] = useSearchParams();
  const current = search.get('id') ?? '';
  const split = current.indexOf(':');
  const [type, setType] = useState(split > 0 ? current.slice(0, split) : 'user_id');
  const [value, setValue] = useState(split > 0 ? current.slice(split + 1) : '');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (type.trim() && value.trim()) setSearch({ id: `${type.trim()}:${value.trim()}` });
  };

  return (
    <section>
      <h1>Profiles</h1>
      <form className="row wrap lookup" onSubmit={submit} aria-label="Look up a profile">
        <div className="field">
          <label htmlFor="id-type">Identifier type</label>
          <input id="id-type" list="id-types" value={type} onChange={(e) => setType(e.target.value)} />
          <datalist id="id-types">
            {TYPES.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="id-value">Value</label>
          <input id="id-value" value={value} onChange={(e) => setValue(e.target.value)} placeholder="u123, a@b.co…" />
        </div>
        <button type="submit" disabled={!type.trim() || !value.trim()}>
          Look up
        </button>
      </form>
      {current ? (
        <Profile key={current} spaceId={spaceId} identifier={current} />
      ) : (
        <p className="empty">Look a profile up by any of its identifiers: a user id, an anonymous id, an email or a custom type.</p>
      )}
    </section>
  );
}

function Profile({ spaceId, identifier }: { spaceId: string; identifier: string }) {
  const path = { spaceId, collection: 'users' as const, identifier };
  const traits = useQuery({
    queryKey: ['profile', spaceId, identifier, 'traits'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/traits', {
          params: { path, query: { limit: '200' } },
        }),
      ),
  });
  const found = traits.isSuccess;
  const audiences = useQuery({
    queryKey: ['profile', spaceId, identifier, 'audiences'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/traits', {
          params: { path, query: { class: 'audience', limit: '200' } },
        }),
      ),
    enabled: found,
  });
  const computed = useQuery({
    queryKey: ['profile', spaceId, identifier, 'computed'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/traits', {
          params: { path, query: { class: 'computed_trait', limit: '200' } },
        }),
      ),
    enabled: found,
  });
  const ids = useQuery({
    queryKey: ['profile', spaceId, identifier, 'external_ids'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/external_ids', {
          params: { path, query: { limit: '100' } },
        }),
      ),
    enabled: found,
  });
  const events = useQuery({
    queryKey: ['profile', spaceId, identifier, 'events'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/events', { params: { path, query: { limit: '25' } } }),
      ),
    enabled: found,
  });
  const merges = useQuery({
    queryKey: ['profile', spaceId, identifier, 'merges'],
    queryFn: () =>
      unwrap(
        api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/merges', {
          params: { path, query: { limit: '100' } },
        }),
      ),
    enabled: found,
  });
  const metadata = useQuery({
    queryKey: ['profile', spaceId, identifier, 'metadata'],
    queryFn: () => unwrap(api.GET('/v1/spaces/{spaceId}/collections/{collection}/profiles/{identifier}/metadata', { params: { path } })),
    enabled: found,
  });

  if (traits.isPending) return <p aria-busy="true">Looking up {identifier}…</p>;
  if (traits.error instanceof ApiFailure && traits.error.status === 404) {
    return (
      <p className="empty" role="status">
        No profile with <code>{identifier}</code> in this space. Identifiers are matched exactly (emails as sent).
      </p>
    );
  }
  if (traits.error) return <ErrorNote error={traits.error} />;

  const audienceKeys = new Set(Object.keys(audiences.data?.traits ?? {}));
  const computedKeys = new Set(Object.keys(computed.data?.traits ?? {}));
  const custom = Object.fromEntries(Object.entries(traits.data.traits).filter(([k]) => !audienceKeys.has(k) && !computedKeys.has(k)));

  return (
    <div className="profile-grid" data-testid="profile">
      <KeyValues title="Traits" values={custom} empty="No custom traits." />
      <KeyValues title="Audiences" values={audiences.data?.traits ?? {}} empty="In no audience." />
      <KeyValues title="Computed traits" values={computed.data?.traits ?? {}} empty="No computed trait values." />
      <section aria-labelledby="ids-title">
        <h2 id="ids-title">Identifiers</h2>
        {ids.error && <ErrorNote error={ids.error} />}
        <ul>
          {(ids.data?.data ?? []).map((x) => (
            <li key={`${x.type}:${x.id}`}>
              <span className="muted">{x.type}</span> {x.id}
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="events-title">
        <h2 id="events-title">Recent events</h2>
        {events.error && <ErrorNote error={events.error} />}
        {events.data && events.data.data.length === 0 && <p className="muted">No events kept for this profile.</p>}
        <ol className="timeline">
          {(events.data?.data ?? []).map((e) => {
            const ev = e as { message_id?: string; type?: string; event?: string; name?: string; timestamp?: string };
            return (
              <li key={ev.message_id}>
                <strong>{ev.event ?? ev.name ?? ev.type}</strong> <span className="muted">{ev.type}</span>
                <div className="muted">{formatTime(ev.timestamp)}</div>
              </li>
            );
          })}
        </ol>
      </section>
      <section aria-labelledby="merges-title" data-testid="merges">
        <h2 id="merges-title">Merges</h2>
        {merges.error && <ErrorNote error={merges.error} />}
        {merges.data && merges.data.data.length === 0 && (
          <p className="muted">No merges: no other profile has been merged into this one.</p>
        )}
        <ol className="timeline">
          {(merges.data?.data ?? []).map((m) => (
            <li key={m.segment_id}>
              <code>{m.segment_id}</code>
              <div className="muted" title={m.event_key ? `merged by event ${m.event_key}` : undefined}>
                merged {formatTime(m.merged_at)}
              </div>
            </li>
          ))}
        </ol>
        {merges.data?.cursor.has_more && <p className="muted">Older merges not shown (the 100 most recent are).</p>}
      </section>
      <KeyValues title="Metadata" values={metadata.data?.metadata ?? {}} empty="…" wide />
    </div>
  );
}

function KeyValues(props: { title: string; values: Record<string, unknown>; empty: string; wide?: boolean }) {
  const { title, values, empty } = props;
  const entries = Object.entries(values);
  return (
    <section aria-label={title} className={props.wide ? 'wide' : undefined}>
      <h2>{title}</h2>
      {entries.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <dl className="kv">
          {entries.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}
