import { once } from "node:events";
import type { Writable } from "node:stream";

/**
 * Waits until `stream` wants more data ("drain") or can take none ("close"), whichever comes first, and
 * leaves no listener behind: a race of two bare `once` calls keeps the loser's listeners (and the error
 * listener `once` adds) on the stream, one more at every backpressure wait, until Node warns of a leak.
 * Rejects when the stream errors first.
 */
export async function drainedOrClosed(stream: Writable): Promise<void> {
  const stop = new AbortController();
  try {
    await Promise.race([
      once(stream, "drain", { signal: stop.signal }),
      once(stream, "close", { signal: stop.signal }),
    ]);
  } finally {
    stop.abort();
  }
}
