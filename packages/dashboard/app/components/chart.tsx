import { useEffect, useRef, useState } from 'preact/hooks';

export type Series = {
  name: string;
  /** A CSS color (custom properties work: `var(--accent)`). */
  color: string;
  points: { x: number; y: number | null }[];
  /** Step line (prices change at points and hold until the next). */
  step?: boolean;
  area?: boolean;
  dashed?: boolean;
};

type Props = {
  series: Series[];
  /** x range in ms (a time window). */
  xDomain: [number, number];
  height?: number;
  /** Tick and readout labels; `step` is the tick spacing (to choose decimals). */
  yFormat: (v: number, step: number) => string;
  xFormat: (ms: number) => string;
  /** Shown over the plot when every value is empty or zero. */
  empty?: string;
  label: string;
  /** Hover readout (series must share their x values). */
  hoverable?: boolean;
};

const M = { top: 12, right: 14, bottom: 26, left: 58 };

/** 1, 2, 2.5 or 5 × 10^k: a step for about `count` ticks up to `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

/**
 * A small responsive SVG line / area chart with a hover readout. Hand-rolled: a few hundred points
 * at most, no chart library needed. Text is laid out at the real pixel width (no scaling).
 */
export function LineChart({
  series,
  xDomain,
  height = 200,
  yFormat,
  xFormat,
  empty,
  label,
  hoverable = true,
}: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(640);
  const [hover, setHover] = useState<number | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(([entry]) => {
      if (entry) setWidth(Math.max(240, Math.floor(entry.contentRect.width)));
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const [x0, x1] = xDomain;
  const values = series.flatMap((s) => s.points.map((p) => p.y)).filter((y): y is number => y !== null);
  const max = Math.max(0, ...values);
  const step = max > 0 ? niceStep(max, 4) : 1;
  const yMax = max > 0 ? Math.ceil((max * 1.05) / step) * step : 4;
  const yTicks: number[] = [];
  for (let v = 0; v <= yMax + step / 2; v += max > 0 ? step : 1) yTicks.push(v);
  const w = width - M.left - M.right;
  const h = height - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / Math.max(1, x1 - x0)) * w;
  const sy = (y: number) => M.top + h - (y / yMax) * h;
  const tickCount = width < 420 ? 3 : 5;
  const xTicks = Array.from({ length: tickCount }, (_, i) => x0 + ((x1 - x0) * i) / (tickCount - 1));
  const isEmpty = values.every((v) => v === 0);

  const paths = series.map((s) => {
    const pts = s.points.filter((p) => p.x <= x1);
    let d = '';
    let started = false;
    let prevY: number | null = null;
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i]!;
      if (p.y === null) {
        started = false;
        continue;
      }
      const x = sx(Math.max(x0, p.x));
      const y = sy(p.y);
      if (!started) {
        d += `M${x.toFixed(1)},${y.toFixed(1)}`;
        started = true;
      } else if (s.step && prevY !== null) {
        d += `H${x.toFixed(1)}V${y.toFixed(1)}`;
      } else {
        d += `L${x.toFixed(1)},${y.toFixed(1)}`;
      }
      prevY = y;
    }
    if (s.step && started) d += `H${sx(x1).toFixed(1)}`;
    // A value with no neighbour draws no line: mark it with a dot.
    const lone = s.step
      ? []
      : pts.filter(
          (p, i) => p.y !== null && (pts[i - 1]?.y ?? null) === null && (pts[i + 1]?.y ?? null) === null,
        );
    const area =
      s.area && d ? `${d}V${sy(0).toFixed(1)}H${sx(Math.max(x0, pts[0]?.x ?? x0)).toFixed(1)}Z` : '';
    return { s, d, area, lone };
  });

  const ref = series[0]?.points ?? [];
  const onMove = (e: PointerEvent) => {
    const rect = (e.currentTarget as SVGElement).getBoundingClientRect();
    const x = x0 + ((e.clientX - rect.left - M.left) / w) * (x1 - x0);
    if (!hoverable || x < x0 || x > x1 || ref.length === 0) return setHover(null);
    let best = 0;
    for (let i = 1; i < ref.length; i++) {
      if (Math.abs(ref[i]!.x - x) < Math.abs(ref[best]!.x - x)) best = i;
    }
    setHover(best);
  };
  const hx = hover !== null && ref[hover] ? sx(Math.max(x0, ref[hover].x)) : null;

  return (
    <div class="chart" ref={box}>
      <svg
        width={width}
        height={height}
        role="img"
        aria-label={label}
        onPointerMove={onMove}
        onPointerLeave={() => setHover(null)}
      >
        {yTicks.map((t) => (
          <g key={t}>
            <line class="grid" x1={M.left} x2={width - M.right} y1={sy(t)} y2={sy(t)} />
            <text class="tick" x={M.left - 8} y={sy(t)} text-anchor="end" dominant-baseline="middle">
              {yFormat(t, step)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={t}
            class="tick"
            x={sx(t)}
            y={height - 6}
            text-anchor={i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle'}
          >
            {xFormat(t)}
          </text>
        ))}
        {paths.map(({ s, d, area, lone }) => (
          <g key={s.name}>
            {lone.map((p) => (
              <circle key={p.x} cx={sx(Math.max(x0, p.x))} cy={sy(p.y!)} r={3} fill={s.color} />
            ))}
            {area && <path d={area} fill={s.color} opacity={0.14} />}
            <path
              d={d}
              fill="none"
              stroke={s.color}
              stroke-width={2}
              stroke-linejoin="round"
              stroke-dasharray={s.dashed ? '5 4' : undefined}
            />
          </g>
        ))}
        {hx !== null && <line class="crosshair" x1={hx} x2={hx} y1={M.top} y2={M.top + h} />}
        {hx !== null &&
          series.map((s) => {
            const p = s.points[hover!];
            return p && p.y !== null ? (
              <circle key={s.name} cx={hx} cy={sy(p.y)} r={3.5} fill={s.color} class="hover-dot" />
            ) : null;
          })}
      </svg>
      {isEmpty && empty && <div class="chart-empty">{empty}</div>}
      {hover !== null && ref[hover] && (
        <div class="chart-tip" style={{ left: `${Math.min(Math.max(hx ?? 0, 90), width - 90)}px` }}>
          <div class="chart-tip-time">{xFormat(ref[hover].x)}</div>
          {series.map((s) => {
            const p = s.points[hover];
            return (
              <div key={s.name}>
                <span class="swatch" style={{ background: s.color }} /> {s.name}:{' '}
                <b>{p && p.y !== null ? yFormat(p.y, step / 10) : '—'}</b>
              </div>
            );
          })}
        </div>
      )}
      {series.length > 1 && (
        <div class="legend">
          {series.map((s) => (
            <span key={s.name}>
              <span class={`swatch ${s.dashed ? 'swatch-dashed' : ''}`} style={{ background: s.color }} />
              {s.name}
            </span>
          ))}
        </div>
      )}
    </div>
  );
}
