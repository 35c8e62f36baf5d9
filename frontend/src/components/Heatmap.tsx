// Weekday × hour grid of average visitors: darker is busier.
export interface HeatmapProps {
  rows: number[][]; // 7 × 24, Monday first
  weekdays: string[];
  title: string;
}

export function HeatmapGrid({ rows, weekdays, title }: HeatmapProps) {
  const max = Math.max(0.0001, ...rows.flat());
  return (
    <div className="heatmap" role="img" aria-label={title} data-testid="heatmap">
      <div />
      {Array.from({ length: 24 }, (_, h) => (
        <div key={h} className="heat-hour">
          {h % 3 === 0 ? h : ""}
        </div>
      ))}
      {rows.map((row, d) => (
        <div key={d} style={{ display: "contents" }}>
          <div className="heat-day">{weekdays[d]}</div>
          {row.map((v, h) => (
            <div
              key={h}
              className="heat-cell"
              data-day={d}
              data-hour={h}
              data-value={v}
              title={`${weekdays[d]} ${h}:00 — ${v.toFixed(1)}`}
              style={{ opacity: v > 0 ? 0.12 + 0.88 * (v / max) : 0.05 }}
            />
          ))}
        </div>
      ))}
    </div>
  );
}
