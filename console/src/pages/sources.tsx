// A space's sources: their write keys (with a copy button) and how to send
// events with them (analytics.js, analytics-node, curl).
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useParams } from 'react-router';
import { ApiFailure, api, unwrap, type Schemas } from '../api/client';
import { ErrorNote, formatTime } from './common';

export function SourcesPage() {
  const spaceId = useParams().spaceId!;
  const queryClient = useQueryClient();
  const sources = useQuery({
    queryKey: ['sources', spaceId],
    queryFn: () => unwrap(api.GET('/spaces/{spaceId}/sources', { params: { path: { spaceId }, query: { 'pagination.count': '200' } } })),
  });
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/spaces/{spaceId}/sources', { params: { path: { spaceId } }, body: { name, enabled: true } })),
    onSuccess: () => {
      setName('');
      return queryClient.invalidateQueries({ queryKey: ['sources', spaceId] });
    },
  });
  const list = sources.data?.data.sources ?? [];
  const nameError = create.error instanceof ApiFailure ? (create.error.forField('name') ?? create.error.message) : create.error?.message;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };

  return (
    <section>
      <h1>Sources</h1>
      {sources.error && <ErrorNote error={sources.error} />}
      {sources.isSuccess && list.length === 0 && (
        <p className="empty">No sources yet. A source gives your app a write key to send events with: create one below.</p>
      )}
      {list.map((s) => (
        <Source key={s.id} source={s} />
      ))}
      <form className="inline-form" onSubmit={submit}>
        <h2>New source</h2>
        <label htmlFor="source-name">Name</label>
        <div className="row">
          <input
            id="source-name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-invalid={nameError !== undefined}
            aria-describedby={nameError ? 'source-name-error' : undefined}
          />
          <button type="submit" disabled={create.isPending || name.trim() === ''}>
            Create source
          </button>
        </div>
        {nameError && (
          <p id="source-name-error" className="field-error" role="alert">
            {nameError}
          </p>
        )}
      </form>
    </section>
  );
}

function Source({ source }: { source: Schemas['Source'] }) {
  const [copied, setCopied] = useState<string | null>(null);
  const ingest = `${window.location.protocol}//${window.location.hostname}:8080`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(source.writeKey);
      setCopied('Copied');
    } catch {
      // NOTE: the clipboard API needs a secure context (https or localhost); elsewhere the key is selected to copy by hand.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById(`key-${source.id}`)!);
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
      setCopied('Selected: press Ctrl+C');
    }
  };
  return (
    <article className="panel" aria-label={`Source ${source.name}`}>
      <div className="page-head">
        <h2>
          {source.name} <span className="muted">{source.enabled ? '' : '(disabled)'}</span>
        </h2>
        <span className="muted">created {formatTime(source.createdAt)}</span>
      </div>
      <div className="row wrap">
        <span>Write key</span>
        <code id={`key-${source.id}`} data-testid="write-key">
          {source.writeKey}
        </code>
        <button type="button" className="secondary" onClick={copy}>
          Copy
        </button>
        <span role="status" className="ok">
          {copied}
        </span>
      </div>
      <details>
        <summary>Send events to it</summary>
        <p className="help">
          Point Segment's libraries at this system's ingest (the URL below is its default port on this host; use yours).
        </p>
        <pre className="query">{`// analytics-node
import { Analytics } from '@segment/analytics-node';
const analytics = new Analytics({ writeKey: '${source.writeKey}', host: '${ingest}' });
analytics.identify({ userId: 'u123', traits: { email: 'a@b.co' } });
analytics.track({ userId: 'u123', event: 'Order Completed' });

// analytics.js (the browser snippet): after analytics.load, before the first call
analytics.load('${source.writeKey}', { integrations: { 'Segment.io': { apiHost: '${ingest.replace(/^https?:\/\//, '')}/v1', protocol: '${window.location.protocol.replace(':', '')}' } } });

# curl
curl -u '${source.writeKey}:' -H 'content-type: application/json' \\
  -d '{"userId":"u123","event":"Order Completed"}' ${ingest}/v1/track`}</pre>
      </details>
    </article>
  );
}
