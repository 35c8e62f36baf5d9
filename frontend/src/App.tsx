import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  ApiError,
  getJson,
  getToken,
  liveSocketUrl,
  setToken,
  takeTokenFromUrl,
  type Alert,
  type AlertMessage,
  type Role,
  type Store,
} from "./api";
import { alertText, applyAlertMessage, mergeOpenAlerts } from "./alerts";
import { LangContext, LANGUAGE_NAMES, LANGUAGES, pickLanguage, translate, type Key, type Lang } from "./i18n";
import { LiveConnection, type LiveSnapshot } from "./live";
import { LivePage, liveStatus, type Status } from "./pages/Live";
import { SignIn } from "./pages/SignIn";

// Pages other than Live load on first visit: the home screen's JavaScript stays small.
const HistoryPage = lazy(() => import("./pages/History"));
const ReportsPage = lazy(() => import("./pages/Reports"));
const CamerasPage = lazy(() => import("./pages/Cameras"));

type Page = "live" | "history" | "reports" | "cameras";
const PAGES: Page[] = ["live", "history", "reports", "cameras"];

function pageFromHash(): Page {
  const name = window.location.hash.replace(/^#\/?/, "");
  return (PAGES as string[]).includes(name) ? (name as Page) : "live";
}

type Session =
  | { kind: "signed-out"; error?: Key }
  | { kind: "checking" }
  | { kind: "ready"; role: Role; stores: Store[] };

const STATUS_KEY: Record<Status, Key> = {
  live: "stateLive",
  connecting: "stateConnecting",
  reconnecting: "stateReconnecting",
  "camera-offline": "stateCameraOffline",
  denied: "stateDenied",
};

export function App() {
  const [lang, setLang] = useState<Lang>(() =>
    pickLanguage(localStorage.getItem("metrica.lang"), navigator.languages ?? [navigator.language]),
  );
  const t = useCallback((key: Key, vars?: Record<string, string | number>) => translate(lang, key, vars), [lang]);
  const [session, setSession] = useState<Session>({ kind: "checking" });
  const [page, setPage] = useState<Page>(pageFromHash);
  const [storeId, setStoreId] = useState<number | null>(null);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
    localStorage.setItem("metrica.lang", lang);
  }, [lang]);

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const signIn = useCallback(async (token: string | null) => {
    if (!token) {
      setSession({ kind: "signed-out" });
      return;
    }
    setToken(token);
    setSession({ kind: "checking" });
    try {
      const [who, stores] = await Promise.all([
        getJson<{ role: Role }>("/api/whoami"),
        getJson<Store[]>("/api/stores"),
      ]);
      setSession({ kind: "ready", role: who.role, stores });
    } catch (err) {
      const denied = err instanceof ApiError && (err.status === 401 || err.status === 403);
      if (denied) setToken(null);
      setSession({ kind: "signed-out", error: denied ? "badToken" : "networkError" });
    }
  }, []);

  useEffect(() => {
    void signIn(takeTokenFromUrl() ?? getToken());
  }, [signIn]);

  const signOut = () => {
    setToken(null);
    setSession({ kind: "signed-out" });
  };

  const stores = session.kind === "ready" ? session.stores : [];
  const store = stores.find((s) => s.id === storeId) ?? stores[0] ?? null;

  return (
    <LangContext.Provider value={lang}>
      {session.kind === "checking" && <div className="splash">{t("loading")}</div>}
      {session.kind === "signed-out" && <SignIn error={session.error} onSubmit={(token) => void signIn(token)} />}
      {session.kind === "ready" && store && (
        <Shell
          key={store.id}
          store={store}
          stores={stores}
          role={session.role}
          page={page}
          lang={lang}
          onLang={setLang}
          onStore={setStoreId}
          onSignOut={signOut}
          onDenied={() => void signIn(getToken())}
        />
      )}
      {session.kind === "ready" && !store && <div className="splash">{t("noData")}</div>}
    </LangContext.Provider>
  );
}

interface ShellProps {
  store: Store;
  stores: Store[];
  role: Role;
  page: Page;
  lang: Lang;
  onLang: (lang: Lang) => void;
  onStore: (id: number) => void;
  onSignOut: () => void;
  onDenied: () => void;
}

