// Draw or move a counting line on a snapshot: drag the two ends; the arrow points to the inside side.
// Coordinates are the camera frame's pixels (what the counter uses), whatever size the image is shown at.
import { useRef, useState } from "react";
import type { Line } from "../api";
import { useT } from "../i18n";

export type Segment = [number, number, number, number];

/** A unit vector from the segment's middle toward the inside side (sign of s(p), see LineConfig). */
export function insideNormal(segment: Segment, inside: "positive" | "negative"): [number, number] {
  const [x1, y1, x2, y2] = segment;
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  // s(p) = (x2-x1)*(py-y1) - (y2-y1)*(px-x1) grows along n = (-(y2-y1), x2-x1).
  const nx = -(y2 - y1) / len;
  const ny = (x2 - x1) / len;
  return inside === "positive" ? [nx, ny] : [-nx, -ny];
}

export interface LineEditorProps {
  image: string;
  width: number;
  height: number;
  line: Line;
  onSave: (segment: Segment, inside: "positive" | "negative") => Promise<void>;
  onCancel: () => void;
}

export function LineEditor({ image, width, height, line, onSave, onCancel }: LineEditorProps) {
  const t = useT();
  const [segment, setSegment] = useState<Segment>(line.segment);
  const [inside, setInside] = useState(line.inside);
  const [saving, setSaving] = useState(false);
  const drag = useRef<0 | 1 | null>(null);
  const svg = useRef<SVGSVGElement>(null);

  const toFrame = (event: React.PointerEvent): [number, number] => {
    const box = svg.current!.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * width;
    const y = ((event.clientY - box.top) / box.height) * height;
    return [Math.round(Math.min(width, Math.max(0, x))), Math.round(Math.min(height, Math.max(0, y)))];
  };

  const move = (event: React.PointerEvent) => {
    if (drag.current === null) return;
    const [x, y] = toFrame(event);
    setSegment((s) => (drag.current === 0 ? [x, y, s[2], s[3]] : [s[0], s[1], x, y]));
  };

  const [x1, y1, x2, y2] = segment;
  const [nx, ny] = insideNormal(segment, inside);
  const mx = (x1 + x2) / 2;
  const my = (y1 + y2) / 2;
  const arrow = Math.max(width, height) * 0.08;
  const r = Math.max(width, height) * 0.018;
  const same = x1 === x2 && y1 === y2;

  return (
    <div>
      <p className="muted">{t("snapshotHelp")}</p>
      <div className="editor">
        <img src={image} alt="" draggable={false} />
        <svg
          ref={svg}
          viewBox={`0 0 ${width} ${height}`}
          preserveAspectRatio="none"
          onPointerMove={move}
          onPointerUp={() => (drag.current = null)}
          onPointerLeave={() => (drag.current = null)}
          data-testid="line-editor"
        >
          <line className="seg" x1={x1} y1={y1} x2={x2} y2={y2} vectorEffect="non-scaling-stroke" />
          <line
            className="arrow"
            x1={mx}
            y1={my}
            x2={mx + nx * arrow}
            y2={my + ny * arrow}
            vectorEffect="non-scaling-stroke"
            markerEnd="url(#head)"
          />
          <defs>
            <marker id="head" markerWidth="6" markerHeight="6" refX="3" refY="3" orient="auto">
              <path d="M0,0 L6,3 L0,6 Z" fill="#22c55e" />
            </marker>
          </defs>
          <text className="arrow-label" x={mx + nx * arrow * 1.5} y={my + ny * arrow * 1.5} fontSize={r * 2} textAnchor="middle">
            {t("insideLabel")}
          </text>
          {[0, 1].map((end) => (
            <circle
              key={end}
              className="handle"
              data-testid={`handle-${end}`}
              cx={end === 0 ? x1 : x2}
              cy={end === 0 ? y1 : y2}
              r={r}
              vectorEffect="non-scaling-stroke"
              onPointerDown={(e) => {
                drag.current = end as 0 | 1;
                (e.target as Element).setPointerCapture?.(e.pointerId);
              }}
            />
          ))}
        </svg>
      </div>
      <p className="muted" data-testid="segment">
        {line.name}: ({x1}, {y1}) → ({x2}, {y2})
      </p>
      <div className="actions">
        <button className="secondary" onClick={() => setInside(inside === "positive" ? "negative" : "positive")} data-testid="flip">
          {t("flipInside")}
        </button>
        <button
          className="primary"
          disabled={saving || same}
          data-testid="save-line"
          onClick={async () => {
            setSaving(true);
            try {
              await onSave(segment, inside);
            } finally {
              setSaving(false);
            }
          }}
        >
          {t("save")}
        </button>
        <button className="link" onClick={onCancel}>
          {t("cancel")}
        </button>
      </div>
    </div>
  );
}
