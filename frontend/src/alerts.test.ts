import { describe, expect, it } from "vitest";
import { alertText, applyAlertMessage, mergeOpenAlerts } from "./alerts";
import type { Alert, AlertMessage } from "./api";

const base: Alert = {
  id: 1,
  store_id: 3,
  kind: "occupancy",
  subject: "",
  camera_id: null,
  message: "server text",
  opened_at: "2026-11-24T10:00:00Z",
  resolved_at: null,
};
const now = new Date("2026-11-24T10:05:00Z");
const TUNIS = "Africa/Tunis"; // UTC+1

describe("alert banner text", () => {
  it("writes the occupancy alert from its numbers, in the reader's language", () => {
    const a = { ...base, details: { inside: 31, limit: 30 } };
    expect(alertText(a, "en", TUNIS, now)).toBe("31 people inside: above the limit of 30");
    expect(alertText(a, "fr", TUNIS, now)).toBe("31 personnes à l'intérieur : au-dessus de la limite de 30");
    expect(alertText(a, "ar", TUNIS, now)).toContain("31");
  });

  it("gives an offline camera's last running time on the store's clock, with the date when it is old", () => {
    const a = {
      ...base,
      kind: "camera_offline",
      details: { camera: "Entrée", state: "reconnecting", error: "timeout", last_running: "2026-11-24T09:40:00Z" },
    };
    expect(alertText(a, "fr", TUNIS, now)).toBe("La caméra Entrée ne compte plus depuis 10:40");
    const old = { ...a, details: { ...a.details, last_running: "2026-11-22T18:15:00Z" } };
    expect(alertText(old, "en", TUNIS, now)).toBe("Camera Entrée stopped counting at 2026-11-22 19:15");
    const never = { ...a, details: { ...a.details, last_running: null } };
    expect(alertText(never, "en", TUNIS, now)).toBe("Camera Entrée has not counted since it was set up");
  });

  it("compares low traffic with the usual count for that hour", () => {
    const a = {
      ...base,
      kind: "low_traffic",
      details: { hour_start: "2026-11-24T08:00:00+00:00", in_count: 3, usual: 24.6, weeks: [25, 24, 26, 23] },
    };
    expect(alertText(a, "en", TUNIS, now)).toBe("Only 3 visitors at 09:00, against 25 usually");
    expect(alertText(a, "fr", TUNIS, now)).toBe("Seulement 3 visiteurs à 09:00, contre 25 d'habitude");
  });

  it("falls back to the server's message for an unknown kind or missing numbers", () => {
    expect(alertText({ ...base, kind: "door_open", details: { x: 1 } }, "fr", TUNIS, now)).toBe("server text");
    expect(alertText({ ...base, details: {} }, "fr", TUNIS, now)).toBe("server text");
    expect(alertText({ ...base }, "en", TUNIS, now)).toBe("server text"); // no details at all
    const partial = { ...base, kind: "low_traffic", details: { hour_start: "x", in_count: 3, usual: 20 } };
    expect(alertText(partial, "en", TUNIS, now)).toBe("server text");
  });
});

describe("open alerts", () => {
  const a = (id: number): Alert => ({ ...base, id });
  const fired = (id: number): AlertMessage => ({ type: "alert", event: "fired", alert: a(id) });
  const resolved = (id: number): AlertMessage => ({ type: "alert", event: "resolved", alert: a(id) });

  it("adds a fired alert once and removes a resolved one", () => {
    expect(applyAlertMessage([a(1)], fired(2)).map((x) => x.id)).toEqual([1, 2]);
    expect(applyAlertMessage([a(1), a(2)], fired(2)).map((x) => x.id)).toEqual([1, 2]);
    expect(applyAlertMessage([a(1), a(2)], resolved(1)).map((x) => x.id)).toEqual([2]);
    expect(applyAlertMessage([], resolved(1))).toEqual([]);
  });

  it("keeps what was pushed while the open alerts were being fetched", () => {
    // the fetch answered before alert 3 fired and alert 1 resolved, both pushed meanwhile
    expect(mergeOpenAlerts([a(1), a(2)], [fired(3), resolved(1)]).map((x) => x.id)).toEqual([2, 3]);
    expect(mergeOpenAlerts([a(1)], []).map((x) => x.id)).toEqual([1]);
  });
});
