// Charts of the API's time series (uPlot, drawn on a canvas): an audience's
// size over time and a destination's deliveries over time. Each has a range
// choice, an empty state that says when points will come, and a text summary
// for screen readers (the canvas has none). The chart takes its container's
// width, so it fits a phone as well as a 1280 px screen.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, unwrap } from '../api/client';
import { ErrorNote, formatTime } from './common';

const HOUR = 3600 * 1000;
const RANGES = [
  { label: '1 hour', ms: HOUR },
  { label: '24 hours', ms: 24 * HOUR },
  { label: '7 days', ms: 7 * 24 * HOUR },
  { label: '30 days', ms: 30 * 24 * HOUR },
] as const;

const INTEGER_STEPS = [1, 2, 5].flatMap((m) => Array.from({ length: 10 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);

/** A uPlot chart sized to its container; `data` is uPlot's columns (x in seconds). */
function UPlotChart({ series, data, label }: { series: uPlot.Series[]; data: uPlot.AlignedData; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);
  // Built once per set of series; data changes go through setData.
  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 220,
      series: [{}, ...series],
      // Counts and sizes are whole numbers: no 0.25 ticks. Time labels spaced so two rows of them do not overlap on a phone.
      axes: [{ space: 80 }, { size: 56, incrs: INTEGER_STEPS }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    chart.current = new uPlot(opts, data, el);
    // Only a new width resizes: a setSize of the same size would only feed the observer again.
    const resized = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (chart.current && chart.current.width !== width) chart.current.setSize({ width, height: 220 });
    });
    resized.observe(el);
    return () => {
      resized.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
  }, [series]);
  useEffect(() => chart.current?.setData(data), [data]);
  return <div ref={box} className="chart" role="img" aria-label={label} />;
}

function RangeChoice({ value, onChange, name }: { value: number; onChange: (ms: number) => void; name: string }) {
  return (
    <div className="row" role="group" aria-label={`${name} range`}>
      {RANGES.map((r) => (
        <button
          key={r.ms}
          type="button"
          className={r.ms === value ? undefined : 'secondary'}
          aria-pressed={r.ms === value}
          onClick={() => onChange(r.ms)}
        >
          {r.label}
        </button>
      ))}
    </div>
  );
}

/** since/until of the last `ms`, rounded to the minute so a refetch does not make a new query key each render. */
function useRange(ms: number) {
  const until = Math.ceil(Date.now() / 60_000) * 60_000;
  return { since: new Date(until - ms).toISOString(), until: new Date(until).toISOString() };
}

const SIZE_SERIES: uPlot.Series[] = [
  { label: 'Size', stroke: '#2255cc', width: 2, fill: 'rgba(34, 85, 204, 0.08)', points: { show: true, size: 5 } },
];

/** An audience's size (its members) or a computed trait's (the profiles with a value) over time. */
export function SizeHistoryChart({
  spaceId,
  kind,
  computationId,
}: {
  spaceId: string;
  kind: 'audiences' | 'computed-traits';
  computationId: string;
}) {
  const [rangeMs, setRangeMs] = useState<number>(24 * HOUR);
  const query = useRange(rangeMs);
  const what = kind === 'audiences' ? 'audience' : 'computed trait';
  const history = useQuery({
    queryKey: ['size-history', spaceId, kind, computationId, query.since],
    queryFn: async () => {
      const params = { params: { path: { spaceId, id: computationId }, query } };
      // The two answers differ only in the id's name: the chart reads the rest.
      const { data } =
        kind === 'audiences'
          ? await unwrap(api.GET('/spaces/{spaceId}/audiences/{id}/size-history', params))
          : await unwrap(api.GET('/spaces/{spaceId}/computed-traits/{id}/size-history', params));
      return { data: { since: data.since, until: data.until, resolution: data.resolution, points: data.points } };
    },
    refetchInterval: 15000,
    // A new minute is a new range (key): the chart keeps the last answer meanwhile instead of blinking.
    placeholderData: keepPreviousData,
  });
  const points = history.data?.data.points ?? [];
  const last = points.at(-1);
  const data = useColumns(() => [points.map((p) => Date.parse(p.at) / 1000), points.map((p) => p.size)], history.data);
  return (
    <section aria-labelledby="size-history-title" className="panel" data-testid="size-history" data-points={points.length}>
      <div className="page-head">
        <h2 id="size-history-title">Size over time</h2>
        <RangeChoice name="Size over time" value={rangeMs} onChange={setRangeMs} />
      </div>
      {history.error && <ErrorNote error={history.error} />}
      {history.isSuccess && points.length === 0 && (
        <p className="empty">
          No size recorded in this period yet. The batch scheduler records the {what}'s size
          {kind === 'audiences' ? '' : ' (the profiles with a value)'} every minute while it is enabled: the first point comes within a
          minute.
        </p>
      )}
      {points.length > 0 && (
        <>
          <UPlotChart
            series={SIZE_SERIES}
            data={data}
            label={`${what === 'audience' ? 'Audience' : 'Computed trait'} size over the last ${labelOf(rangeMs)}`}
          />
          <p className="muted" data-testid="size-history-summary">
            {points.length.toLocaleString()} {points.length === 1 ? 'point' : 'points'}
            {history.data?.data.resolution === 'hour' ? ' (hourly)' : ''}; latest {last!.size.toLocaleString()} at {formatTime(last!.at)}
          </p>
        </>
      )}
    </section>
  );
}

