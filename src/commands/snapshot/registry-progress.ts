import { Progress } from "../../cli/progress.ts";
import type { Io } from "../../lib/io.ts";
import { layerSummaryText, type LayerTally } from "../../snapshot/registry/layers.ts";

/** A progress bar over an engine push or pull's layers: bytes of the layers that move, on a terminal. */
export function layerProgress(
  io: Io,
  label: string,
  verb: string,
): { update(tally: LayerTally): void; finish(): void } {
  const progress = new Progress(io.stderr, label);
  let shown = 0;
  return {
    update(tally) {
      if (tally.total > 0) progress.setTotal(tally.total);
      progress.setDetail(layerSummaryText(tally, verb));
      if (tally.done > shown) {
        progress.tick(tally.done - shown);
        shown = tally.done;
      }
    },
    finish: () => progress.finish(),
  };
}

export { layerSummaryText as layerSummary } from "../../snapshot/registry/layers.ts";
