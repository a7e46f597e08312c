// The destination the chaos run's webhooks post to: records every call that
// it answered 2xx, can refuse connections (listener closed, then reopened on
// the same port) and can answer 429 with Retry-After.
'use strict';
const http = require('node:http');

class ChaosReceiver {
  constructor() {
    /** Calls answered 200: { at, body }. */
    this.ok = [];
    this.rejected = 0;
    this.mode = { kind: 'ok' };
    this.port = 0;
    this.server = null;
    this.lastArrival = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        this.lastArrival = Date.now();
        if (this.mode.kind === '429') {
          this.rejected++;
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(this.mode.retryAfterSeconds) });
          return res.end('{"ok":false}');
        }
        let body = null;
        try {
          body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : null;
        } catch {
          body = { unparsable: Buffer.concat(chunks).toString().slice(0, 200) };
        }
        this.ok.push({ at: Date.now(), path: req.url, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = this.server.address().port;
    return this;
  }

  /** Connections refused: the listener is closed (and open connections dropped). */
  async refuse() {
    this.mode = { kind: 'closed' };
    const s = this.server;
    this.server = null;
    if (s) {
      const closed = new Promise((r) => s.close(() => r()));
      s.closeAllConnections();
      await closed;
    }
  }

  /** Listening again (same port); `kind` 'ok' or '429' with Retry-After. */
  async answer(kind = 'ok', retryAfterSeconds = 2) {
    this.mode = { kind, retryAfterSeconds };
    if (!this.server) await this.start();
  }

  async stop() {
    await this.refuse();
  }
}

module.exports = { ChaosReceiver };
