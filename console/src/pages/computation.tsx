// An audience's (or computed trait's) overview: its definition, status and size (and the size over
// time: history-charts.tsx), its destinations
// as Segment's overview shows them (destination, matching mappings or Not
// applicable, destination status, sync status), "+ Add destination" with the
// connection's settings, and the CSV in its three formats.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { ApiFailure, api, download, unwrap, type Schemas } from '../api/client';
import { connect, getComputation, LABELS, listConnections, type Kind } from '../api/computations';
import { ErrorNote, formatTime, StatusBadge } from './common';
import { SizeHistoryChart } from './history-charts';

export function ComputationPage({ kind }: { kind: Kind }) {
  const { spaceId, id } = useParams() as { spaceId: string; id: string };
  const label = LABELS[kind];
  const audience = useQuery({
    queryKey: [kind, spaceId, id],
    queryFn: () => getComputation(kind, spaceId, id),
    refetchInterval: (q) => (['Preparing', 'Computing'].includes(q.state.data?.status ?? '') ? 1000 : 10000),
  });
  const a = audience.data;
  return (
    <section>
      <p>
        <Link to={`/spaces/${spaceId}/${kind}`}>← {label.title}</Link>
      </p>
      {audience.isPending && <p aria-busy="true">Loading the {label.one}…</p>}
      {audience.error && <ErrorNote error={audience.error} />}
      {a && (
        <>
          <div className="page-head">
            <h1>{a.name}</h1>
            <div className="row">
              <StatusBadge computation={a} />
              <Link className="button secondary" to={`/spaces/${spaceId}/${kind}/${a.id}/edit`}>
                Edit
              </Link>
            </div>
          </div>
          <dl className="facts">
            {kind === 'audiences' && (
              <div>
                <dt>Size</dt>
                <dd data-testid="audience-size">{a.size.toLocaleString()}</dd>
              </div>
            )}
            <div>
              <dt>Key</dt>
              <dd>
                <code>{a.key}</code>
              </dd>
            </div>
            <div>
              <dt>Members</dt>
              <dd>{a.definition.type}</dd>
            </div>
            <div>
              <dt>Compute</dt>
              <dd>
                {a.options.computeMode}, {a.options.includeHistoricalData ? 'with' : 'without'} historical data
              </dd>
            </div>
            <div>
              <dt>Updated</dt>
              <dd>{formatTime(a.updatedAt)}</dd>
            </div>
          </dl>
          {a.description && <p>{a.description}</p>}
          <pre className="query">{a.definition.query}</pre>
          <SizeHistoryChart spaceId={spaceId} kind={kind} computationId={a.id} />
          <Destinations kind={kind} spaceId={spaceId} audience={a} />
          {kind === 'audiences' && <CsvDownloads spaceId={spaceId} audience={a} />}
        </>
      )}
    </section>
  );
}

