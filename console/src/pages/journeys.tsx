// The journeys of a space (CONTRACT.md section 9): name, key, status, how many
// versions were published and how many users entered at the first step; and
// a "New journey" form that takes the journey as JSON, prefilled with the
// contract's example shape (with this space's first audience and destination
// when it has them), showing the API's 400/409/422 messages beside it.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import { listComputations } from '../api/computations';
import type { paths } from '../api/generated/schema';
import { ErrorList, ErrorNote, formatTime, TableFrame } from './common';

type Journey = Schemas['Journey'];
type JourneyInput = NonNullable<paths['/spaces/{spaceId}/journeys']['post']['requestBody']>['content']['application/json'];

export function journeyQueryKey(spaceId: string) {
  return ['journeys', spaceId];
}

export function JourneyStatus({ journey }: { journey: Pick<Journey, 'status'> }) {
  const tone = journey.status === 'Live' ? 'ok' : 'neutral';
  return (
    <span className={`badge ${tone}`} data-testid="journey-status">
      {journey.status}
    </span>
  );
}

/** The space's destinations (ids and names), for the journey template and the steps' destination names. */
export function useDestinationList(spaceId: string) {
  return useQuery({
    queryKey: ['destination-list', spaceId],
    queryFn: async () =>
      (await unwrap(api.GET('/spaces/{spaceId}/destinations', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })))
        .data.destinations,
  });
}

/** Users who entered at the first step of the version new entrants walk (the draft's when never published). */
export function enteredAtStart(j: Journey): number {
  const start = j.versions.at(-1)?.start ?? j.start;
  return j.stats.find((s) => s.id === start)?.entered ?? 0;
}

export function JourneysPage() {
  const spaceId = useParams().spaceId!;
  const [adding, setAdding] = useState(false);
  const [created, setCreated] = useState<Journey | null>(null);
  const journeys = useQuery({
    queryKey: journeyQueryKey(spaceId),
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/journeys', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
    // Users move through steps while a journey is Live.
    refetchInterval: 10000,
  });
  const list = journeys.data?.data.journeys ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>Journeys</h1>
        {!adding && (
          <button type="button" onClick={() => setAdding(true)}>
            + New journey
          </button>
        )}
      </div>
      {journeys.isPending && <p aria-busy="true">Loading journeys…</p>}
      {journeys.error && <ErrorNote error={journeys.error} />}
      {created && !adding && (
        <p role="status" className="ok">
          Created <Link to={`/spaces/${spaceId}/journeys/${created.id}`}>{created.name}</Link> in {created.status}: publish it from its
          page.
        </p>
      )}
      {journeys.isSuccess && list.length === 0 && !adding && (
        <p className="empty">
          No journeys in this space yet. A journey sends users who enter an audience through sends, waits and splits: create one, then
          publish it.
        </p>
      )}
      {list.length > 0 && (
        <TableFrame
          label="Journeys"
          columns={['Name', 'Key', 'Status', { label: 'Versions', num: true }, { label: 'Entered', num: true }, 'Updated']}
        >
          {list.map((j) => (
            <tr key={j.id}>
              <td>
                <Link to={`/spaces/${spaceId}/journeys/${j.id}`}>{j.name}</Link>
              </td>
              <td>
                <code>{j.key}</code>
              </td>
              <td>
                <JourneyStatus journey={j} />
                {j.draftChanged && j.versions.length > 0 && j.status !== 'Archived' && <span className="muted"> (draft changed)</span>}
              </td>
              <td className="num">{j.versions.length}</td>
              <td className="num">{enteredAtStart(j).toLocaleString()}</td>
              <td>{formatTime(j.updatedAt)}</td>
            </tr>
          ))}
        </TableFrame>
      )}
      {adding && (
        <NewJourney
          spaceId={spaceId}
          onCancel={() => setAdding(false)}
          onCreated={(j) => {
            setCreated(j);
            setAdding(false);
          }}
        />
      )}
    </section>
  );
}

/** CONTRACT.md section 9's example, pointed at this space's first audience and destination when there are some. */
function exampleJourney(audienceId: string, destinationId: string) {
  const destinations = [{ destinationId, settings: { identify: true, track: true } }];
  return {
    name: 'First Purchase',
    key: 'first_purchase',
    entry: { audienceId },
    reentry: 'never',
    includeExistingMembers: false,
    steps: [
      { id: 'welcome', type: 'send', name: 'Opened Email', destinations, next: 'wait' },
      { id: 'wait', type: 'wait', duration: '3 days', next: 'bought' },
      { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'thanks', false: 'exit' },
      { id: 'thanks', type: 'send', name: 'Thank You', destinations, next: 'exit' },
      { id: 'exit', type: 'exit' },
    ],
    start: 'welcome',
  };
}

function NewJourney({ spaceId, onCancel, onCreated }: { spaceId: string; onCancel: () => void; onCreated: (j: Journey) => void }) {
  const queryClient = useQueryClient();
  const audiences = useQuery({ queryKey: ['audiences', spaceId], queryFn: () => listComputations('audiences', spaceId) });
  const destinations = useDestinationList(spaceId);
  const ready = !audiences.isPending && !destinations.isPending;
  const template = JSON.stringify(exampleJourney(audiences.data?.[0]?.id ?? 'aud_...', destinations.data?.[0]?.id ?? 'dst_...'), null, 2);
  const [text, setText] = useState<string | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: JourneyInput) => unwrap(api.POST('/spaces/{spaceId}/journeys', { params: { path: { spaceId } }, body })),
    onSuccess: async (res) => {
      await queryClient.invalidateQueries({ queryKey: journeyQueryKey(spaceId) });
      onCreated(res.data.journey);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(text ?? template);
    } catch (err) {
      setParseError(`Not JSON: ${(err as Error).message}`);
      return;
    }
    setParseError(null);
    // NOTE: the shape is the API's to check (400 naming each field); the console does not second-guess it.
    create.mutate(body as JourneyInput);
  };
  const invalid = parseError !== null || create.error !== null;

  return (
    <form className="stack panel" onSubmit={submit} aria-label="New journey">
      <h2>New journey</h2>
      <div className="field">
        <label htmlFor="journey-json">Journey (JSON)</label>
        <p className="help" id="journey-json-help">
          Steps are <code>send</code> (destinations, next), <code>wait</code> (duration such as &quot;3 days&quot;), <code>split</code>{' '}
          (query, true, false), <code>branch</code> and <code>exit</code>; <code>entry</code> is an audience id or{' '}
          <code>{'{"query": "..."}'}</code>.
        </p>
        {ready ? (
          <textarea
            id="journey-json"
            className="code"
            rows={28}
            spellCheck={false}
            value={text ?? template}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={invalid}
            aria-describedby={invalid ? 'journey-json-help journey-errors' : 'journey-json-help'}
          />
        ) : (
          <p aria-busy="true">Loading this space&apos;s audiences and destinations…</p>
        )}
        {parseError && (
          <p id="journey-errors" className="field-error" role="alert">
            {parseError}
          </p>
        )}
        {!parseError && create.error && <ErrorList id="journey-errors" error={create.error} />}
      </div>
      <div className="row">
        <button type="submit" disabled={!ready || create.isPending}>
          Create journey
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
