import type { Engine } from "./engine.ts";
import { isConflict, isNotFound } from "./errors.ts";

/**
 * Removes an image and the untagged images of its build steps. The classic store removes those with the
 * image; the containerd store keeps each step as a dangling image, so walk the parents until a tagged one
 * (the FROM image). With `untag`, the image's tags go first, so that an image still in use (a container,
 * or an image built on it: a 409) stays only as an untagged base, left to its owner; returns false then.
 */
export async function removeImageChain(
  engine: Engine,
  id: string,
  options: { untag?: boolean } = {},
): Promise<boolean> {
  const image = await engine.images.inspect(id);
  if (!image) return true;
  // The parent is known from here on: on the containerd store, removing an image's last tag removes the
  // image record, and the only record of its parent with it.
  if (options.untag) for (const tag of image.tags) await removeImageIfUnused(engine, tag);
  if (!(await removeImageIfUnused(engine, id))) return false;
  if (image.parent) await removeUntaggedAncestors(engine, image.parent);
  return true;
}

/** Removes `id` and its parents while they are untagged and unused; stops at the first tagged or used one. */
export async function removeUntaggedAncestors(engine: Engine, id: string): Promise<void> {
  let current: string | undefined = id;
  for (let step = 0; current && step < 500; step++) {
    const image = await engine.images.inspect(current);
    if (!image || image.tags.length > 0) return;
    if (!(await removeImageIfUnused(engine, current))) return;
    current = image.parent || undefined;
  }
}

/**
 * Removes an image or tag unless a container or another image still needs it. True when it is gone (removed
 * now or already absent), false when it was left because it is in use.
 */
export async function removeImageIfUnused(engine: Engine, ref: string): Promise<boolean> {
  try {
    await engine.images.remove(ref);
    return true;
  } catch (error) {
    if (isConflict(error)) return false;
    if (isNotFound(error)) return true;
    throw error;
  }
}
