// A space's settings: its identity resolution rules (PUT replaces them whole;
// fields left empty take Segment's defaults) and its Profile API access tokens
// (each shown once, when created).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useParams } from 'react-router';
import { ApiFailure, api, unwrap, type Schemas } from '../api/client';
import { ErrorNote, formatTime } from './common';

type Rules = Schemas['IdentityRules'];
type Window = Rules['defaultLimit']['window'];
const WINDOWS: Window[] = ['ever', 'daily', 'weekly', 'monthly', 'annually'];
const lines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

export function SettingsPage() {
  const spaceId = useParams().spaceId!;
  const rules = useQuery({
    queryKey: ['identity-rules', spaceId],
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/identity-rules', { params: { path: { spaceId } } })),
  });
  return (
    <section>
      <h1>Settings</h1>
      {rules.error && <ErrorNote error={rules.error} />}
      {/* Not remounted when the saved rules come back: the form keeps what was typed, and its Saved status. */}
      {rules.data && <IdentityRulesForm key={spaceId} spaceId={spaceId} rules={rules.data.data.identityRules} />}
      <AccessTokens spaceId={spaceId} />
    </section>
  );
}

function IdentityRulesForm({ spaceId, rules }: { spaceId: string; rules: Rules }) {
  const queryClient = useQueryClient();
  const [priority, setPriority] = useState(rules.priority.join(', '));
  const [limits, setLimits] = useState(Object.entries(rules.limits).map(([type, l]) => ({ type, ...l })));
  const [defaultLimit, setDefaultLimit] = useState(rules.defaultLimit);
  const [blockedValues, setBlockedValues] = useState(rules.blockedValues.join('\n'));
  const [blockedPatterns, setBlockedPatterns] = useState(rules.blockedPatterns.join('\n'));
  const [maxMerges, setMaxMerges] = useState(String(rules.maxMergesPerProfile));
  const [custom, setCustom] = useState(rules.customIdentifiers);
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT('/spaces/{spaceId}/identity-rules', {
          params: { path: { spaceId } },
          body: {
            priority: priority
              .split(',')
              .map((p) => p.trim())
              .filter(Boolean),
            limits: Object.fromEntries(
              limits.filter((l) => l.type.trim()).map((l) => [l.type.trim(), { limit: l.limit, window: l.window }]),
            ),
            defaultLimit,
            blockedValues: lines(blockedValues),
            blockedPatterns: lines(blockedPatterns),
            maxMergesPerProfile: Number(maxMerges),
            customIdentifiers: custom.filter((c) => c.type.trim() && c.key.trim()),
          },
        }),
      ),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['identity-rules', spaceId] }),
  });
  const failure = save.error instanceof ApiFailure ? save.error : null;
  const err = (field: string) =>
    failure?.errors
      .filter((e) => e.field === field || e.field?.startsWith(`${field}.`) || e.field?.startsWith(`${field}[`))
      .map((e) => e.message)
      .join('; ') || undefined;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  const limitRow = (i: number, patch: Partial<(typeof limits)[number]>) =>
    setLimits((ls) => ls.map((l, j) => (j === i ? { ...l, ...patch } : l)));

  return (
    <form className="stack panel" onSubmit={submit} aria-labelledby="rules-title">
      <h2 id="rules-title">Identity resolution</h2>
      <p className="help">
        {rules.isDefault ? "Segment's default rules apply." : `Saved ${formatTime(rules.updatedAt)}.`} Changes apply to events that arrive
        after saving.
      </p>
      <Labelled id="priority" label="Identifier priority (highest first, comma-separated)" error={err('priority')}>
        <input id="priority" value={priority} onChange={(e) => setPriority(e.target.value)} />
      </Labelled>
      <fieldset>
        <legend>Values per identifier type</legend>
        <div className="table-wrap">
          <table aria-label="Identifier limits">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Limit</th>
                <th scope="col">Window</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {limits.map((l, i) => (
                <tr key={i}>
                  <td>
                    <input aria-label="Identifier type" value={l.type} onChange={(e) => limitRow(i, { type: e.target.value })} />
                  </td>
                  <td>
                    <input
                      aria-label="Limit"
                      type="number"
                      min={1}
                      value={l.limit}
                      onChange={(e) => limitRow(i, { limit: Number(e.target.value) })}
                    />
                  </td>
                  <td>
                    <WindowSelect value={l.window} onChange={(w) => limitRow(i, { window: w })} />
                  </td>
                  <td>
                    <button type="button" className="link" onClick={() => setLimits((ls) => ls.filter((_, j) => j !== i))}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
              <tr>
                <td>Every other type</td>
                <td>
                  <input
                    aria-label="Default limit"
                    type="number"
                    min={1}
                    value={defaultLimit.limit}
                    onChange={(e) => setDefaultLimit({ ...defaultLimit, limit: Number(e.target.value) })}
                  />
                </td>
                <td>
                  <WindowSelect value={defaultLimit.window} onChange={(w) => setDefaultLimit({ ...defaultLimit, window: w })} />
                </td>
                <td />
              </tr>
            </tbody>
          </table>
        </div>
        <button type="button" className="link" onClick={() => setLimits((ls) => [...ls, { type: '', limit: 5, window: 'ever' }])}>
          + Add a limit
        </button>
        {(err('limits') || err('defaultLimit')) && (
          <p className="field-error" role="alert">
            {[err('limits'), err('defaultLimit')].filter(Boolean).join('; ')}
          </p>
        )}
      </fieldset>
      <Labelled id="blocked-values" label="Blocked values (one per line)" error={err('blockedValues')}>
        <textarea id="blocked-values" rows={4} value={blockedValues} onChange={(e) => setBlockedValues(e.target.value)} />
      </Labelled>
      <Labelled id="blocked-patterns" label="Blocked patterns (regular expressions, one per line)" error={err('blockedPatterns')}>
        <textarea
          id="blocked-patterns"
          className="code"
          rows={3}
          value={blockedPatterns}
          onChange={(e) => setBlockedPatterns(e.target.value)}
        />
      </Labelled>
      <Labelled id="max-merges" label="Most profiles one profile may absorb through merges" error={err('maxMergesPerProfile')}>
        <input id="max-merges" type="number" min={1} value={maxMerges} onChange={(e) => setMaxMerges(e.target.value)} />
      </Labelled>
      <fieldset>
        <legend>Custom identifiers (a trait or property key read as an identifier)</legend>
        {custom.map((c, i) => (
          <div className="row" key={i}>
            <input
              aria-label="Type"
              placeholder="type, e.g. crm_id"
              value={c.type}
              onChange={(e) => setCustom((cs) => cs.map((x, j) => (j === i ? { ...x, type: e.target.value } : x)))}
            />
            <input
              aria-label="Key"
              placeholder="key, e.g. crmId"
              value={c.key}
              onChange={(e) => setCustom((cs) => cs.map((x, j) => (j === i ? { ...x, key: e.target.value } : x)))}
            />
            <button type="button" className="link" onClick={() => setCustom((cs) => cs.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" className="link" onClick={() => setCustom((cs) => [...cs, { type: '', key: '' }])}>
          + Add a custom identifier
        </button>
        {err('customIdentifiers') && (
          <p className="field-error" role="alert">
            {err('customIdentifiers')}
          </p>
        )}
      </fieldset>
      {failure && failure.errors.some((e) => !e.field) && (
        <ErrorNote
          error={
            new ApiFailure(
              failure.status,
              failure.errors.filter((e) => !e.field),
            )
          }
        />
      )}
      {save.error && !failure && <ErrorNote error={save.error} />}
      <div className="row">
        <button type="submit" disabled={save.isPending}>
          {save.isPending ? 'Saving…' : 'Save identity rules'}
        </button>
        {save.isSuccess && (
          <span role="status" className="ok">
            Saved
          </span>
        )}
      </div>
    </form>
  );
}

function WindowSelect({ value, onChange }: { value: Window; onChange: (w: Window) => void }) {
  return (
    <select aria-label="Window" value={value} onChange={(e) => onChange(e.target.value as Window)}>
      {WINDOWS.map((w) => (
        <option key={w} value={w}>
          {w}
        </option>
      ))}
    </select>
  );
}

function Labelled(props: { id: string; label: string; error?: string; children: React.ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.error && (
        <p className="field-error" role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}

function AccessTokens({ spaceId }: { spaceId: string }) {
  const queryClient = useQueryClient();
  const tokens = useQuery({
    queryKey: ['access-tokens', spaceId],
    queryFn: () =>
      unwrap(api.GET('/spaces/{spaceId}/access-tokens', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
  });
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/spaces/{spaceId}/access-tokens', { params: { path: { spaceId } }, body: { name } })),
    onSuccess: () => {
      setName('');
      return queryClient.invalidateQueries({ queryKey: ['access-tokens', spaceId] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/spaces/{spaceId}/access-tokens/{id}', { params: { path: { spaceId, id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['access-tokens', spaceId] }),
  });
  const created = create.data?.data.accessToken;
  const list = tokens.data?.data.accessTokens ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <section className="panel" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Profile API access tokens</h2>
      <p className="help">
        Use one as the Basic auth username of <code>/v1/spaces/{spaceId}/collections/users/profiles/…</code>; it reads this space only.
      </p>
      {tokens.error && <ErrorNote error={tokens.error} />}
      {list.length === 0 && tokens.isSuccess && <p className="muted">No access tokens.</p>}
      {list.length > 0 && (
        <ul>
          {list.map((t) => (
            <li key={t.id}>
              {t.name} <span className="muted">created {formatTime(t.createdAt)}</span>{' '}
              <button type="button" className="link" onClick={() => revoke.mutate(t.id)} disabled={revoke.isPending}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
      {created && (
        <p role="status" className="ok">
          Token for {created.name}, shown this once: <code data-testid="new-token">{created.token}</code>
        </p>
      )}
      <form className="row" onSubmit={submit}>
        <label htmlFor="token-name" className="sr-only">
          Token name
        </label>
        <input id="token-name" placeholder="Name, e.g. CRM sync" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit" disabled={create.isPending || name.trim() === ''}>
          Create token
        </button>
      </form>
      {create.error && <ErrorNote error={create.error} />}
    </section>
  );
}
