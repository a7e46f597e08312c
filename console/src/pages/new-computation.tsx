// Create an audience or a computed trait: the query is checked as the user
// types (line:column errors under the text, from POST .../check), and a valid
// audience query is previewed (size and sample profiles, POST .../audiences/preview) before it
// is saved. Errors of the save are shown beside the field they concern.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiFailure, api, unwrap, type Schemas } from '../api/client';
import { checkQuery, createComputation, getComputation, LABELS, updateComputation, type Kind } from '../api/computations';
import { ErrorNote, snakeCase } from './common';

type Level = 'users' | 'accounts';
type ComputeMode = 'realtime' | 'batch';

function useDebounced<T>(value: T, ms: number): T {
  const [current, setCurrent] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setCurrent(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return current;
}

export function NewComputationPage({ kind }: { kind: Kind }) {
  return <ComputationForm kind={kind} spaceId={useParams().spaceId!} />;
}

/** Edit: the same form over the stored computation; key, level and compute mode cannot change (the API refuses). */
export function EditComputationPage({ kind }: { kind: Kind }) {
  const { spaceId, id } = useParams() as { spaceId: string; id: string };
  const current = useQuery({ queryKey: [kind, spaceId, id], queryFn: () => getComputation(kind, spaceId, id) });
  if (current.error) return <ErrorNote error={current.error} />;
  if (!current.data) return <p aria-busy="true">Loading…</p>;
  return <ComputationForm key={current.data.id} kind={kind} spaceId={spaceId} initial={current.data} />;
}

function ComputationForm({ kind, spaceId, initial }: { kind: Kind; spaceId: string; initial?: Schemas['Computation'] }) {
  const label = LABELS[kind];
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [name, setName] = useState(initial?.name ?? '');
  const [key, setKey] = useState(initial?.key ?? '');
  const [description, setDescription] = useState(initial?.description ?? '');
  const [query, setQuery] = useState(initial?.definition.query ?? '');
  const [type, setType] = useState<Level>(initial?.definition.type ?? 'users');
  const [includeHistoricalData, setIncludeHistoricalData] = useState(initial?.options.includeHistoricalData ?? true);
  const [computeMode, setComputeMode] = useState<ComputeMode>(initial?.options.computeMode ?? 'realtime');

  const typed = useDebounced(query.trim(), 250);
  const definition = { query: typed, type };
  const check = useQuery({
    queryKey: ['check', kind, spaceId, typed, type],
    queryFn: () => checkQuery(kind, spaceId, definition),
    enabled: typed !== '',
    placeholderData: (previous) => previous,
  });
  const checked = typed !== '' && check.data && !check.isPlaceholderData ? check.data : null;
  const preview = useQuery({
    queryKey: ['preview', spaceId, typed, type],
    queryFn: () => unwrap(api.POST('/spaces/{spaceId}/audiences/preview', { params: { path: { spaceId } }, body: { definition } })),
    enabled: kind === 'audiences' && checked?.valid === true && type === 'users',
  });

  const save = useMutation({
    mutationFn: () =>
      initial
        ? updateComputation(kind, spaceId, initial.id, {
            name,
            description,
            definition: { query: query.trim(), type },
            options: { includeHistoricalData },
          })
        : createComputation(kind, spaceId, {
            name,
            ...(key.trim() ? { key: key.trim() } : {}),
            description,
            enabled: true,
            definition: { query: query.trim(), type },
            options: { includeHistoricalData, computeMode },
          }),
    onSuccess: async (saved) => {
      await queryClient.invalidateQueries({ queryKey: [kind, spaceId] });
      navigate(initial ? `/spaces/${spaceId}/${kind}/${saved.id}` : `/spaces/${spaceId}/${kind}`);
    },
  });
  const failure = save.error instanceof ApiFailure ? save.error : null;
  const fieldError = (field: string) => failure?.forField(field);
  const otherErrors = failure?.errors.filter(
    (e) => !e.field || !['name', 'key', 'description', 'definition'].includes(e.field.split('.')[0]!),
  );

  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  const queryError = checked && !checked.valid ? checked.errors[0] : undefined;
  const canSave = name.trim() !== '' && checked?.valid === true && typed === query.trim() && !save.isPending;

  return (
    <section>
      <p>
        <Link to={`/spaces/${spaceId}/${kind}`}>← {label.title}</Link>
      </p>
      <h1>{initial ? `Edit ${initial.name}` : `New ${label.one}`}</h1>
      {initial && (
        <p className="help">Saving a changed query recomputes the {label.one} (with historical data, from the start of the history).</p>
      )}
      <form className="stack" onSubmit={submit} noValidate>
        <Field id="name" label="Name" error={fieldError('name')}>
          <input id="name" value={name} onChange={(e) => setName(e.target.value)} {...described('name', fieldError('name'))} />
        </Field>
        <Field
          id="key"
          label="Key"
          error={fieldError('key')}
          help={
            initial
              ? 'Keys never change: destinations and other queries know the computation by it.'
              : `Used in traits and destinations. Default: ${snakeCase(name) || 'the snake_cased name'}`
          }
        >
          <input
            id="key"
            value={key}
            placeholder={snakeCase(name)}
            readOnly={initial !== undefined}
            onChange={(e) => setKey(e.target.value)}
            {...described('key', fieldError('key'), true)}
          />
        </Field>
        <Field id="description" label="Description" error={fieldError('description')}>
          <input
            id="description"
            value={description}
            onChange={(e) => setDescription(e.target.value)}
            {...described('description', fieldError('description'))}
          />
        </Field>
        <fieldset>
          <legend>Members are</legend>
          {(['users', 'accounts'] as const).map((level) => (
            <label key={level} className="choice">
              <input
                type="radio"
                name="type"
                value={level}
                checked={type === level}
                disabled={initial !== undefined && initial.definition.type !== level}
                onChange={() => setType(level)}
              />{' '}
              {level}
            </label>
          ))}
        </fieldset>
        <div className="field">
          <label htmlFor="query">Query</label>
          <textarea
            id="query"
            className="code"
            rows={5}
            spellCheck={false}
            value={query}
            placeholder={
              kind === 'audiences'
                ? "event('Order Completed').within(30 days).count() >= 1"
                : "event('Order Completed').sum(property('revenue'))"
            }
            onChange={(e) => setQuery(e.target.value)}
            aria-invalid={queryError !== undefined || fieldError('definition') !== undefined}
            aria-describedby="query-status"
          />
          <div id="query-status" aria-live="polite">
            {queryError ? (
              <div className="field-error" data-testid="query-error">
                <p>
                  Line {queryError.line}, column {queryError.column}: {queryError.message}
                </p>
                <Caret text={typed} line={queryError.line} column={queryError.column} />
              </div>
            ) : fieldError('definition') ? (
              <p className="field-error">{fieldError('definition')}</p>
            ) : checked?.valid ? (
              <p className="ok" data-testid="query-ok">
                Valid query
                {checked.references.length > 0 && <> reading {checked.references.join(', ')}</>}
              </p>
            ) : check.error ? (
              <ErrorNote error={check.error} />
            ) : typed !== '' ? (
              <p className="help">Checking…</p>
            ) : (
              <p className="help">
                Segment's query language: event(), trait(), property(), within(), count() … as you type, errors show here.
              </p>
            )}
          </div>
        </div>
        <fieldset>
          <legend>Options</legend>
          <label className="choice">
            <input type="checkbox" checked={includeHistoricalData} onChange={(e) => setIncludeHistoricalData(e.target.checked)} /> Include
            historical data
          </label>
          {(['realtime', 'batch'] as const).map((mode) => (
            <label key={mode} className="choice">
              <input
                type="radio"
                name="computeMode"
                value={mode}
                checked={computeMode === mode}
                disabled={initial !== undefined && initial.options.computeMode !== mode}
                onChange={() => setComputeMode(mode)}
              />{' '}
              {mode} compute
            </label>
          ))}
        </fieldset>
        {kind === 'audiences' ? (
          <PreviewPanel enabled={checked?.valid === true} type={type} preview={preview} />
        ) : (
          checked?.valid && <p className="help">Values are computed once saved; the profile look-up shows them per profile.</p>
        )}
        {otherErrors && otherErrors.length > 0 && <ErrorNote error={new ApiFailure(failure!.status, otherErrors)} />}
        {save.error && !failure && <ErrorNote error={save.error} />}
        <div className="row">
          <button type="submit" disabled={!canSave}>
            {save.isPending ? 'Saving…' : `Save ${label.one}`}
          </button>
          <Link to={initial ? `/spaces/${spaceId}/${kind}/${initial.id}` : `/spaces/${spaceId}/${kind}`}>Cancel</Link>
        </div>
      </form>
    </section>
  );
}

function described(id: string, error: string | undefined, hasHelp = false) {
  const ids = [error ? `${id}-error` : null, hasHelp ? `${id}-help` : null].filter(Boolean).join(' ');
  return { 'aria-invalid': error !== undefined, 'aria-describedby': ids || undefined };
}

function Field(props: { id: string; label: string; error?: string; help?: string; children: React.ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.help && (
        <p id={`${props.id}-help`} className="help">
          {props.help}
        </p>
      )}
      {props.error && (
        <p id={`${props.id}-error`} className="field-error" role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

/** The line of the query with a caret under the column the error names. */
function Caret({ text, line, column }: { text: string; line: number; column: number }) {
  const source = text.split('\n')[line - 1] ?? '';
  return (
    <pre className="caret" aria-hidden="true">
      {source}
      {'\n'}
      {' '.repeat(Math.max(0, column - 1))}^
    </pre>
  );
}

function PreviewPanel(props: {
  enabled: boolean;
  type: Level;
  preview: { data?: { data: Schemas['PreviewResult'] }; isFetching: boolean; error: Error | null };
}) {
  if (!props.enabled) return null;
  if (props.type === 'accounts') return <p className="help">Preview covers user audiences; save the audience to see its size.</p>;
  const { data, isFetching, error } = props.preview;
  return (
    <section className="preview" aria-label="Preview" aria-busy={isFetching}>
      <h2>Preview</h2>
      {error && <ErrorNote error={error} />}
      {isFetching && !data && <p>Computing the preview…</p>}
      {data && (
        <>
          <p data-testid="preview-size">
            <strong>{data.data.size.toLocaleString()}</strong> {data.data.size === 1 ? 'profile matches' : 'profiles match'} (of{' '}
            {data.data.scanned.toLocaleString()} read in {Math.round(data.data.tookMs)} ms)
          </p>
          {data.data.sample.length > 0 ? (
            <div className="table-wrap">
              <table aria-label="Sample profiles">
                <thead>
                  <tr>
                    <th scope="col">User id</th>
                    <th scope="col">Anonymous id</th>
                    <th scope="col">Identifiers</th>
                    <th scope="col">Traits</th>
                  </tr>
                </thead>
                <tbody>
                  {data.data.sample.map((p) => (
                    <tr key={p.id}>
                      <td>{p.user_id ?? '—'}</td>
                      <td>{p.anonymous_id ?? '—'}</td>
                      <td>{p.external_ids.map((x) => `${x.type}:${x.id}`).join(', ')}</td>
                      <td className="wrap">
                        <code>{JSON.stringify(p.traits)}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p className="empty">
              No profile matches yet: send events from a source, or include historical data to count what was sent before.
            </p>
          )}
        </>
      )}
    </section>
  );
}
