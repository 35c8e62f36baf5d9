// Store-local dates and hours. The API already sends bucket times in the store's zone (with their
// offset), so labels are read from the ISO text itself; the browser's own zone never enters.
import type { Store } from "./api";

/** "HH:MM" of an ISO date-time as written (the store's wall clock when the API wrote it). */
export function wallTime(iso: string): string {
  return iso.slice(11, 16);
}

/** "HH" of an ISO date-time as written. */
export function wallHour(iso: string): string {
  return iso.slice(11, 13);
}

function parts(instant: Date, timeZone: string): Record<string, string> {
  const fmt = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  return Object.fromEntries(fmt.formatToParts(instant).map((p) => [p.type, p.value]));
}

/** "HH:MM" of an instant on the store's wall clock. */
export function storeClock(instant: Date, timeZone: string): string {
  const p = parts(instant, timeZone);
  return `${p.hour}:${p.minute}`;
}

/** The business date (YYYY-MM-DD) holding ``instant``: before day_start_hour it is still yesterday. */
export function businessDate(store: Pick<Store, "timezone" | "day_start_hour">, instant: Date): string {
  const p = parts(instant, store.timezone);
  const date = `${p.year}-${p.month}-${p.day}`;
  return Number(p.hour) < store.day_start_hour ? addDays(date, -1) : date;
}

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Monday = 0 … Sunday = 6 of a YYYY-MM-DD date. */
export function weekdayIndex(date: string): number {
  return (new Date(`${date}T12:00:00Z`).getUTCDay() + 6) % 7;
}

/** [first day of the month, first day of the next month] of a YYYY-MM month. */
export function monthRange(month: string): [string, string] {
  const [y, m] = month.split("-").map(Number);
  const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, "0")}`;
  return [`${month}-01`, `${next}-01`];
}

export function percentChange(now: number, before: number): string | null {
  if (before <= 0) return null;
  const pct = Math.round(((now - before) / before) * 100);
  return `${pct > 0 ? "+" : ""}${pct}%`;
}
