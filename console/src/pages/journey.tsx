// One journey: its entry, its steps as a flow from the start (each step's
// type, what it does, where it leads, and how many users are at it now and
// reached it, from `stats`), its published versions, and the lifecycle
// buttons (publish the draft, pause / resume, archive) with the state each
// one leaves it in, or the API's refusal.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { api, unwrap, type Schemas } from '../api/client';
import type { paths } from '../api/generated/schema';
import { ErrorList, ErrorNote, formatTime, TableFrame } from './common';
import { enteredAtStart, journeyQueryKey, JourneyStatus, useDestinationList } from './journeys';

type Journey = Schemas['Journey'];
type Step = Journey['steps'][number];
type Action = 'publish' | 'pause' | 'resume' | 'archive';
type JourneyPatch = NonNullable<paths['/spaces/{spaceId}/journeys/{id}']['patch']['requestBody']>['content']['application/json'];

/** Where a step leads, labelled as its definition names each way out. */
function exits(step: Step): Array<{ label: string; to: string }> {
  switch (step.type) {
    case 'send':
    case 'wait':
      return [{ label: 'next', to: step.next }];
    case 'split':
      return [
        { label: 'true', to: step.true },
        { label: 'false', to: step.false },
      ];
    case 'branch':
      return [...step.branches.map((b, i) => ({ label: b.name ?? `branch ${i + 1}`, to: b.next })), { label: 'else', to: step.else }];
    case 'exit':
      return [];
  }
}

/** The steps in the order a user can meet them (breadth-first from start), then any the start does not reach. */
function flowOrder(steps: Step[], start: string): Step[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const seen = new Set<string>();
  const order: Step[] = [];
  const queue = [start];
  while (queue.length > 0) {
    const id = queue.shift()!;
    const step = byId.get(id);
    if (!step || seen.has(id)) continue;
    seen.add(id);
    order.push(step);
    queue.push(...exits(step).map((e) => e.to));
  }
  return [...order, ...steps.filter((s) => !seen.has(s.id))];
}

const DONE: Record<Action, (j: Journey) => string> = {
  publish: (j) => `Published version ${j.versions.length}: the journey is ${j.status}.`,
  pause: (j) => `Paused: no one enters or moves on (${j.status}).`,
  resume: (j) => `Resumed: the journey is ${j.status}.`,
  archive: (j) => `Archived: its audiences and connections are deleted (${j.status}).`,
};