function Destinations({ kind, spaceId, audience }: { kind: Kind; spaceId: string; audience: Schemas['Computation'] }) {
  const [adding, setAdding] = useState(false);
  const connections = useQuery({
    queryKey: ['connections', spaceId, audience.id],
    queryFn: () => listConnections(kind, spaceId, audience.id),
    refetchInterval: 5000,
  });
  const destinations = useQuery({
    queryKey: ['destinations', spaceId],
    queryFn: () =>
      unwrap(api.GET('/spaces/{spaceId}/destinations', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
  });
  const byId = new Map((destinations.data?.data.destinations ?? []).map((d) => [d.id, d]));
  const list = connections.data ?? [];
  const connected = new Set(list.map((c) => c.destinationId));
  const available = (destinations.data?.data.destinations ?? []).filter((d) => !connected.has(d.id));

  return (
    <section aria-labelledby="destinations-title">
      <div className="page-head">
        <h2 id="destinations-title">Destinations</h2>
        {!adding && (
          <button type="button" onClick={() => setAdding(true)}>
            + Add destination
          </button>
        )}
      </div>
      {connections.error && <ErrorNote error={connections.error} />}
      {connections.isSuccess && list.length === 0 && !adding && (
        <p className="empty">Not sent anywhere yet. Add a destination to send entries and exits as they happen.</p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Connected destinations">
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">Matching mappings</th>
                <th scope="col">Destination status</th>
                <th scope="col">Sync status</th>
                <th scope="col">Sends</th>
              </tr>
            </thead>
            <tbody>
              {list.map((c) => {
                const d = byId.get(c.destinationId);
                return (
                  <tr key={c.id}>
                    <td>
                      {d?.name ?? c.destinationId} <span className="muted">{d?.type}</span>
                    </td>
                    <td>
                      {c.matchingMappings ? `${c.matchingMappings.matching} of ${c.matchingMappings.enabled} enabled` : 'Not applicable'}
                    </td>
                    <td>
                      <span className={`badge ${c.status === 'Connected' ? 'ok' : c.status === 'Disconnected' ? 'bad' : 'neutral'}`}>
                        {c.status}
                      </span>
                    </td>
                    <td>
                      {c.syncStatus.state}
                      {c.syncStatus.state === 'Syncing' && (
                        // NOTE: the API counts what was sent, not what is left, so the bar has no value (indeterminate).
                        <span className="status">
                          {' '}
                          <progress aria-label={`${d?.name ?? c.destinationId} sync in progress`} />
                          <span className="muted">{c.syncStatus.sent.toLocaleString()} sent so far</span>
                        </span>
                      )}
                      {c.syncStatus.lastSyncAt && <span className="muted"> · {formatTime(c.syncStatus.lastSyncAt)}</span>}
                      {c.syncStatus.lastError && <div className="error">{c.syncStatus.lastError}</div>}
                    </td>
                    <td>
                      {[c.settings.identify && 'identify', c.settings.track && 'track', c.settings.group && 'group']
                        .filter(Boolean)
                        .join(', ')}{' '}
                      <span className="muted">
                        {c.syncStatus.sent} sent, {c.syncStatus.failed} failed
                      </span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {adding && (
        <AddDestination
          spaceId={spaceId}
          kind={kind}
          audience={audience}
          available={available}
          loading={destinations.isPending}
          onDone={() => setAdding(false)}
        />
      )}
    </section>
  );
}

const IDENTIFIER_TYPES = ['user_id', 'anonymous_id', 'email', 'phone', 'ios.id', 'android.id'];

function AddDestination(props: {
  spaceId: string;
  kind: Kind;
  audience: Schemas['Computation'];
  available: Schemas['DestinationWithStatus'][];
  loading: boolean;
  onDone: () => void;
}) {
  const queryClient = useQueryClient();
  const [destinationId, setDestinationId] = useState('');
  const [identify, setIdentify] = useState(true);
  const [track, setTrack] = useState(false);
  const [enteredEvent, setEnteredEvent] = useState('');
  const [exitedEvent, setExitedEvent] = useState('');
  const [identifierTypes, setIdentifierTypes] = useState<string[]>([]);
  const [enrichment, setEnrichment] = useState('');
  const [idSync, setIdSync] = useState<IdSyncRow[]>([]);
  const traitEnrichment = enrichment
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const isAudience = props.kind === 'audiences';
  const connection = useMutation({
    mutationFn: () =>
      connect(props.kind, props.spaceId, props.audience.id, {
        destinationId,
        enabled: true,
        settings: {
          identify,
          track,
          ...(isAudience && track && enteredEvent.trim() ? { enteredEvent: enteredEvent.trim() } : {}),
          ...(isAudience && track && exitedEvent.trim() ? { exitedEvent: exitedEvent.trim() } : {}),
          // ID Sync replaces identifierTypes (docs/api.md "Trait Activation"): one or the other is sent.
          ...(idSync.length > 0 ? { idSync: idSync.map(toIdSyncEntry) } : identifierTypes.length > 0 ? { identifierTypes } : {}),
          ...(traitEnrichment.length > 0 ? { traitEnrichment } : {}),
        },
      }),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ['connections', props.spaceId, props.audience.id] });
      props.onDone();
    },
  });
  const failure = connection.error instanceof ApiFailure ? connection.error : null;
  const err = (field: string) => failure?.forField(field);
  /** Only the errors about `field` itself, not a field under it (settings.idSync.0.limit has its own place). */
  const exact = (field: string) => failure?.errors.find((e) => e.field === field)?.message;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    connection.mutate();
  };
  if (!props.loading && props.available.length === 0) {
    return (
      <div className="empty">
        <p>
          No destination of this space is left to connect: <Link to={`/spaces/${props.spaceId}/destinations`}>create one</Link> first, then
          come back.
        </p>
        <button type="button" onClick={props.onDone}>
          Close
        </button>
      </div>
    );
  }
  const toggleType = (t: string) => setIdentifierTypes((ts) => (ts.includes(t) ? ts.filter((x) => x !== t) : [...ts, t]));
  return (
    <form className="stack panel" onSubmit={submit} aria-label="Add destination">
      <div className="field">
        <label htmlFor="destination">Destination</label>
        <select
          id="destination"
          value={destinationId}
          onChange={(e) => setDestinationId(e.target.value)}
          aria-invalid={err('destinationId') !== undefined}
        >
          <option value="">Choose a destination…</option>
          {props.available.map((d) => (
            <option key={d.id} value={d.id}>
              {d.name} ({d.type})
            </option>
          ))}
        </select>
        {err('destinationId') && (
          <p className="field-error" role="alert">
            {err('destinationId')}
          </p>
        )}
      </div>
      <fieldset>
        <legend>Send</legend>
        <label className="choice">
          <input type="checkbox" checked={identify} onChange={(e) => setIdentify(e.target.checked)} /> Identify (trait{' '}
          <code>{props.audience.key}</code>: {isAudience ? 'true / false' : 'its value'})
        </label>
        <label className="choice">
          <input type="checkbox" checked={track} onChange={(e) => setTrack(e.target.checked)} /> Track (
          {isAudience ? 'Audience Entered / Audience Exited' : 'Trait Computed'})
        </label>
        {(exact('settings') ?? err('settings.identify') ?? err('settings.track')) && (
          <p className="field-error" role="alert">
            {exact('settings') ?? err('settings.identify') ?? err('settings.track')}
          </p>
        )}
      </fieldset>
      {isAudience && track && (
        <div className="row">
          <div className="field">
            <label htmlFor="entered-event">Entered event name</label>
            <input
              id="entered-event"
              value={enteredEvent}
              placeholder="Audience Entered"
              onChange={(e) => setEnteredEvent(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor="exited-event">Exited event name</label>
            <input id="exited-event" value={exitedEvent} placeholder="Audience Exited" onChange={(e) => setExitedEvent(e.target.value)} />
          </div>
        </div>
      )}
      {idSync.length === 0 && (
        <fieldset>
          <legend>Identifiers to send (none chosen: the destination's default)</legend>
          {IDENTIFIER_TYPES.map((t) => (
            <label key={t} className="choice">
              <input type="checkbox" checked={identifierTypes.includes(t)} onChange={() => toggleType(t)} /> {t}
            </label>
          ))}
          {err('settings.identifierTypes') && (
            <p className="field-error" role="alert">
              {err('settings.identifierTypes')}
            </p>
          )}
        </fieldset>
      )}
      <TraitActivation enrichment={enrichment} onEnrichment={setEnrichment} idSync={idSync} onIdSync={setIdSync} err={err} exact={exact} />
      {failure && !failure.errors.some((e) => e.field && SHOWN_BESIDE.test(e.field)) && <ErrorNote error={failure} />}
      {connection.error && !failure && <ErrorNote error={connection.error} />}
      <div className="row">
        <button type="submit" disabled={destinationId === '' || connection.isPending}>
          {connection.isPending ? 'Connecting…' : 'Connect'}
        </button>
        <button type="button" className="link" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The fields the form shows an error beside; any other error is shown under the form. */
const SHOWN_BESIDE = /^(destinationId|settings(\.(identify|track|identifierTypes|traitEnrichment|idSync)(\..*)?)?)$/;

type IdSyncRow = { type: string; strategy: 'last' | 'first' | 'all'; limit: string };
const toIdSyncEntry = (r: IdSyncRow) => ({
  type: r.type.trim(),
  strategy: r.strategy,
  // NOTE: sent as typed, even beside "last"/"first": the API's 422 says what is wrong, under the field.
  ...(r.limit.trim() !== '' ? { limit: Number(r.limit) } : {}),
});

/**
 * Segment's Trait Enrichment and ID Sync (docs/api.md "Trait Activation"): trait
 * names to add to each call, and per identifier type which of the profile's
 * values to send. Without them the connection keeps the default setup.
 */
function TraitActivation(props: {
  enrichment: string;
  onEnrichment: (v: string) => void;
  idSync: IdSyncRow[];
  onIdSync: (rows: IdSyncRow[]) => void;
  err: (field: string) => string | undefined;
  exact: (field: string) => string | undefined;
}) {
  const { idSync, onIdSync, err, exact } = props;
  const set = (i: number, patch: Partial<IdSyncRow>) => onIdSync(idSync.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const fieldError = (id: string, message: string | undefined) =>
    message && (
      <p id={id} className="field-error" role="alert">
        {message}
      </p>
    );
  return (
    <fieldset>
      <legend>Trait activation</legend>
      <div className="field">
        <label htmlFor="trait-enrichment">Trait enrichment</label>
        <input
          id="trait-enrichment"
          value={props.enrichment}
          placeholder="lifetime_value, plan"
          onChange={(e) => props.onEnrichment(e.target.value)}
          aria-describedby="trait-enrichment-help"
          aria-invalid={err('settings.traitEnrichment') !== undefined}
        />
        <p className="help" id="trait-enrichment-help">
          Computed trait keys or custom traits, comma-separated: their values go into each identify&apos;s traits and each track&apos;s
          context.traits.
        </p>
        {fieldError('trait-enrichment-error', err('settings.traitEnrichment'))}
      </div>
      <div className="field">
        <span className="label">ID sync</span>
        <p className="help">
          Which of the profile&apos;s identifiers of a type each call carries: the newest, the oldest, or all (up to a limit). Types not
          listed are not sent; none listed: the identifiers chosen above.
        </p>
        {idSync.map((r, i) => (
          <div className="row wrap id-sync-row" key={i} data-testid={`id-sync-${i}`}>
            <div className="field">
              <label htmlFor={`id-sync-${i}-type`}>Type</label>
              <input
                id={`id-sync-${i}-type`}
                list="identifier-types"
                value={r.type}
                onChange={(e) => set(i, { type: e.target.value })}
                aria-invalid={err(`settings.idSync.${i}.type`) !== undefined}
              />
              {fieldError(`id-sync-${i}-type-error`, err(`settings.idSync.${i}.type`))}
            </div>
            <div className="field">
              <label htmlFor={`id-sync-${i}-strategy`}>Strategy</label>
              <select
                id={`id-sync-${i}-strategy`}
                value={r.strategy}
                onChange={(e) => set(i, { strategy: e.target.value as IdSyncRow['strategy'] })}
                aria-invalid={err(`settings.idSync.${i}.strategy`) !== undefined}
              >
                <option value="last">last (newest)</option>
                <option value="first">first (oldest)</option>
                <option value="all">all</option>
              </select>
              {fieldError(`id-sync-${i}-strategy-error`, err(`settings.idSync.${i}.strategy`))}
            </div>
            <div className="field">
              <label htmlFor={`id-sync-${i}-limit`}>Limit (with all)</label>
              <input
                id={`id-sync-${i}-limit`}
                type="number"
                min={1}
                max={10}
                value={r.limit}
                placeholder="10"
                onChange={(e) => set(i, { limit: e.target.value })}
                aria-invalid={err(`settings.idSync.${i}.limit`) !== undefined}
                aria-describedby={err(`settings.idSync.${i}.limit`) ? `id-sync-${i}-limit-error` : undefined}
              />
              {fieldError(`id-sync-${i}-limit-error`, err(`settings.idSync.${i}.limit`))}
            </div>
            <button type="button" className="link" onClick={() => onIdSync(idSync.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <datalist id="identifier-types">
          {IDENTIFIER_TYPES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        {fieldError('id-sync-error', exact('settings.idSync'))}
        <div>
          <button
            type="button"
            className="secondary"
            onClick={() => onIdSync([...idSync, { type: idSync.length === 0 ? 'email' : '', strategy: 'last', limit: '' }])}
          >
            + Add identifier type
          </button>
        </div>
      </div>
    </fieldset>
  );
}

function CsvDownloads({ spaceId, audience }: { spaceId: string; audience: Schemas['Computation'] }) {
  const [error, setError] = useState<Error | null>(null);
  const base = `/spaces/${encodeURIComponent(spaceId)}/audiences/${encodeURIComponent(audience.id)}/csv`;
  const formats: Array<[string, string, string]> = [
    ['Unformatted', 'format=unformatted', 'one row per profile, its identifiers as JSON'],
    ['Formatted', 'format=formatted', 'a column per identifier type'],
    ['Single column', 'format=single_column&idType=email&hashed=true', 'emails, SHA-256 hashed'],
  ];
  const get = (query: string) => {
    setError(null);
    download(`${base}?${query}`, `${audience.key}.csv`).catch(setError);
  };
  return (
    <section aria-labelledby="csv-title">
      <h2 id="csv-title">Download members (CSV)</h2>
      <div className="row wrap">
        {formats.map(([label, query, help]) => (
          <button key={label} type="button" className="secondary" onClick={() => get(query)} title={help}>
            {label}
          </button>
        ))}
      </div>
      {error && <ErrorNote error={error} />}
    </section>
  );
}
