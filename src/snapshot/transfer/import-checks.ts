import type { Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import type { Manifest } from "../../snapshot-file/format.ts";
import type { ImportOptions } from "./import.ts";

/** --verify: the whole file is checked before the engine is touched at all. */
export async function verifyFirst(options: ImportOptions): Promise<void> {
  if (options.input === "-") {
    throw new VmError(
      "VERIFY_NEEDS_FILE",
      "--verify reads the file twice, so it needs a file, not standard input",
      {
        hint: "Save the stream to a file first, or import from stdin without --verify (every byte is still checked before the snapshot becomes visible)",
      },
    );
  }
  const { verifyArchiveFile } = await import("../../snapshot-file/verify-file.ts");
  await verifyArchiveFile(options.input, options.cwd, () => {}, options.stdin, undefined, options.remote);
}

export async function checkPlatform(
  platform: string,
  engine: string,
  options: Pick<ImportOptions, "yes" | "confirm" | "onWarning">,
): Promise<void> {
  const archive = platform.split("/").slice(0, 2).join("/");
  if (archive === engine) return;
  const warning = `Warning: Snapshot built for ${platform}, current platform is ${engine}\nThis may not work correctly.`;
  if (options.yes) {
    options.onWarning(warning + "\n");
    return;
  }
  if (options.confirm) {
    if (await options.confirm(`${warning} Continue?`)) return;
    throw new VmError("IMPORT_CANCELLED", "Import cancelled: nothing was imported");
  }
  throw new VmError(
    "PLATFORM_MISMATCH",
    `Snapshot built for ${platform}, current platform is ${engine}; refusing without a terminal to ask on`,
    {
      hint: "Pass --yes to import it anyway",
    },
  );
}

/** The engine's ID for the archive's image when the engine holds it already, else undefined. */
export async function findPresent(services: Services, manifest: Manifest): Promise<string | undefined> {
  // Only IDs known to be this config digest: the digest itself (the classic store's ID), or what an earlier
  // create or import verified and recorded. The file's own claims about IDs are not trusted here.
  const direct = await services.engine.images.inspect(manifest.image_digest);
  if (direct?.id === manifest.image_digest) return direct.id;
  for (const known of await services.snapshots.list()) {
    if (known.image_id !== manifest.image_digest) continue;
    const image = await services.engine.images.inspect(known.engine_image_id);
    if (image && JSON.stringify(image.layers) === JSON.stringify(manifest.layers)) return image.id;
  }
  return undefined;
}

/** The engine's ID for the image just loaded: one it reported whose layers are the ones checked. */
export async function loadedImageId(services: Services, loaded: string[], layers: string[]): Promise<string> {
  for (const id of loaded) {
    const image = await services.engine.images.inspect(id);
    if (image && JSON.stringify(image.layers) === JSON.stringify(layers)) return image.id;
  }
  throw new VmError(
    "LOADED_IMAGE_MISSING",
    `The engine loaded the file but reports no image with its layers (it said: ${loaded.join(", ") || "nothing"})`,
  );
}
