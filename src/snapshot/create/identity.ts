import { createHash } from "node:crypto";
import type { BorrowedBody, Engine } from "../../engine/engine.ts";
import { TarWalker } from "../../lib/tar-walk.ts";
import { VmError } from "../../errors.ts";

/**
 * An image's config digest: its identity across engines and image stores. The classic store uses it as
 * the image ID. The containerd store's ID is the manifest digest and the API exposes no config digest, so
 * there it is read from the image's save stream (small JSON entries kept, layer bytes passed over).
 */
export async function configDigest(
  engine: Engine,
  imageStore: "classic" | "containerd",
  ref: string,
): Promise<string> {
  if (imageStore === "classic") {
    const image = await engine.images.inspect(ref);
    if (!image) throw new VmError("IMAGE_NOT_FOUND", `Image ${ref} is not in the engine`);
    return image.id;
  }
  return configDigestFromSave(await engine.images.save(ref), ref);
}

const SMALL = 4 * 1024 * 1024;

/** Reads the config digest from a `docker save` stream: its small JSON entries are kept, layers passed over. */
export async function configDigestFromSave(save: BorrowedBody, ref: string): Promise<string> {
  const small = new Map<string, Buffer>();
  const walker = new TarWalker((entry) => {
    if (entry.type !== "file" || entry.size > SMALL) return undefined;
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => void chunks.push(Buffer.from(chunk)), // the chunk is a view valid only during the call
      end: () => void small.set(entry.name, Buffer.concat(chunks)),
    };
  });
  try {
    for await (const chunk of save) {
      walker.push(chunk, []);
      if (walker.ended) break;
    }
    walker.finish();
  } finally {
    save.destroy();
  }
  const manifest = small.get("manifest.json");
  const entries = manifest ? (JSON.parse(manifest.toString("utf8")) as { Config?: string }[]) : [];
  const configPath = entries[0]?.Config;
  const config = configPath ? small.get(configPath) : undefined;
  if (!config) {
    throw new VmError(
      "IMAGE_SAVE_UNREADABLE",
      `The engine's save of ${ref} has no readable manifest.json and config`,
    );
  }
  return `sha256:${createHash("sha256").update(config).digest("hex")}`;
}
