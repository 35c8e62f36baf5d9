import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Line } from "../api";
import { insideNormal, LineEditor } from "./LineEditor";

// The backend's side test (metrica/config.py LineConfig): s(p) = (x2-x1)*(py-y1) - (y2-y1)*(px-x1).
function side([x1, y1, x2, y2]: number[], px: number, py: number): number {
  return (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1);
}

describe("LineEditor", () => {
  it("points its arrow to the side the counter calls inside", () => {
    for (const seg of [
      [614, 29, 614, 570],
      [10, 200, 700, 200],
      [100, 400, 300, 50],
    ] as [number, number, number, number][]) {
      const mx = (seg[0] + seg[2]) / 2;
      const my = (seg[1] + seg[3]) / 2;
      const [px, py] = insideNormal(seg, "positive");
      expect(side(seg, mx + px * 10, my + py * 10)).toBeGreaterThan(0);
      const [nx, ny] = insideNormal(seg, "negative");
      expect(side(seg, mx + nx * 10, my + ny * 10)).toBeLessThan(0);
    }
  });

  it("saves the dragged segment and the flipped inside side", async () => {
    const line: Line = { id: 3, camera_id: 1, name: "door", segment: [100, 0, 100, 200], inside: "positive", footfall: true };
    const onSave = vi.fn(async () => undefined);
    render(<LineEditor image="data:," width={400} height={200} line={line} onSave={onSave} onCancel={() => undefined} />);
    const svg = screen.getByTestId("line-editor");
    // jsdom has no layout: give the overlay the size it would have on a phone (2 CSS px per frame px / 2).
    svg.getBoundingClientRect = () => ({ left: 0, top: 0, width: 200, height: 100, right: 200, bottom: 100, x: 0, y: 0, toJSON: () => ({}) });
    fireEvent.pointerDown(screen.getByTestId("handle-1"), { pointerId: 1 });
    fireEvent.pointerMove(svg, { clientX: 150, clientY: 50, pointerId: 1 });
    fireEvent.pointerUp(svg, { pointerId: 1 });
    expect(screen.getByTestId("segment").textContent).toContain("(300, 100)");
    fireEvent.click(screen.getByTestId("flip"));
    fireEvent.click(screen.getByTestId("save-line"));
    await vi.waitFor(() => expect(onSave).toHaveBeenCalledWith([100, 0, 300, 100], "negative"));
  });
});
