// Today's curve: cumulative visitors over the business day, drawn up to now.
export interface CurveProps {
  points: number[]; // cumulative value at the end of each slot so far
  slots: number; // slots in the whole day (23, 24 or 25 hours)
  labels: string[];
  title: string;
}

export function Curve({ points, slots, labels, title }: CurveProps) {
  const width = 320;
  const height = 120;
  const pad = 16;
  const max = Math.max(1, ...points);
  const x = (i: number) => (width * i) / Math.max(1, slots);
  const y = (v: number) => height - pad - ((height - 2 * pad) * v) / max;
  const path = [`M ${x(0)} ${y(0)}`, ...points.map((v, i) => `L ${x(i + 1)} ${y(v)}`)].join(" ");
  const area = `${path} L ${x(points.length)} ${y(0)} Z`;
  const step = Math.max(1, Math.round(slots / 6));
  return (
    <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title} data-testid="curve">
      <line x1={0} x2={width} y1={y(0)} y2={y(0)} className="axis" />
      <path d={area} className="curve-area" />
      <path d={path} className="curve-line" />
      {points.length > 0 && <circle cx={x(points.length)} cy={y(points[points.length - 1])} r={3.5} className="curve-dot" />}
      {labels.map((label, i) =>
        i % step === 0 ? (
          <text key={i} className="bar-label" x={x(i)} y={height - 2} textAnchor="start">
            {label}
          </text>
        ) : null,
      )}
    </svg>
  );
}
