import type { LayerProgress } from "../../engine/engine.ts";

/** Where each layer of an engine push or pull stands, from the engine's progress stream. */
export interface LayerTally {
  /** Layers moved (uploaded or downloaded). */
  moved: number;
  /** Layers the other side already had (or mounted from another repository), so nothing moved. */
  skipped: number;
  /** Bytes of the layers moving or moved, as far as the engine says. */
  done: number;
  total: number;
}

const SKIPPED = /^(Layer already exists|Already exists|Mounted from)/;
const MOVED = /^(Pushed|Pull complete|Download complete)$/;
const MOVING = /^(Pushing|Downloading)$/;

/** Follows the engine's per-layer messages; `tally()` says where the whole transfer stands. */
export class LayerTracker {
  private readonly layers = new Map<
    string,
    { state: "moving" | "moved" | "skipped"; current: number; total: number }
  >();

  update(event: LayerProgress): void {
    if (!/^[0-9a-f]{12,64}$/.test(event.id)) return;
    const layer = this.layers.get(event.id) ?? { state: "moving" as const, current: 0, total: 0 };
    if (SKIPPED.test(event.status)) layer.state = "skipped";
    else if (MOVED.test(event.status)) {
      if (layer.state !== "skipped") layer.state = "moved";
      layer.current = layer.total;
    } else if (MOVING.test(event.status)) {
      if (event.total) layer.total = event.total;
      if (event.current !== undefined) layer.current = event.current;
    }
    this.layers.set(event.id, layer);
  }

  /**
   * Where the transfer stands. With `layers` (the image's layer count, once known), every layer that did
   * not move counts as already there: the containerd store reports only the layers it moves.
   */
  tally(layers?: number): LayerTally {
    const out: LayerTally = { moved: 0, skipped: 0, done: 0, total: 0 };
    for (const layer of this.layers.values()) {
      if (layer.state === "skipped") out.skipped++;
      else {
        if (layer.state === "moved") out.moved++;
        out.done += layer.current;
        out.total += layer.total;
      }
    }
    if (layers !== undefined) out.skipped = Math.max(0, layers - out.moved);
    return out;
  }
}

/** "3 layers pushed, 5 already there" */
export function layerSummaryText(tally: LayerTally, verb: string): string {
  const parts = [`${tally.moved} layer${tally.moved === 1 ? "" : "s"} ${verb}`];
  if (tally.skipped) parts.push(`${tally.skipped} already there`);
  return parts.join(", ");
}
