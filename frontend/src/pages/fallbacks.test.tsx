// Pages built against endpoints other parts of the server provide: an older server without them shows a
// plain "not available", never a crash or an endless spinner.
import { render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Store } from "../api";
import HistoryPage from "./History";
import ReportsPage from "./Reports";

const store: Store = { id: 1, name: "Shop", timezone: "Europe/Paris", day_start_hour: 0, occupancy_limit: null };

function serve(routes: Record<string, unknown>) {
  const seen: string[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (path: string) => {
      seen.push(path);
      const key = Object.keys(routes).find((prefix) => path.startsWith(prefix));
      if (key === undefined)
        return new Response(JSON.stringify({ status_code: 404, detail: `no such resource: GET ${path}` }), { status: 404 });
      return new Response(JSON.stringify(routes[key]), { status: 200 });
    }),
  );
  return seen;
}

function hours(date: string, counts: number[]) {
  return {
    bucket: "hour",
    in_count: counts.reduce((a, b) => a + b, 0),
    out_count: 0,
    buckets: counts.map((n, h) => ({
      start: `${date}T${String(h).padStart(2, "0")}:00:00+01:00`,
      end: "",
      in_count: n,
      out_count: 0,
    })),
  };
}

describe("pages on a server without every endpoint", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("Reports says not available when the server has no reports", async () => {
    serve({});
    render(<ReportsPage store={store} />);
    expect((await screen.findByTestId("not-available")).textContent).toBe("Not available yet on this server.");
  });

  it("Reports lists each day with its downloads, the token in the link", async () => {
    localStorage.setItem("metrica.token", "viewer-token");
    serve({ "/api/stores/1/reports": [{ date: "2026-11-23", version: 2, generated_at: "", in_count: 41, out_count: 40 }] });
    render(<ReportsPage store={store} />);
    const row = await screen.findByTestId("report");
    expect(row.textContent).toContain("In 41 · Out 40");
    const links = [...row.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    expect(links).toEqual([
      "/api/stores/1/reports/2026-11-23/html?token=viewer-token",
      "/api/stores/1/reports/2026-11-23/csv?token=viewer-token",
      "/api/stores/1/reports/2026-11-23/pdf?token=viewer-token",
    ]);
    localStorage.clear();
  });

  it("History shows the hours it has and marks the heat map not available", async () => {
    const counts = Array.from({ length: 24 }, (_, h) => (h === 10 ? 6 : h === 15 ? 2 : 0));
    const seen = serve({ "/api/stores/1/traffic?bucket=hour": hours("2026-11-24", counts), "/api/stores/1/traffic?bucket=day": hours("2026-11-01", []) });
    render(<HistoryPage store={store} />);
    expect((await screen.findByTestId("day-total")).textContent).toBe("8");
    const bars = [...document.querySelectorAll('[data-testid="hourly"] [data-testid="bar"]')];
    expect(bars.map((b) => Number(b.getAttribute("data-value")))).toEqual(counts);
    expect((await screen.findAllByTestId("not-available")).length).toBeGreaterThanOrEqual(1);
    expect(screen.getByTestId("avg-dwell").textContent).toBe("–");
    // Last week's same day was asked for, for the comparison.
    expect(seen.filter((p) => p.includes("bucket=hour"))).toHaveLength(2);
  });
});