// Counts per bucket as steps (a bucket's count holds over its width); dashes tell the series apart without colour.
const stepped = uPlot.paths.stepped!({ align: 1 });
const noPoints = { show: false };
const DELIVERY_SERIES: uPlot.Series[] = [
  { label: 'Sent', stroke: '#1b7a3d', width: 2, paths: stepped, points: noPoints },
  { label: 'Failed', stroke: '#b3261e', width: 2, paths: stepped, points: noPoints },
  { label: 'Throttled', stroke: '#b26a00', width: 2, dash: [6, 4], paths: stepped, points: noPoints },
  { label: 'Dead-lettered', stroke: '#6b3fa0', width: 2, dash: [2, 3], paths: stepped, points: noPoints },
];

export function DeliveryHistoryChart({ spaceId, destinationId }: { spaceId: string; destinationId: string }) {
  // The last hour first: a minute's calls are a readable step there, a hair's width in a day of minutes.
  const [rangeMs, setRangeMs] = useState<number>(HOUR);
  const query = useRange(rangeMs);
  const history = useQuery({
    queryKey: ['delivery-history', spaceId, destinationId, query.since],
    queryFn: () =>
      unwrap(api.GET('/spaces/{spaceId}/destinations/{id}/delivery-history', { params: { path: { spaceId, id: destinationId }, query } })),
    refetchInterval: 15000,
    placeholderData: keepPreviousData,
  });
  const buckets = history.data?.data.buckets ?? [];
  const totals = buckets.reduce(
    (t, b) => ({
      sent: t.sent + b.sent,
      failed: t.failed + b.failed,
      throttled: t.throttled + b.throttled,
      deadLettered: t.deadLettered + b.deadLettered,
    }),
    { sent: 0, failed: 0, throttled: 0, deadLettered: 0 },
  );
  const any = totals.sent + totals.failed + totals.throttled + totals.deadLettered > 0;
  const data = useColumns(
    () => [
      buckets.map((b) => Date.parse(b.at) / 1000),
      buckets.map((b) => b.sent),
      buckets.map((b) => b.failed),
      buckets.map((b) => b.throttled),
      buckets.map((b) => b.deadLettered),
    ],
    history.data,
  );
  const per = history.data?.data.resolution === 'hour' ? 'hour' : 'minute';
  return (
    <section
      aria-labelledby="delivery-history-title"
      className="panel"
      data-testid="delivery-history"
      data-points={any ? buckets.length : 0}
    >
      <div className="page-head">
        <h2 id="delivery-history-title">Deliveries over time</h2>
        <RangeChoice name="Deliveries over time" value={rangeMs} onChange={setRangeMs} />
      </div>
      {history.error && <ErrorNote error={history.error} />}
      {history.isSuccess && !any && (
        <p className="empty">
          No calls in this period. Connect an audience or computed trait to this destination; its dispatcher counts every call sent, failed,
          throttled or dead-lettered, per minute.
        </p>
      )}
      {any && (
        <>
          <UPlotChart series={DELIVERY_SERIES} data={data} label={`Calls per ${per} over the last ${labelOf(rangeMs)}`} />
          <p className="muted" data-testid="delivery-history-summary">
            Calls per {per}, in total: {totals.sent.toLocaleString()} sent, {totals.failed.toLocaleString()} failed,{' '}
            {totals.throttled.toLocaleString()} throttled, {totals.deadLettered.toLocaleString()} dead-lettered
          </p>
        </>
      )}
    </section>
  );
}

const labelOf = (ms: number) => RANGES.find((r) => r.ms === ms)?.label ?? `${ms / HOUR} hours`;

/** uPlot columns rebuilt only when the API's answer changes (a new array redraws the chart). */
function useColumns(build: () => number[][], answer: unknown): uPlot.AlignedData {
  const cache = useRef<{ answer: unknown; data: uPlot.AlignedData } | null>(null);
  if (!cache.current || cache.current.answer !== answer) cache.current = { answer, data: build() as uPlot.AlignedData };
  return cache.current.data;
}
