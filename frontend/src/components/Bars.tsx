// A bar chart in plain SVG (no chart library: the phone downloads little). ``compare`` draws ghost bars.
export interface BarsProps {
  values: number[];
  labels: string[];
  compare?: number[];
  labelEvery?: number;
  title: string;
  testId?: string;
}

export function Bars({ values, labels, compare, labelEvery = 1, title, testId }: BarsProps) {
  const n = values.length;
  const max = Math.max(1, ...values, ...(compare ?? []));
  const width = 320;
  const height = 150;
  const top = 14;
  const bottom = 18;
  const slot = width / Math.max(1, n);
  const scale = (v: number) => ((height - top - bottom) * v) / max;
  return (
    <svg className="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title} data-testid={testId}>
      <line x1={0} x2={width} y1={height - bottom} y2={height - bottom} className="axis" />
      {values.map((v, i) => {
        const x = i * slot;
        const h = scale(v);
        const c = compare?.[i];
        return (
          <g key={i}>
            {c !== undefined && c > 0 && (
              <rect
                className="bar-compare"
                x={x + slot * 0.1}
                width={slot * 0.8}
                y={height - bottom - scale(c)}
                height={scale(c)}
              />
            )}
            <rect
              className="bar"
              data-testid="bar"
              data-label={labels[i]}
              data-value={v}
              x={x + slot * 0.22}
              width={slot * 0.56}
              y={height - bottom - h}
              height={h}
            >
              <title>{`${labels[i]}: ${v}${c !== undefined ? ` (${c})` : ""}`}</title>
            </rect>
            {v > 0 && v === Math.max(...values) && (
              <text className="bar-value" x={x + slot / 2} y={height - bottom - h - 3} textAnchor="middle">
                {v}
              </text>
            )}
            {i % labelEvery === 0 && (
              <text className="bar-label" x={x + slot / 2} y={height - 4} textAnchor="middle">
                {labels[i]}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}