function Shell({ store, stores, role, page, lang, onLang, onStore, onSignOut, onDenied }: ShellProps) {
  const t = (key: Key, vars?: Record<string, string | number>) => translate(lang, key, vars);
  const [snapshot, setSnapshot] = useState<LiveSnapshot>({ connection: "connecting", state: null, receivedAt: null });
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const pushedDuringFetch = useRef<AlertMessage[] | null>(null);

  const connection = useMemo(() => {
    // Open alerts are fetched on every (re)connection: a phone that slept or lost the network missed
    // the alerts pushed meanwhile. An older server without alerts simply has none.
    const fetchOpenAlerts = () => {
      const pushed: AlertMessage[] = [];
      pushedDuringFetch.current = pushed;
      getJson<Alert[]>(`/api/stores/${store.id}/alerts?open=true`).then(
        (open) => {
          // only the latest fetch of the store on screen (a switch or a newer reconnection supersedes it)
          if (pushedDuringFetch.current === pushed) setAlerts(mergeOpenAlerts(Array.isArray(open) ? open : [], pushed));
        },
        () => undefined,
      ).finally(() => {
        if (pushedDuringFetch.current === pushed) pushedDuringFetch.current = null;
      });
    };
    return new LiveConnection({
      url: () => liveSocketUrl(store.id),
      onChange: setSnapshot,
      onConnected: fetchOpenAlerts,
      onAlert: (message: AlertMessage) => {
        pushedDuringFetch.current?.push(message);
        setAlerts((current) => applyAlertMessage(current, message));
      },
    });
  }, [store.id]);

  useEffect(() => {
    connection.start();
    const wake = () => document.visibilityState === "visible" && connection.retryNow();
    const down = () => connection.markDown();
    const up = () => connection.retryNow();
    document.addEventListener("visibilitychange", wake);
    window.addEventListener("offline", down);
    window.addEventListener("online", up);
    return () => {
      connection.stop();
      document.removeEventListener("visibilitychange", wake);
      window.removeEventListener("offline", down);
      window.removeEventListener("online", up);
    };
  }, [connection]);

  useEffect(() => {
    pushedDuringFetch.current = null;
    setAlerts([]);
  }, [store.id]);

  useEffect(() => {
    if (snapshot.connection === "denied") onDenied();
  }, [snapshot.connection, onDenied]);

  const status = liveStatus(snapshot);
  const tabs: Page[] = role === "admin" ? PAGES : ["live", "history", "reports"];

  return (
    <div className="app">
      <header className="top">
        <div className="title">
          {stores.length > 1 ? (
            <select aria-label={t("store")} value={store.id} onChange={(e) => onStore(Number(e.target.value))}>
              {stores.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          ) : (
            <span className="store-name">{store.name}</span>
          )}
        </div>
        <span className={`pill pill-${status}`} data-testid="status" data-status={status}>
          <span className="dot" />
          {t(STATUS_KEY[status])}
        </span>
      </header>
      {alerts.map((a) => (
        <div key={a.id} className="alert-banner" role="alert" data-testid="alert">
          <strong>{t("alert")}:</strong> {alertText(a, lang, store.timezone)}
        </div>
      ))}
      <main>
        {page === "live" && <LivePage store={store} snapshot={snapshot} />}
        <Suspense fallback={<div className="page muted">{t("loading")}</div>}>
          {page === "history" && <HistoryPage store={store} />}
          {page === "reports" && <ReportsPage store={store} />}
          {page === "cameras" &&
            (role === "admin" ? (
              <CamerasPage store={store} />
            ) : (
              <section className="page">
                <div className="card" data-testid="admin-only">
                  {t("adminOnly")}
                </div>
              </section>
            ))}
        </Suspense>
        <footer className="settings">
          <label>
            {t("language")}{" "}
            <select value={lang} onChange={(e) => onLang(e.target.value as Lang)} data-testid="language">
              {(Object.keys(LANGUAGES) as Lang[]).map((code) => (
                <option key={code} value={code}>
                  {LANGUAGE_NAMES[code]}
                </option>
              ))}
            </select>
          </label>
          <button className="link" onClick={onSignOut}>
            {t("signOut")}
          </button>
        </footer>
      </main>
      <nav className="tabs">
        {tabs.map((p) => (
          <a key={p} href={`#/${p}`} className={p === page ? "active" : ""} data-testid={`tab-${p}`}>
            <span className="tab-icon" aria-hidden>
              {ICONS[p]}
            </span>
            {t(p)}
          </a>
        ))}
      </nav>
    </div>
  );
}

const ICONS: Record<Page, string> = { live: "●", history: "▮", reports: "☰", cameras: "◉" };
