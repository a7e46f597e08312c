// The fleet under test: every service as a process from its dist/ (as
// `npm start` and production run them), on the given infrastructure, with a
// fresh topic and Redis key prefix; one can be killed (SIGKILL) and restarted.
'use strict';
const { spawn } = require('node:child_process');
const { setInterval, clearInterval } = require('node:timers');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '../..');
const CONSUMERS = ['identity-resolver', 'realtime-evaluator', 'batch-scheduler', 'dispatcher'];
const TOKEN = 'chaos-token';

/**
 * What the fleet runs with besides the infrastructure. The lock, lease and
 * session timeouts are the short ones the repo's restart tests use (a killed
 * process's locks and group membership expire in seconds, not the default
 * 30-60 s), so a round's recovery is bounded; every other setting is the default.
 */
const FLEET_ENV = {
  CONTROL_PLANE_TOKEN: TOKEN,
  DESTINATION_ID: '*',
  DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  PROFILE_LOCK_TTL_MS: '5000',
  SCHEDULER_LEASE_MS: '5000',
  SCHEDULER_TICK_MS: '500',
  INGEST_PORT: '0',
  CONTROL_PLANE_PORT: '0',
  OPS_PORT: '0',
  LOG_LEVEL: 'info',
};

class ServiceProc {
  constructor(name, env, logFile) {
    Object.assign(this, { name, env, logFile, child: null, tail: [], starts: 0 });
  }

  /** Starts the process; resolves with its port once it logs that it listens. */
  start() {
    this.starts++;
    const child = spawn(process.execPath, [path.join(ROOT, 'services', this.name, 'dist/main.js')], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('close', (code, signal) => r(code ?? signal)));
    let buf = '';
    const onData = (d) => {
      if (this.logFile) fs.appendFileSync(this.logFile, d);
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        this.tail.push(line);
        if (this.tail.length > 300) this.tail.shift();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.listening = new Promise((resolve, reject) => {
      const deadline = Date.now() + 180_000;
      const poll = setInterval(() => {
        // The ingest and the control plane serve HTTP; the consumers only their ops endpoints.
        const msg = this.name === 'ingest' || this.name === 'control-plane' ? 'http_listening' : 'ops_listening';
        const line = this.tail.find((l) => l.includes(`"msg":"${msg}"`));
        if (line && child === this.child) {
          clearInterval(poll);
          resolve(Number(/"port":(\d+)/.exec(line)[1]));
        } else if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
          clearInterval(poll);
          reject(new Error(`${this.name} did not start (exit ${child.exitCode ?? child.signalCode}): ${this.tail.slice(-5).join('\n')}`));
        }
      }, 50);
    });
    return this.listening;
  }

  async kill(signal = 'SIGKILL') {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** SIGKILL then a fresh process; resolves when it listens again. */
  async killAndRestart() {
    await this.kill('SIGKILL');
    this.tail = [];
    return this.start();
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(t);
  }
}

class Fleet {
  /** `infraEnv`: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL; `logDir`: where each service's log goes (optional). */
  constructor({ infraEnv, prefix, logDir, extraEnv = {} }) {
    this.env = { ...FLEET_ENV, ...infraEnv, TOPIC_PREFIX: prefix, REDIS_KEY_PREFIX: prefix, ...extraEnv };
    this.prefix = prefix;
    const log = (n) => (logDir ? path.join(logDir, `${n}.log`) : undefined);
    this.procs = Object.fromEntries(['control-plane', 'ingest', ...CONSUMERS].map((n) => [n, new ServiceProc(n, this.env, log(n))]));
  }

  async start() {
    // The control plane first: it creates the topics the others subscribe to.
    this.controlPlaneUrl = `http://127.0.0.1:${await this.procs['control-plane'].start()}`;
    const others = Object.values(this.procs).filter((p) => p.name !== 'control-plane');
    const ports = await Promise.all(others.map((p) => p.start()));
    this.ingestUrl = `http://127.0.0.1:${ports[0]}`;
    return this;
  }

  async api(method, p, body) {
    const res = await fetch(`${this.controlPlaneUrl}${p}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = res.status === 204 ? {} : await res.json();
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json.data;
  }

  async stop() {
    await Promise.all(Object.values(this.procs).map((p) => p.stop()));
  }
}

module.exports = { Fleet, ServiceProc, CONSUMERS, FLEET_ENV };
