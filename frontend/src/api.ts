// The API client: the token lives in localStorage, every request sends it as a Bearer header.
export type Role = "viewer" | "admin";

export interface Store {
  id: number;
  name: string;
  timezone: string;
  day_start_hour: number;
  occupancy_limit: number | null;
}

export interface CameraSummary {
  camera_id: number;
  name: string;
  state: string | null;
  online: boolean;
  fps: number;
  since: string | null;
}

export interface LiveState {
  type: "live";
  store_id: number;
  inside: number;
  visitors_in: number;
  visitors_out: number;
  inflow_15m: number;
  day_start: string;
  updated_at: string;
  cameras_online: number;
  cameras_total: number;
  cameras: CameraSummary[];
  seq: number;
  occupancy_limit: number | null;
}

export interface Alert {
  id: number;
  store_id: number;
  kind: string;
  subject: string;
  camera_id: number | null;
  message: string; // English, from the server; the banner is written from kind + details (alerts.ts)
  details?: Record<string, unknown>;
  opened_at: string;
  resolved_at: string | null;
}

export interface AlertMessage {
  type: "alert";
  event: "fired" | "resolved";
  alert: Alert;
}

export interface TrafficBucket {
  start: string; // ISO, in the store's time zone
  end: string;
  in_count: number;
  out_count: number;
}

export interface TrafficReport {
  store_id: number;
  timezone: string;
  bucket: "hour" | "day";
  from: string;
  to: string;
  in_count: number;
  out_count: number;
  buckets: TrafficBucket[];
}

export interface DaySummary {
  date: string;
  in_count: number;
  out_count: number;
  peak_occupancy: number | null;
  peak_at: string | null;
  avg_dwell_seconds: number | null;
  camera_uptime: number | null;
}

export interface Heatmap {
  weekdays: number[][]; // 7 rows (Monday first) × 24 local hours: average INs
  days?: number;
}

export interface ReportEntry {
  date: string;
  version: number;
  generated_at: string;
  in_count: number;
  out_count: number;
}

export interface Line {
  id: number;
  camera_id: number;
  name: string;
  segment: [number, number, number, number];
  inside: "positive" | "negative";
  footfall: boolean;
}

export interface ActorInfo {
  camera_id: number;
  state: string;
  fps: number;
  last_error: string | null;
  restarts: number;
  since: string | null;
}

export interface Camera {
  id: number;
  store_id: number;
  name: string;
  source: string;
  fps: number;
  enabled: boolean;
  lines: Line[];
  actor: ActorInfo | null;
  last_status: { state: string; fps: number; error: string | null; ts: string } | null;
}

const TOKEN_KEY = "metrica.token";

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** A ?token= in the address (a sign-in link) is kept and removed from the address bar. */
export function takeTokenFromUrl(): string | null {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (!token) return null;
  url.searchParams.delete("token");
  window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  return token;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError(0, "network");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = (await response.json()) as { detail?: string };
      if (body.detail) detail = body.detail;
    } catch {
      /* not JSON */
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await request(path)).json()) as T;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await request(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return (await response.json()) as T;
}

export function withToken(path: string): string {
  const token = getToken();
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

export function liveSocketUrl(storeId: number): string {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws/stores/${storeId}/live?token=${encodeURIComponent(getToken() ?? "")}`;
}
