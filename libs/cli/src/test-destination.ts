// `npx engage test-destination`: the event tester (POST
// /spaces/{spaceId}/destinations/{id}/test, CONTRACT.md section 9) from a
// terminal. The formatting is pure: main.ts sends, this prints.

type ShownRequest = { url: string; method: string; headers: Record<string, string>; body: unknown };
type ShownResponse = { status: number; headers: Record<string, string>; body: unknown; truncated?: boolean };

/** The event tester's answer, as the control plane returns it. */
export interface TestResult {
  request: ShownRequest | null;
  response?: ShownResponse;
  error?: string;
  /** List destinations: every request made, in order; request/response are the last. */
  exchanges?: Array<{ request: ShownRequest; response?: ShownResponse }>;
  list?: {
    audience: { id: string; name: string } | null;
    sent: Array<{ type: string; value: string }>;
    failed: Array<{ type: string; reason: string }>;
  };
  durationMs: number;
}

/** Whether the destination accepted the call (a 2xx answer and no error): the command's exit code follows it. */
export const accepted = (r: TestResult) => !r.error && r.response !== undefined && r.response.status >= 200 && r.response.status < 300;

const block = (value: unknown) =>
  (typeof value === 'string' ? value : JSON.stringify(value, null, 2))
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

/** The lifecycle as text: the request sent (secrets already masked by the control plane), then the answer or the error. */
export function formatTestResult(r: TestResult): string {
  const lines: string[] = [];
  // The requests before the last (a list destination's audience lookup or creation), one line each.
  for (const x of r.exchanges?.slice(0, -1) ?? [])
    lines.push(`before: ${x.request.method} ${x.request.url} -> ${x.response ? x.response.status : 'no answer'}`);
  if (r.list) {
    lines.push(`list: ${r.list.audience ? `audience ${r.list.audience.id} (${r.list.audience.name})` : 'no audience reached'}`);
    for (const s of r.list.sent) lines.push(`  added ${s.type}: ${s.value}`);
    for (const f of r.list.failed) lines.push(`  not sent ${f.type}: ${f.reason}`);
  }
  if (r.request) {
    lines.push(`request: ${r.request.method} ${r.request.url}`);
    for (const [k, v] of Object.entries(r.request.headers)) lines.push(`  ${k}: ${v}`);
    lines.push(block(r.request.body));
  } else lines.push('request: none sent');
  if (r.response) {
    lines.push(`response: ${r.response.status} after ${r.durationMs} ms${r.response.truncated ? ' (body cut at 64 KB)' : ''}`);
    for (const [k, v] of Object.entries(r.response.headers)) lines.push(`  ${k}: ${v}`);
    lines.push(block(r.response.body));
  }
  if (r.error) lines.push(`error: ${r.error} (after ${r.durationMs} ms)`);
  return `${lines.join('\n')}\n`;
}
