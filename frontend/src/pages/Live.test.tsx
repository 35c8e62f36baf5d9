import { render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LiveState, Store, TrafficReport } from "../api";
import { LangContext } from "../i18n";
import type { LiveSnapshot } from "../live";
import { cumulative, LivePage, liveStatus } from "./Live";

const store: Store = { id: 1, name: "Shop", timezone: "Africa/Tunis", day_start_hour: 0, occupancy_limit: null };

function live(over: Partial<LiveState> = {}): LiveState {
  return {
    type: "live",
    store_id: 1,
    inside: 7,
    visitors_in: 12,
    visitors_out: 5,
    inflow_15m: 3,
    day_start: "2026-11-24T00:00:00+01:00",
    updated_at: "2026-11-24T10:00:00+01:00",
    cameras_online: 1,
    cameras_total: 1,
    cameras: [],
    seq: 1,
    occupancy_limit: null,
    ...over,
  };
}

describe("LivePage", () => {
  afterEach(() => vi.restoreAllMocks());
  vi.stubGlobal(
    "fetch",
    vi.fn(async () => new Response(JSON.stringify({ buckets: [] }), { status: 200 })),
  );

  it("shows the counts of a live state", () => {
    const snapshot: LiveSnapshot = { connection: "live", state: live(), receivedAt: Date.now() };
    render(<LivePage store={store} snapshot={snapshot} />);
    expect(screen.getByTestId("inside").textContent).toBe("7");
    expect(screen.getByTestId("visitors-in").textContent).toBe("12");
    expect(screen.getByTestId("visitors-out").textContent).toBe("5");
    expect(screen.getByTestId("inflow").textContent).toBe("3");
    expect(screen.queryByTestId("stale-note")).toBeNull();
    expect(screen.getByText("since 00:00")).toBeTruthy();
  });

  it("never presents a kept number as live: it is marked stale with the time it was received", () => {
    const receivedAt = Date.parse("2026-11-24T09:05:00Z");
    const snapshot: LiveSnapshot = { connection: "reconnecting", state: live(), receivedAt };
    const { container } = render(
      <LangContext.Provider value="fr">
        <LivePage store={store} snapshot={snapshot} />
      </LangContext.Provider>,
    );
    expect(container.querySelector(".live")?.classList.contains("stale")).toBe(true);
    // 09:05 UTC is 10:05 in Tunis.
    expect(screen.getByTestId("stale-note").textContent).toBe("Dernière valeur à 10:05, pas en direct");
    expect(liveStatus(snapshot)).toBe("reconnecting");
  });

  it("tells a camera outage apart from a lost connection", () => {
    expect(liveStatus({ connection: "live", state: live({ cameras_online: 0 }), receivedAt: 1 })).toBe("camera-offline");
    const noneEnabled = live({ cameras_online: 0, cameras_total: 0 });
    expect(liveStatus({ connection: "live", state: noneEnabled, receivedAt: 1 })).toBe("camera-offline");
    expect(liveStatus({ connection: "live", state: live({ cameras_online: 1, cameras_total: 2 }), receivedAt: 1 })).toBe(
      "live",
    );
    expect(liveStatus({ connection: "connecting", state: null, receivedAt: null })).toBe("connecting");
    expect(liveStatus({ connection: "denied", state: live(), receivedAt: 1 })).toBe("denied");
    render(<LivePage store={store} snapshot={{ connection: "live", state: live({ cameras_online: 1, cameras_total: 3 }), receivedAt: 1 }} />);
    expect(screen.getByTestId("cameras-offline").textContent).toContain("2 of 3");
  });

  it("greys the number when no camera counts, and says why", () => {
    const { container } = render(
      <LivePage store={store} snapshot={{ connection: "live", state: live({ cameras_online: 0 }), receivedAt: 1 }} />,
    );
    expect(container.querySelector(".live")?.classList.contains("stale")).toBe(true);
    expect(screen.getByTestId("cameras-offline").textContent).toBe("No camera is counting: this number is not being updated");
    expect(screen.queryByTestId("stale-note")).toBeNull();
  });

  it("draws today's curve up to now, with the live count as its newest point", () => {
    const hour = (h: number, n: number) => ({
      start: `2026-11-24T${String(h).padStart(2, "0")}:00:00+01:00`,
      end: `2026-11-24T${String(h + 1).padStart(2, "0")}:00:00+01:00`,
      in_count: n,
      out_count: 0,
    });
    const report = { buckets: [hour(8, 2), hour(9, 3), hour(10, 4), hour(11, 9)] } as TrafficReport;
    const now = new Date("2026-11-24T09:30:00Z"); // 10:30 local: the 11:00 hour has not begun
    expect(cumulative(report, now)).toEqual([2, 5, 9]);
    expect(cumulative(report, now, 11)).toEqual([2, 5, 11]);
    expect(cumulative(report, now, 4)).toEqual([2, 5, 9]);
  });
});
