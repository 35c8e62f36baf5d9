import { getJson, withToken, type ReportEntry, type Store } from "../api";
import { useLang, useT } from "../i18n";
import { useLoad } from "../useLoad";

function longDate(date: string, lang: string): string {
  return new Intl.DateTimeFormat(lang, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(`${date}T12:00:00Z`),
  );
}

export default function ReportsPage({ store }: { store: Store }) {
  const t = useT();
  const lang = useLang();
  const list = useLoad(() => getJson<ReportEntry[]>(`/api/stores/${store.id}/reports?limit=30`), [store.id]);
  const base = `/api/stores/${store.id}/reports`;
  return (
    <section className="page reports">
      <div className="card">
        <h2>{t("reports")}</h2>
        {list.status === "loading" && <p className="muted">{t("loading")}</p>}
        {list.status === "missing" && <p className="muted" data-testid="not-available">{t("notAvailable")}</p>}
        {list.status === "error" && <p className="error">{list.message}</p>}
        {list.status === "ok" && list.data.length === 0 && <p className="muted" data-testid="no-reports">{t("noReports")}</p>}
        {list.status === "ok" &&
          list.data.map((r) => (
            <div className="report" key={r.date} data-testid="report">
              <div>
                <div className="report-date">{longDate(r.date, lang)}</div>
                <div className="muted">
                  {t("in")} {r.in_count} · {t("out")} {r.out_count}
                </div>
              </div>
              <div className="report-actions">
                <a className="button primary" href={withToken(`${base}/${r.date}/html`)} target="_blank" rel="noreferrer">
                  {t("open")}
                </a>
                <a className="button" href={withToken(`${base}/${r.date}/csv`)} download={`metrica-${r.date}.csv`}>
                  CSV
                </a>
                <a className="button" href={withToken(`${base}/${r.date}/pdf`)} download={`metrica-${r.date}.pdf`}>
                  PDF
                </a>
              </div>
            </div>
          ))}
      </div>
    </section>
  );
}
