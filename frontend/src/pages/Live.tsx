import { useEffect, useRef, useState } from "react";
import { getJson, type Store, type TrafficReport } from "../api";
import { Curve } from "../components/Curve";
import { useT } from "../i18n";
import type { LiveSnapshot } from "../live";
import { storeClock, wallHour, wallTime } from "../times";

export type Status = "live" | "connecting" | "reconnecting" | "camera-offline" | "denied";

/** What the status pill says: "live" only with an open socket and at least one camera online. */
export function liveStatus(snapshot: LiveSnapshot): Status {
  const { connection, state } = snapshot;
  if (connection === "denied" || connection === "unknown-store") return "denied";
  if (connection !== "live" || !state) return state ? "reconnecting" : "connecting";
  if (state.cameras_online === 0) return "camera-offline"; // none running (or all disabled): nobody counts
  return "live";
}

/** Cumulative INs at the end of each hour of the day so far (hours after now are left out). */
export function cumulative(report: TrafficReport, now: Date, liveIn?: number): number[] {
  const points: number[] = [];
  let sum = 0;
  for (const bucket of report.buckets) {
    if (new Date(bucket.start).getTime() > now.getTime()) break;
    sum += bucket.in_count;
    points.push(sum);
  }
  // The live count is newer than the stored hours: let the last point show it.
  if (liveIn !== undefined && points.length > 0 && liveIn > points[points.length - 1]) points[points.length - 1] = liveIn;
  return points;
}

export function LivePage({ store, snapshot }: { store: Store; snapshot: LiveSnapshot }) {
  const t = useT();
  const { state } = snapshot;
  const status = liveStatus(snapshot);
  // With the socket down the number is old; with no camera online nobody is counting: either way, not live.
  const fresh = status === "live";
  const connected = status === "live" || status === "camera-offline";
  const [today, setToday] = useState<TrafficReport | null | "failed">(null);
  const visitorsIn = state?.visitors_in;
  const lastFetch = useRef(0);

  useEffect(() => {
    // Refresh the stored hours when the count moves, at most every 5 s (the live point fills the gap).
    const wait = Math.max(0, lastFetch.current + 5000 - Date.now());
    const timer = setTimeout(() => {
      lastFetch.current = Date.now();
      getJson<TrafficReport>(`/api/stores/${store.id}/traffic?bucket=hour`).then(setToday, () =>
        setToday((shown) => shown ?? "failed"),
      );
    }, wait);
    return () => clearTimeout(timer);
  }, [store.id, visitorsIn]);

  useEffect(() => {
    if (state && fresh && performance.getEntriesByName("metrica-live-rendered").length === 0) {
      performance.mark("metrica-live-rendered"); // the first live number on screen (read by the e2e test)
    }
  }, [state, fresh]);

  const offline = state ? state.cameras_total - state.cameras_online : 0;
  return (
    <section className={`page live ${fresh ? "" : "stale"}`} data-testid="live-page">
      <div className="hero">
        <div className="inside" data-testid="inside" aria-live="polite">
          {state ? state.inside : "–"}
          {state?.occupancy_limit ? <span className="limit"> / {state.occupancy_limit}</span> : null}
        </div>
        <div className="inside-label">{t("insideNow")}</div>
        {!connected && state && snapshot.receivedAt && (
          <div className="stale-note" data-testid="stale-note">
            {t("staleSince", { time: storeClock(new Date(snapshot.receivedAt), store.timezone) })}
          </div>
        )}
      </div>
      {(offline > 0 || status === "camera-offline") && (
        <div className="warning" data-testid="cameras-offline">
          {status === "camera-offline"
            ? t("noCameraCounting")
            : t("camerasOffline", { n: offline, total: state?.cameras_total ?? 0 })}
        </div>
      )}
      <div className="tiles">
        <div className="tile">
          <div className="tile-value" data-testid="visitors-in">{state ? state.visitors_in : "–"}</div>
          <div className="tile-label">{t("in")}</div>
        </div>
        <div className="tile">
          <div className="tile-value" data-testid="visitors-out">{state ? state.visitors_out : "–"}</div>
          <div className="tile-label">{t("out")}</div>
        </div>
        <div className="tile">
          <div className="tile-value" data-testid="inflow">{state ? state.inflow_15m : "–"}</div>
          <div className="tile-label">{t("inflow15")}</div>
        </div>
      </div>
      {state && <p className="muted center">{t("sinceDayStart", { time: wallTime(state.day_start) })}</p>}
      <div className="card">
        <h2>{t("todayCurve")}</h2>
        {today && today !== "failed" ? (
          <Curve
            points={cumulative(today, new Date(), visitorsIn)}
            slots={today.buckets.length}
            labels={today.buckets.map((b) => wallHour(b.start))}
            title={t("todayCurve")}
          />
        ) : (
          <div className="chart-placeholder">{t(today === "failed" ? "notAvailable" : "loading")}</div>
        )}
      </div>
    </section>
  );
}
