// A space's destinations with what their dispatchers counted (sent, failed,
// throttled, dead-lettered, last error), and a creation form: webhook and
// list-webhook take a URL; Actions destinations (GET /catalog/destinations) get
// a settings form generated from their definition's JSON schema, secret
// fields as password inputs (the API never shows them back).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { ApiFailure, api, unwrap, type Schemas } from '../api/client';
import { ErrorNote, formatTime } from './common';

export function DestinationsPage() {
  const spaceId = useParams().spaceId!;
  const [adding, setAdding] = useState(false);
  const destinations = useQuery({
    queryKey: ['destinations', spaceId],
    queryFn: () =>
      unwrap(api.GET('/spaces/{spaceId}/destinations', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
    refetchInterval: 10000,
  });
  const list = destinations.data?.data.destinations ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>Destinations</h1>
        {!adding && (
          <button type="button" onClick={() => setAdding(true)}>
            + New destination
          </button>
        )}
      </div>
      {destinations.error && <ErrorNote error={destinations.error} />}
      {destinations.isSuccess && list.length === 0 && !adding && (
        <p className="empty">No destinations yet. Create one, then connect audiences and computed traits to it from their pages.</p>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table aria-label="Destinations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col" className="num">
                  Sent
                </th>
                <th scope="col" className="num">
                  Failed
                </th>
                <th scope="col" className="num">
                  Throttled
                </th>
                <th scope="col" className="num">
                  Dead-lettered
                </th>
                <th scope="col">Last sent</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id}>
                  <td>
                    <Link to={`/spaces/${spaceId}/destinations/${d.id}`}>{d.name}</Link>
                  </td>
                  <td>{d.slug ? `${d.slug} (actions)` : d.type}</td>
                  <td>
                    <span className={`badge ${d.status === 'Enabled' ? 'ok' : 'neutral'}`}>{d.status}</span>
                    {d.deliveryStatus.credentialsRefused && (
                      <span className="badge bad" title={d.deliveryStatus.credentialsRefused.error ?? undefined}>
                        Credentials refused
                      </span>
                    )}
                  </td>
                  <td className="num">{d.deliveryStatus.sent.toLocaleString()}</td>
                  <td className="num">{d.deliveryStatus.failed.toLocaleString()}</td>
                  <td className="num">{d.deliveryStatus.throttled.toLocaleString()}</td>
                  <td className="num">{d.deliveryStatus.deadLettered.toLocaleString()}</td>
                  <td>{formatTime(d.deliveryStatus.lastSentAt)}</td>
                  <td className="wrap">{d.deliveryStatus.lastError ? <code>{d.deliveryStatus.lastError}</code> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {adding && <NewDestination spaceId={spaceId} onDone={() => setAdding(false)} />}
    </section>
  );
}

interface SchemaProperty {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  writeOnly?: boolean;
  'x-secret'?: boolean;
}
interface SettingsSchema {
  properties?: Record<string, SchemaProperty>;
  required?: string[];
}

function NewDestination({ spaceId, onDone }: { spaceId: string; onDone: () => void }) {
  const queryClient = useQueryClient();
  const catalog = useQuery({ queryKey: ['catalog'], queryFn: () => unwrap(api.GET('/catalog/destinations')) });
  const [type, setType] = useState('webhook');
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [settings, setSettings] = useState<Record<string, unknown>>({});
  const definition = catalog.data?.data.destinations.find((d) => `actions:${d.slug}` === type);
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/spaces/{spaceId}/destinations', {
          params: { path: { spaceId } },
          body: definition
            ? { name, type: 'actions', slug: definition.slug, settings: withoutEmpty(settings), enabled: true }
            : { name, type: type as 'webhook' | 'list-webhook', settings: { url }, enabled: true },
        }),
      ),
    onSuccess: async () => {
      await queryClient.invalidateQueries({ queryKey: ['destinations', spaceId] });
      onDone();
    },
  });
  const failure = create.error instanceof ApiFailure ? create.error : null;
  const err = (field: string) => failure?.errors.find((e) => e.field === field || e.message.startsWith(`${field}:`))?.message;
  const unplaced = failure?.errors.filter((e) => !e.field && !/^(name|settings\.[\w.]+):/.test(e.message)) ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const schema = (definition?.settings ?? {}) as SettingsSchema;

  return (
    <form className="stack panel" onSubmit={submit} aria-label="New destination">
      <div className="field">
        <label htmlFor="destination-type">Type</label>
        <select
          id="destination-type"
          value={type}
          onChange={(e) => {
            setType(e.target.value);
            setSettings({});
          }}
        >
          <option value="webhook">Webhook (every call as Segment-spec JSON)</option>
          <option value="list-webhook">List webhook (batched adds and removes)</option>
          {(catalog.data?.data.destinations ?? []).map((d: Schemas['CatalogDestination']) => (
            <option key={d.slug} value={`actions:${d.slug}`}>
              {d.name} (Actions, {d.category})
            </option>
          ))}
        </select>
        {catalog.error && <ErrorNote error={catalog.error} />}
        {definition?.description && <p className="help">{definition.description}</p>}
      </div>
      <Field id="destination-name" label="Name" error={err('name')}>
        <input id="destination-name" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={err('name') !== undefined} />
      </Field>
      {definition ? (
        Object.entries(schema.properties ?? {}).map(([key, prop]) => (
          <SettingInput
            key={`${definition.slug}.${key}`}
            name={key}
            prop={prop}
            required={schema.required?.includes(key) ?? false}
            value={settings[key]}
            error={err(`settings.${key}`)}
            onChange={(v) => setSettings((s) => ({ ...s, [key]: v }))}
          />
        ))
      ) : (
        <Field id="destination-url" label="URL" error={err('settings.url')}>
          <input
            id="destination-url"
            type="url"
            value={url}
            placeholder="https://example.com/hooks/engage"
            onChange={(e) => setUrl(e.target.value)}
            aria-invalid={err('settings.url') !== undefined}
          />
        </Field>
      )}
      {unplaced.length > 0 && <ErrorNote error={new ApiFailure(failure!.status, unplaced)} />}
      {create.error && !failure && <ErrorNote error={create.error} />}
      <div className="row">
        <button type="submit" disabled={create.isPending || name.trim() === ''}>
          {create.isPending ? 'Creating…' : 'Create destination'}
        </button>
        <button type="button" className="link" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Settings left empty are left out, so the definition's defaults apply. */
const withoutEmpty = (settings: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== '' && v !== undefined));

