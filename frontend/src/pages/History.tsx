import { useState } from "react";
import { getJson, type DaySummary, type Heatmap, type Store, type TrafficReport } from "../api";
import { Bars } from "../components/Bars";
import { HeatmapGrid } from "../components/Heatmap";
import { useT } from "../i18n";
import { addDays, businessDate, monthRange, percentChange, wallHour } from "../times";
import { useLoad, type Loaded } from "../useLoad";

function Missing<T>({ result, children }: { result: Loaded<T>; children: (data: T) => React.ReactNode }) {
  const t = useT();
  if (result.status === "loading") return <div className="chart-placeholder">{t("loading")}</div>;
  if (result.status === "missing") return <p className="muted" data-testid="not-available">{t("notAvailable")}</p>;
  if (result.status === "error") return <p className="error">{result.message}</p>;
  return <>{children(result.data)}</>;
}

export default function HistoryPage({ store }: { store: Store }) {
  const t = useT();
  const today = businessDate(store, new Date());
  const [day, setDay] = useState(today);
  const [month, setMonth] = useState(today.slice(0, 7));
  const [compare, setCompare] = useState(true);
  const base = `/api/stores/${store.id}`;

  const hours = useLoad(
    () =>
      Promise.all([
        getJson<TrafficReport>(`${base}/traffic?bucket=hour&from=${day}&to=${addDays(day, 1)}`),
        getJson<TrafficReport>(`${base}/traffic?bucket=hour&from=${addDays(day, -7)}&to=${addDays(day, -6)}`),
      ]),
    [store.id, day],
  );
  const [first, next] = monthRange(month);
  const days = useLoad(() => getJson<TrafficReport>(`${base}/traffic?bucket=day&from=${first}&to=${next}`), [
    store.id,
    month,
  ]);
  const summary = useLoad(() => getJson<DaySummary[]>(`${base}/days?from=${day}&to=${day}`), [
    store.id,
    day,
  ]);
  const heat = useLoad(() => getJson<Heatmap>(`${base}/heatmap?weeks=4`), [store.id]);
  const dwell = summary.status === "ok" ? summary.data.find((d) => d.date === day)?.avg_dwell_seconds : undefined;

  return (
    <section className="page history">
      <div className="card">
        <div className="row">
          <label>
            {t("day")}{" "}
            <input type="date" value={day} max={today} onChange={(e) => e.target.value && setDay(e.target.value)} data-testid="day" />
          </label>
          <label>
            <input type="checkbox" checked={compare} onChange={(e) => setCompare(e.target.checked)} /> {t("compareLastWeek")}
          </label>
        </div>
        <Missing result={hours}>
          {([now, before]) => {
            const change = percentChange(now.in_count, before.in_count);
            return (
              <>
                <div className="stats">
                  <div>
                    <div className="stat" data-testid="day-total">{now.in_count}</div>
                    <div className="muted">{t("total")}</div>
                  </div>
                  <div>
                    <div className="stat" data-testid="avg-dwell">
                      {summary.status === "missing"
                        ? "–"
                        : dwell != null
                          ? t("minutes", { n: Math.round(dwell / 60) })
                          : "–"}
                    </div>
                    <div className="muted">{t("avgDwell")}</div>
                  </div>
                </div>
                <h2>{t("hourly")}</h2>
                <Bars
                  testId="hourly"
                  title={t("hourly")}
                  values={now.buckets.map((b) => b.in_count)}
                  labels={now.buckets.map((b) => wallHour(b.start))}
                  compare={compare ? before.buckets.map((b) => b.in_count) : undefined}
                  labelEvery={3}
                />
                {compare && (
                  <div className="legend">
                    <span><i style={{ background: "var(--accent)" }} />{day}</span>
                    <span><i style={{ background: "#cbd5e1" }} />{t("lastWeek")} ({before.in_count})</span>
                  </div>
                )}
                {compare && change && <p className="muted" data-testid="vs-last-week">{t("vsLastWeek", { pct: change })}</p>}
              </>
            );
          }}
        </Missing>
      </div>
      <div className="card">
        <div className="row">
          <label>
            {t("month")}{" "}
            <input type="month" value={month} max={today.slice(0, 7)} onChange={(e) => e.target.value && setMonth(e.target.value)} />
          </label>
        </div>
        <h2 style={{ marginTop: "0.8rem" }}>{t("daily")}</h2>
        <Missing result={days}>
          {(report) => (
            <Bars
              testId="daily"
              title={t("daily")}
              values={report.buckets.map((b) => b.in_count)}
              labels={report.buckets.map((b) => String(Number(b.start.slice(8, 10))))}
              labelEvery={5}
            />
          )}
        </Missing>
      </div>
      <div className="card">
        <h2>{t("heatmap")}</h2>
        <Missing result={heat}>
          {(data) => <HeatmapGrid rows={data.weekdays} weekdays={t("weekdays").split(",")} title={t("heatmap")} />}
        </Missing>
      </div>
    </section>
  );
}
