// An alert's banner text in the reader's language, from its kind and numbers (`details`); the server's
// English `message` is the fallback for a kind (or an older server) this client does not know.
import type { Alert, AlertMessage } from "./api";
import { type Lang, translate } from "./i18n";
import { storeClock } from "./times";

type Details = Record<string, unknown>;

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);

/** "HH:MM" on the store's clock, with the date when it is not within the last 20 hours. */
function when(iso: string, timeZone: string, now: Date): string | null {
  const instant = new Date(iso);
  if (Number.isNaN(instant.getTime())) return null;
  const clock = storeClock(instant, timeZone);
  if (now.getTime() - instant.getTime() < 20 * 3600_000) return clock;
  const date = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  return `${date.format(instant)} ${clock}`;
}

export function alertText(alert: Alert, lang: Lang, timeZone: string, now: Date = new Date()): string {
  const d: Details = alert.details ?? {};
  const t = (key: Parameters<typeof translate>[1], vars: Record<string, string | number>) => translate(lang, key, vars);
  switch (alert.kind) {
    case "occupancy": {
      const inside = num(d.inside);
      const limit = num(d.limit);
      if (inside !== null && limit !== null) return t("alertOccupancy", { inside, limit });
      break;
    }
    case "camera_offline": {
      const camera = str(d.camera);
      if (camera === null) break;
      if (d.last_running === null) return t("alertCameraNeverRan", { camera });
      const time = typeof d.last_running === "string" ? when(d.last_running, timeZone, now) : null;
      if (time !== null) return t("alertCameraOffline", { camera, time });
      break;
    }
    case "low_traffic": {
      const n = num(d.in_count);
      const usual = num(d.usual);
      const time = typeof d.hour_start === "string" ? when(d.hour_start, timeZone, now) : null;
      if (n !== null && usual !== null && time !== null) return t("alertLowTraffic", { n, usual: Math.round(usual), time });
      break;
    }
  }
  return alert.message;
}

/** The open alerts after one pushed change: a fired alert is added (or replaced), a resolved one removed. */
export function applyAlertMessage(open: Alert[], message: AlertMessage): Alert[] {
  const others = open.filter((a) => a.id !== message.alert.id);
  return message.event === "fired" ? [...others, message.alert] : others;
}

/** The open alerts fetched after a (re)connection, with the changes pushed while the fetch was in flight
 * applied on top (the fetch may have been answered before them). */
export function mergeOpenAlerts(fetched: Alert[], pushedSince: readonly AlertMessage[]): Alert[] {
  return pushedSince.reduce(applyAlertMessage, fetched);
}
