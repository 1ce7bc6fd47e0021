import { PassThrough, type Readable, type Writable } from "node:stream";
import type { Engine } from "../../engine/engine.ts";
import { isVmError } from "../../errors.ts";
import type { Services } from "../../env/services.ts";
import { decodeError } from "../../snapshot-file/archive-decode.ts";
import { tee } from "../../lib/tee.ts";
import { guardedImage, ImageGuard, type NamePolicy } from "../../snapshot-file/image-guard.ts";

/** What a load may have made: the engine's images before it, what it reported, the tar's own IDs. */
export interface LoadRecord {
  /** The engine's image IDs just before the load. */
  before: Set<string> | undefined;
  /** What the engine said it loaded. */
  reported: string[];
  /** The manifest digests the image tar's OCI index lists (the containerd store's image IDs). */
  digests: string[];
  /** The layers the manifest records, to recognise an image the engine made from a docker-layout tar. */
  layers: string[];
  /** Tags the image tar named (strip policy: taken out before the engine saw them). */
  names: string[];
}

export function newLoadRecord(): LoadRecord {
  return { before: undefined, reported: [], digests: [], layers: [], names: [] };
}

/**
 * Streams images/base.tar into the engine through the ImageGuard, with a copy to `verifier`. A load the
 * guard or the engine refuses is not thrown at once: the rest of the image still goes to the verifier,
 * so that a damaged file is reported by the digest that names the damage; the caller throws `deferred`
 * after its digest checks. Losing the engine is thrown at once.
 */
export async function loadImage(
  engine: Engine,
  image: Readable,
  verifier: Writable,
  load: LoadRecord,
  policy: NamePolicy,
): Promise<{ deferred: unknown }> {
  // A broken file is reported by the archive reader; here the image stream only has to stop (and must
  // not count as an unhandled error while the engine is asked what it has).
  image.on("error", () => {});
  // What the engine holds now: a failed load may leave an image behind (the containerd store keeps one
  // whose layers failed to unpack), and only images that were not here before may be removed.
  load.before = new Set((await engine.images.list({})).map((i) => i.id));
  const toVerifier = new PassThrough({ highWaterMark: 1024 * 1024 });
  const toEngine = new PassThrough({ highWaterMark: 1024 * 1024 });
  // Their errors reach the caller through the load (toEngine) and the archive reader (the file itself).
  toEngine.on("error", () => {});
  toVerifier.on("error", () => {});
  toVerifier.pipe(verifier);
  // The engine may stop reading (a refused load) while the verifier reads on. A broken file surfaces
  // through the archive reader; the copies only need to stop, the engine's with the decoded reason.
  const feeding = tee(
    image as AsyncIterable<Buffer>,
    [{ stream: toVerifier }, { stream: toEngine, optional: true }],
    {
      errorFor: (error) => decodeError(error) as Error,
    },
  ).catch(() => {});
  const guard = new ImageGuard(policy);
  const guarded = guardedImage(toEngine, guard);
  let refused: unknown;
  guarded.once("error", (error) => (refused = error));
  let deferred: unknown;
  try {
    load.reported = await engine.images.load(guarded);
  } catch (error) {
    const cause = refused ?? error;
    if (
      !isVmError(cause, "IMAGE_NAMES_REFUSED") &&
      !isVmError(cause, "IMAGE_INVALID") &&
      !isVmError(cause, "LOAD_FAILED")
    )
      throw cause;
    deferred = cause;
    guarded.destroy();
    toEngine.destroy();
  } finally {
    load.digests = guard.manifestDigests;
    load.names = guard.names;
  }
  await feeding;
  return { deferred };
}

/**
 * Removes what a failed or interrupted load left: images the engine did not have before it that are this
 * file's image (by the IDs the engine reported or the tar lists, or by their layers). An image that was
 * already there, under whatever name, is never touched.
 */
export async function removeLoaded(
  services: Services,
  load: LoadRecord,
  present: string | undefined,
): Promise<void> {
  const { before } = load;
  if (present || !before) return;
  const { engine } = services;
  const candidates = new Set([...load.reported, ...load.digests]);
  try {
    for (const image of await engine.images.list({})) {
      if (before.has(image.id) || candidates.has(image.id)) continue;
      const details = await engine.images.inspect(image.id);
      if (details && load.layers.length > 0 && JSON.stringify(details.layers) === JSON.stringify(load.layers))
        candidates.add(image.id);
    }
    for (const id of candidates) {
      if (before.has(id)) continue;
      await engine.images.remove(id, { force: true }).catch(() => {});
    }
  } catch {
    // Best effort, on the way out of a failure that is what gets reported: an engine that went away
    // mid-load dropped the load itself.
  }
}
