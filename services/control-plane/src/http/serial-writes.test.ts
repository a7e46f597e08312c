import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { serialWrites } from './app';

describe('serialWrites', () => {
  it('runs mutating requests one at a time, in arrival order, and lets reads through', async () => {
    const app = express();
    app.use(serialWrites());
    let running = 0;
    let maxRunning = 0;
    const order: string[] = [];
    const gates: Array<() => void> = [];
    app.post('/w/:n', async (req, res) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      order.push(req.params.n!);
      // Held open until the test releases it: a write in flight.
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      if (req.params.n === '2') return void res.status(500).end(); // a failed write releases the lock too
      res.json({ n: req.params.n });
    });
    app.get('/r', (_req, res) => res.json({ running }));
    const server = http.createServer(app).listen(0);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const writes = ['1', '2', '3'].map((n) => fetch(`${base}/w/${n}`, { method: 'POST' }));
      const waitUntil = async (cond: () => boolean) => {
        const deadline = Date.now() + 5000;
        while (!cond()) {
          if (Date.now() > deadline) throw new Error(`condition not met: ${cond.toString()}`);
          await new Promise((r) => setImmediate(r));
        }
      };
      await waitUntil(() => gates.length === 1);
      // A read is answered while a write holds the lock.
      expect(await (await fetch(`${base}/r`)).json()).toEqual({ running: 1 });
      for (let i = 0; i < 3; i++) {
        await waitUntil(() => gates.length === i + 1);
        gates[i]!();
      }
      expect((await Promise.all(writes)).map((r) => r.status)).toEqual([200, 500, 200]);
      expect(maxRunning).toBe(1);
      expect(order).toHaveLength(3);
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});
