// `npx engage catalog [slug]`: the Actions destinations the control plane
// offers (GET /catalog/destinations, CONTRACT.md section 8), as text. The
// formatting is pure: main.ts fetches, these functions print.

/** A catalog entry as the control plane returns it (the fields printed here). */
export interface CatalogEntry {
  slug: string;
  name: string;
  category: 'event' | 'list';
  settings: {
    required?: string[];
    properties?: Record<string, { type?: string; title?: string; 'x-secret'?: boolean; default?: unknown; enum?: unknown[] }>;
  };
  actions: Array<{ id: string; title: string; defaultSubscription: string | null; batching: boolean }>;
  presets: Array<{ name: string; actionId: string; subscribe: string }>;
  /** `source`: Segment's documented figure, or this system's own default where Segment documents none (`note` says why). */
  rateLimit: { requestsPerSecond: number; source?: 'segment' | 'engage'; note?: string } | null;
}

const rate = (e: CatalogEntry) => (e.rateLimit ? `${e.rateLimit.requestsPerSecond}/s` : '-');

/** One line per destination, aligned: slug, category, default rate limit, actions, name. */
export function formatCatalog(entries: CatalogEntry[]): string {
  const rows = [
    ['SLUG', 'CATEGORY', 'RATE', 'ACTIONS', 'NAME'],
    ...entries.map((e) => [e.slug, e.category, rate(e), String(e.actions.length), e.name]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** One destination: its settings (required, secret, default), actions and the presets a new destination gets. */
export function formatCatalogEntry(e: CatalogEntry): string {
  const required = new Set(e.settings.required ?? []);
  const lines = [`${e.name} (${e.slug}): ${e.category} destination, default rate limit ${rate(e)}`];
  if (e.rateLimit?.note) lines.push(`  (${e.rateLimit.note})`);
  lines.push('', 'settings:');
  for (const [name, field] of Object.entries(e.settings.properties ?? {})) {
    const notes = [
      field.type ?? 'any',
      required.has(name) ? 'required' : 'optional',
      ...(field['x-secret'] ? ['secret'] : []),
      ...(field.default !== undefined ? [`default ${JSON.stringify(field.default)}`] : []),
    ];
    lines.push(`  ${name}  ${notes.join(', ')}${field.title ? `  ${field.title}` : ''}`);
  }
  lines.push('', 'actions:');
  for (const a of e.actions)
    lines.push(`  ${a.id}  ${a.title}${a.batching ? ' (batches)' : ''}${a.defaultSubscription ? `  [${a.defaultSubscription}]` : ''}`);
  lines.push('', 'presets (the mappings of a new destination):');
  for (const p of e.presets) lines.push(`  ${p.name} -> ${p.actionId}  [${p.subscribe.replace(/\s+/g, ' ')}]`);
  return `${lines.join('\n')}\n`;
}
