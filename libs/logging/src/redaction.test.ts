import { Writable } from 'node:stream';
import { createLogger, REDACTED } from './index';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, log: createLogger({ service: 'test', destination }) };
}

describe('log redaction', () => {
  it('never writes destination secrets or authorization headers, and keeps the rest of the line', () => {
    const { lines, log } = capture();
    const settings = {
      url: 'https://hooks.example/a',
      headers: { Authorization: 'Bearer hdr-secret' },
      apiKey: 'key-secret',
      batchSize: 5,
    };
    log.info({ destination: { id: 'dst_1', settings } }, 'destination_seen');
    log.child({ component: 'x' }).warn({ settings: { accessToken: 'tok-secret', adAccountId: 'act_1' } }, 'settings_seen');
    log.error({ record: { kind: 'destination', body_json: JSON.stringify({ settings }) } }, 'config_record_unreadable');
    log.error({ req: { method: 'POST', headers: { authorization: 'Basic auth-secret', host: 'h' } } }, 'request_failed');
    const text = lines.join('');
    for (const secret of ['hdr-secret', 'key-secret', 'tok-secret', 'auth-secret']) expect(text).not.toContain(secret);
    const [first, second, third, fourth] = lines.map((l) => JSON.parse(l));
    expect(first.destination).toEqual({
      id: 'dst_1',
      settings: { url: 'https://hooks.example/a', headers: REDACTED, apiKey: REDACTED, batchSize: 5 },
    });
    expect(second.settings).toEqual({ accessToken: REDACTED, adAccountId: 'act_1' });
    expect(third.record).toEqual({ kind: 'destination', body_json: REDACTED });
    expect(fourth.req.headers).toEqual({ authorization: REDACTED, host: 'h' });
  });
});
