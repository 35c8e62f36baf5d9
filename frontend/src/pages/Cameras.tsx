import { useCallback, useEffect, useState } from "react";
import { ApiError, getJson, request, sendJson, type Camera, type Store } from "../api";
import { LineEditor, type Segment } from "../components/LineEditor";
import { useT } from "../i18n";

interface Snapshot {
  url: string;
  width: number;
  height: number;
}

function CameraCard({ camera, onChanged }: { camera: Camera; onChanged: () => void }) {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [snapshot, setSnapshot] = useState<Snapshot | null>(null);
  const line = camera.lines[0];
  const state = camera.enabled ? (camera.actor?.state ?? camera.last_status?.state ?? "—") : t("disabled");
  const lastError = camera.actor?.last_error ?? camera.last_status?.error ?? null;

  useEffect(
    () => () => {
      if (snapshot) URL.revokeObjectURL(snapshot.url);
    },
    [snapshot],
  );

  const act = async (what: () => Promise<unknown>, done: string) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await what();
      setNotice(done);
      onChanged();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.status}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  };

  const takeSnapshot = () =>
    act(async () => {
      // Fetched with the token and shown from memory: the frame is never stored anywhere.
      const response = await request(`/api/admin/cameras/${camera.id}/snapshot`);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const size = await new Promise<[number, number]>((resolve) => {
        const img = new Image();
        img.onload = () => resolve([img.naturalWidth, img.naturalHeight]);
        img.onerror = () => resolve([0, 0]);
        img.src = url;
      });
      const width = Number(response.headers.get("X-Frame-Width")) || size[0];
      const height = Number(response.headers.get("X-Frame-Height")) || size[1];
      setSnapshot({ url, width, height });
    }, "");

  return (
    <div className="card" data-testid="camera" data-camera-id={camera.id}>
      <div className="camera-head">
        <span className="camera-name">{camera.name}</span>
        <span className={`pill ${state === "running" ? "pill-live" : camera.enabled ? "pill-camera-offline" : ""}`} data-testid="camera-state">
          <span className="dot" />
          {state}
        </span>
      </div>
      <dl className="facts">
        <dt>{t("fps")}</dt>
        <dd data-testid="camera-fps">{(camera.actor?.fps ?? camera.last_status?.fps ?? 0).toFixed(1)}</dd>
        <dt>{t("restarts")}</dt>
        <dd data-testid="camera-restarts">{camera.actor?.restarts ?? 0}</dd>
        <dt>{t("source")}</dt>
        <dd>{camera.source}</dd>
        <dt>{t("lastError")}</dt>
        <dd>{lastError ?? "—"}</dd>
      </dl>
      <div className="actions">
        <button
          className="primary"
          disabled={busy || !camera.enabled}
          data-testid="restart"
          onClick={() => act(() => sendJson("POST", `/api/admin/cameras/${camera.id}/restart`), t("restarted"))}
        >
          {t("restart")}
        </button>
        <button
          className="secondary"
          disabled={busy}
          data-testid="toggle"
          onClick={() =>
            act(() => sendJson("POST", `/api/admin/cameras/${camera.id}/${camera.enabled ? "disable" : "enable"}`), "")
          }
        >
          {camera.enabled ? t("disable") : t("enable")}
        </button>
        {line && !snapshot && (
          <button className="secondary" disabled={busy} data-testid="snapshot" onClick={takeSnapshot}>
            {t("editLine")}
          </button>
        )}
      </div>
      {!line && <p className="muted">{t("noCameraLine")}</p>}
      {notice && <div className="notice" role="status" data-testid="notice">{notice}</div>}
      {error && <p className="error" role="alert">{error}</p>}
      {snapshot && line && (
        <LineEditor
          image={snapshot.url}
          width={snapshot.width}
          height={snapshot.height}
          line={line}
          onCancel={() => setSnapshot(null)}
          onSave={(segment: Segment, inside) =>
            act(async () => {
              await sendJson("PUT", `/api/admin/lines/${line.id}`, {
                name: line.name,
                segment,
                inside,
                footfall: line.footfall,
              });
              setSnapshot(null);
            }, t("saved"))
          }
        />
      )}
    </div>
  );
}

export default function CamerasPage({ store }: { store: Store }) {
  const t = useT();
  const [cameras, setCameras] = useState<Camera[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    getJson<Camera[]>(`/api/cameras?store_id=${store.id}`).then(
      (list) => {
        setCameras(list);
        setError(null);
      },
      (err: unknown) => setError(String(err instanceof Error ? err.message : err)),
    );
  }, [store.id]);

  useEffect(() => {
    load();
    const timer = setInterval(load, 5000); // state and fps move on their own
    return () => clearInterval(timer);
  }, [load]);

  return (
    <section className="page cameras">
      {error && <p className="error">{error}</p>}
      {!cameras && !error && <p className="muted">{t("loading")}</p>}
      {cameras?.map((c) => <CameraCard key={c.id} camera={c} onChanged={load} />)}
    </section>
  );
}