export function JourneyPage() {
  const { spaceId, id } = useParams() as { spaceId: string; id: string };
  const queryClient = useQueryClient();
  const key = [...journeyQueryKey(spaceId), id];
  const [confirmArchive, setConfirmArchive] = useState(false);
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState(false);
  const journey = useQuery({
    queryKey: key,
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/journeys/{id}', { params: { path: { spaceId, id } } })),
    // Users move through the steps while it runs.
    refetchInterval: (q) => (q.state.data?.data.journey.status === 'Live' ? 3000 : 15000),
  });
  const destinations = useDestinationList(spaceId);
  const act = useMutation({
    mutationFn: (action: Action) => {
      const params = { path: { spaceId, id } };
      switch (action) {
        case 'publish':
          return unwrap(api.POST('/spaces/{spaceId}/journeys/{id}/publish', { params }));
        case 'pause':
          return unwrap(api.POST('/spaces/{spaceId}/journeys/{id}/pause', { params }));
        case 'resume':
          return unwrap(api.POST('/spaces/{spaceId}/journeys/{id}/resume', { params }));
        case 'archive':
          return unwrap(api.POST('/spaces/{spaceId}/journeys/{id}/archive', { params }));
      }
    },
    onMutate: () => {
      setConfirmArchive(false);
      setSaved(false);
    },
    onSuccess: async (res) => {
      queryClient.setQueryData(key, res);
      await queryClient.invalidateQueries({ queryKey: journeyQueryKey(spaceId), exact: true });
    },
  });
  const j = journey.data?.data.journey;
  const names = new Map((destinations.data ?? []).map((d) => [d.id, d.name]));

  return (
    <section>
      <p>
        <Link to={`/spaces/${spaceId}/journeys`}>← Journeys</Link>
      </p>
      {journey.isPending && <p aria-busy="true">Loading the journey…</p>}
      {journey.error && <ErrorNote error={journey.error} />}
      {j && (
        <>
          <div className="page-head">
            <h1>
              {j.name} <span className="muted">{j.key}</span>
            </h1>
            <div className="row wrap">
              <JourneyStatus journey={j} />
              <button
                type="button"
                disabled={act.isPending || !j.draftChanged || j.status === 'Archived'}
                onClick={() => act.mutate('publish')}
                title={j.draftChanged ? 'Freeze the draft as a new version and make the journey Live' : 'The draft is the latest version'}
              >
                Publish
              </button>
              {j.status === 'Paused' ? (
                <button type="button" className="secondary" disabled={act.isPending} onClick={() => act.mutate('resume')}>
                  Resume
                </button>
              ) : (
                <button
                  type="button"
                  className="secondary"
                  disabled={act.isPending || j.status !== 'Live'}
                  onClick={() => act.mutate('pause')}
                >
                  Pause
                </button>
              )}
              <button
                type="button"
                className="secondary"
                disabled={editing || j.status === 'Archived'}
                onClick={() => {
                  setEditing(true);
                  setSaved(false);
                }}
              >
                Edit draft
              </button>
              {confirmArchive ? (
                <>
                  <button type="button" className="danger" disabled={act.isPending} onClick={() => act.mutate('archive')}>
                    Archive for good
                  </button>
                  <button type="button" className="secondary" onClick={() => setConfirmArchive(false)}>
                    Keep it
                  </button>
                </>
              ) : (
                <button
                  type="button"
                  className="secondary"
                  disabled={act.isPending || j.status === 'Archived'}
                  onClick={() => setConfirmArchive(true)}
                >
                  Archive
                </button>
              )}
            </div>
          </div>
          {act.error && <ErrorNote error={act.error} />}
          {editing && (
            <EditDraft
              spaceId={spaceId}
              journey={j}
              onCancel={() => setEditing(false)}
              onSaved={(res) => {
                queryClient.setQueryData(key, res);
                void queryClient.invalidateQueries({ queryKey: journeyQueryKey(spaceId), exact: true });
                act.reset();
                setEditing(false);
                setSaved(true);
              }}
            />
          )}
          {saved && (
            <p role="status" className="ok" data-testid="journey-draft-saved">
              Saved the draft
              {j.draftChanged ? `: publish to make it version ${j.versions.length + 1}.` : ', the same as the latest version.'}
            </p>
          )}
          {act.isSuccess && act.variables && (
            <p role="status" className="ok" data-testid="journey-action-result">
              {DONE[act.variables](act.data.data.journey)}
            </p>
          )}
          {confirmArchive && (
            <p className="help">
              Archiving is final: users stop where they are, and the journey&apos;s audiences and connections are deleted.
            </p>
          )}
          <dl className="facts">
            <div>
              <dt>Entry</dt>
              <dd>
                {'audienceId' in j.entry ? (
                  <Link to={`/spaces/${spaceId}/audiences/${j.entry.audienceId}`}>{j.entry.audienceId}</Link>
                ) : (
                  <code>{j.entry.query}</code>
                )}
              </dd>
            </div>
            <div>
              <dt>Re-entry</dt>
              <dd>{j.reentry === 'never' ? 'Never' : 'After exit'}</dd>
            </div>
            <div>
              <dt>Existing members</dt>
              <dd>{j.includeExistingMembers ? 'Enter' : 'Do not enter'}</dd>
            </div>
            <div>
              <dt>Versions</dt>
              <dd data-testid="journey-versions">{j.versions.length}</dd>
            </div>
            <div>
              <dt>Entered</dt>
              <dd>{enteredAtStart(j).toLocaleString()}</dd>
            </div>
            <div>
              <dt>Updated</dt>
              <dd>{formatTime(j.updatedAt)}</dd>
            </div>
          </dl>
          {j.draftChanged && j.versions.length > 0 && j.status !== 'Archived' && (
            <p className="help">The draft below differs from version {j.versions.length}: publish to make it the one new entrants walk.</p>
          )}
          <h2>Steps</h2>
          <Steps journey={j} names={names} spaceId={spaceId} />
          <h2>Versions</h2>
          {j.versions.length === 0 ? (
            <p className="empty">Never published: no one enters a Draft journey. Publish it to make it Live.</p>
          ) : (
            <TableFrame label="Versions" columns={[{ label: 'Version', num: true }, 'Published', 'Start', { label: 'Steps', num: true }]}>
              {j.versions.map((v) => (
                <tr key={v.version}>
                  <td className="num">{v.version}</td>
                  <td>{formatTime(v.publishedAt)}</td>
                  <td>
                    <code>{v.start}</code>
                  </td>
                  <td className="num">{v.steps.length}</td>
                </tr>
              ))}
            </TableFrame>
          )}
        </>
      )}
    </section>
  );
}

/** The draft's editable fields (everything but the key, which names the journey's audiences and step keys). */
const draftOf = (j: Journey): JourneyPatch => ({
  name: j.name,
  entry: j.entry,
  reentry: j.reentry,
  includeExistingMembers: j.includeExistingMembers,
  start: j.start,
  steps: j.steps,
});