function SettingInput(props: {
  name: string;
  prop: SchemaProperty;
  required: boolean;
  value: unknown;
  error?: string;
  onChange: (value: unknown) => void;
}) {
  const { name, prop } = props;
  const id = `setting-${name}`;
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  const secret = prop.writeOnly === true || prop['x-secret'] === true;
  const label = `${prop.title ?? name}${props.required ? '' : ' (optional)'}`;
  const common = { id, 'aria-invalid': props.error !== undefined, 'aria-describedby': props.error ? `${id}-error` : undefined };
  let input;
  if (type === 'boolean') {
    input = <input type="checkbox" {...common} checked={props.value === true} onChange={(e) => props.onChange(e.target.checked)} />;
  } else if (prop.enum) {
    input = (
      <select {...common} value={String(props.value ?? '')} onChange={(e) => props.onChange(e.target.value)}>
        <option value="">{prop.default !== undefined ? `Default: ${String(prop.default)}` : 'Choose…'}</option>
        {prop.enum.map((v) => (
          <option key={String(v)} value={String(v)}>
            {String(v)}
          </option>
        ))}
      </select>
    );
  } else if (type === 'number' || type === 'integer') {
    input = (
      <input
        type="number"
        {...common}
        value={props.value === undefined ? '' : String(props.value)}
        onChange={(e) => props.onChange(e.target.value === '' ? undefined : Number(e.target.value))}
      />
    );
  } else if (type === 'string') {
    input = (
      <input
        type={secret ? 'password' : 'text'}
        autoComplete={secret ? 'new-password' : 'off'}
        {...common}
        placeholder={prop.default !== undefined ? String(prop.default) : undefined}
        value={String(props.value ?? '')}
        onChange={(e) => props.onChange(e.target.value)}
      />
    );
  } else {
    // Objects (OAuth tokens, ...) as JSON.
    input = (
      <textarea
        className="code"
        rows={3}
        {...common}
        placeholder="JSON"
        onChange={(e) => {
          try {
            props.onChange(e.target.value.trim() ? JSON.parse(e.target.value) : undefined);
          } catch {
            props.onChange(e.target.value);
          }
        }}
      />
    );
  }
  return (
    <Field
      id={id}
      label={label}
      error={props.error}
      help={[prop.description, secret ? 'Secret: stored, never shown back.' : ''].filter(Boolean).join(' ')}
    >
      {input}
    </Field>
  );
}

function Field(props: { id: string; label: string; error?: string; help?: string; children: React.ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      {props.children}
      {props.help && <p className="help">{props.help}</p>}
      {props.error && (
        <p id={`${props.id}-error`} className="field-error" role="alert">
          {props.error}
        </p>
      )}
    </div>
  );
}
