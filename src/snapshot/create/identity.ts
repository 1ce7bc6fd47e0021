import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import type { Engine } from "../../engine/engine.ts";
import { ExitCode, VmError } from "../../errors.ts";

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
    if (!image)
      throw new VmError("IMAGE_NOT_FOUND", `Image ${ref} is not in the engine`, {
        exitCode: ExitCode.notFound,
      });
    return image.id;
  }
  return configDigestFromSave(await engine.images.save(ref), ref);
}

const SMALL = 4 * 1024 * 1024;

export async function configDigestFromSave(save: Readable, ref: string): Promise<string> {
  const small = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    if (header.type === "file" && (header.size ?? 0) <= SMALL) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      stream.on("end", () => {
        small.set(header.name, Buffer.concat(chunks));
        next();
      });
    } else {
      stream.on("end", () => next());
      stream.resume();
    }
  });
  await pipeline(save, extract);
  const manifest = small.get("manifest.json");
  const entries = manifest ? (JSON.parse(manifest.toString("utf8")) as { Config?: string }[]) : [];
  const configPath = entries[0]?.Config;
  const config = configPath ? small.get(configPath) : undefined;
  if (!config) {
    throw new VmError(
      "IMAGE_SAVE_UNREADABLE",
      `The engine's save of ${ref} has no readable manifest.json and config`,
      {
        exitCode: ExitCode.failure,
      },
    );
  }
  return `sha256:${createHash("sha256").update(config).digest("hex")}`;
}