/**
 * The draft as JSON, PATCHed whole; a Live journey keeps walking its latest
 * version until the draft is published. The API's 400/422 messages (naming
 * fields such as steps.wait.duration) are shown under the text.
 */
function EditDraft({
  spaceId,
  journey,
  onCancel,
  onSaved,
}: {
  spaceId: string;
  journey: Journey;
  onCancel: () => void;
  onSaved: (res: { data: { journey: Journey } }) => void;
}) {
  const [text, setText] = useState(() => JSON.stringify(draftOf(journey), null, 2));
  const [parseError, setParseError] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (body: JourneyPatch) =>
      unwrap(api.PATCH('/spaces/{spaceId}/journeys/{id}', { params: { path: { spaceId, id: journey.id } }, body })),
    onSuccess: onSaved,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      setParseError(`Not JSON: ${(err as Error).message}`);
      return;
    }
    setParseError(null);
    save.mutate(body as JourneyPatch);
  };
  const invalid = parseError !== null || save.error !== null;
  return (
    <form className="stack panel" onSubmit={submit} aria-label="Edit draft">
      <h2>Edit the draft</h2>
      <div className="field">
        <label htmlFor="journey-draft-json">Draft (JSON)</label>
        <p className="help" id="journey-draft-help">
          Name, entry, re-entry, existing members, start and steps; the key cannot change. Saving does not change what users walk: publish
          the draft for that.
        </p>
        <textarea
          id="journey-draft-json"
          className="code"
          rows={24}
          spellCheck={false}
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-invalid={invalid}
          aria-describedby={invalid ? 'journey-draft-help journey-draft-errors' : 'journey-draft-help'}
        />
        {parseError && (
          <p id="journey-draft-errors" className="field-error" role="alert">
            {parseError}
          </p>
        )}
        {!parseError && save.error && <ErrorList id="journey-draft-errors" error={save.error} />}
      </div>
      <div className="row">
        <button type="submit" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : 'Save draft'}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Steps({ journey: j, names, spaceId }: { journey: Journey; names: Map<string, string>; spaceId: string }) {
  const stats = new Map(j.stats.map((s) => [s.id, s]));
  const count = (n: number | undefined) => (n === undefined ? '—' : n.toLocaleString());
  return (
    <TableFrame label="Steps" columns={['Step', 'Type', 'Does', 'Next', { label: 'Current', num: true }, { label: 'Entered', num: true }]}>
      {flowOrder(j.steps, j.start).map((step) => (
        <tr key={step.id} id={`step-${step.id}`}>
          <td>
            {step.type === 'send' ? (
              <>
                {step.name} <span className="muted">{step.id}</span>
              </>
            ) : (
              step.id
            )}
            {step.id === j.start && (
              <>
                {' '}
                <span className="badge">start</span>
              </>
            )}
          </td>
          <td>{step.type}</td>
          <td className="wrap">
            <StepDetail step={step} stepKey={j.stepKeys[step.id]} names={names} spaceId={spaceId} />
          </td>
          <td>
            {exits(step).map((e) => (
              <div key={e.label}>
                {e.label === 'next' ? '' : `${e.label} `}→ <a href={`#step-${e.to}`}>{e.to}</a>
              </div>
            ))}
            {step.type === 'exit' && <span className="muted">leaves</span>}
          </td>
          <td className="num">{count(stats.get(step.id)?.current)}</td>
          <td className="num">{count(stats.get(step.id)?.entered)}</td>
        </tr>
      ))}
    </TableFrame>
  );
}

function StepDetail({ step, stepKey, names, spaceId }: { step: Step; stepKey?: string; names: Map<string, string>; spaceId: string }) {
  switch (step.type) {
    case 'send':
      return (
        <>
          <div>
            Key <code>{stepKey ?? '—'}</code>
          </div>
          {step.destinations.map((d) => {
            const calls = (['identify', 'track'] as const).filter((c) => d.settings?.[c] !== false);
            return (
              <div key={d.destinationId}>
                To <Link to={`/spaces/${spaceId}/destinations/${d.destinationId}`}>{names.get(d.destinationId) ?? d.destinationId}</Link>{' '}
                <span className="muted">({calls.join(', ') || 'no calls'})</span>
              </div>
            );
          })}
        </>
      );
    case 'wait':
      return <>Wait {step.duration}</>;
    case 'split':
      return (
        <>
          If <code>{step.query}</code>
        </>
      );
    case 'branch':
      return (
        <>
          {step.branches.map((b, i) => (
            <div key={i}>
              {b.name ?? `branch ${i + 1}`}: <code>{b.query}</code>
            </div>
          ))}
          <div className="muted">first that holds; otherwise else</div>
        </>
      );
    case 'exit':
      return <span className="muted">Leaves the journey</span>;
  }
}
