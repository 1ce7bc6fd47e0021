import { existsSync, statSync } from "node:fs";
import type { BoxSpec } from "../config/box.ts";
import type { Config } from "../config/load.ts";
import { Label, managedLabels } from "../engine/labels.ts";
import { VmError } from "../errors.ts";
import { resolveSnapshotImage } from "../store/resolve.ts";
import { boxImageTag } from "./names.ts";
import type { Services } from "./services.ts";

export interface ResolvedBox {
  /** What to create the container from. */
  image: string;
  imageId: string;
  description: string;
  /** For a snapshot box: its name and the volumes it carries, to seed new project volumes from. */
  snapshot?: { name: string; volumes: string[] };
}

export async function resolveBox(services: Services, config: Config): Promise<ResolvedBox> {
  const box = config.box;
  if (!box) {
    throw new VmError("BOX_MISSING", `${config.file} does not say which box to use (vm.box)`, {
      hint: 'Set vm.box to a Dockerfile ("./Dockerfile"), an image ("debian:bookworm") or a snapshot ("@name")',
    });
  }
  switch (box.kind) {
    case "dockerfile":
      return buildBox(services, config, box);
    case "image":
      return imageBox(services, box.ref);
    case "snapshot":
      return resolveSnapshotImage(services.engine, services.snapshots, { scope: "global", name: box.name });
    case "registry": {
      if (!services.remoteBoxes)
        throw new VmError(
          "USAGE",
          `vm.box '@${box.ref}' names a registry snapshot, which this command cannot pull`,
        );
      const { name } = await services.remoteBoxes.resolve(box.ref, services);
      const resolved = await resolveSnapshotImage(services.engine, services.snapshots, {
        scope: "global",
        name,
      });
      return { ...resolved, description: `snapshot @${box.ref}` };
    }
  }
}

async function buildBox(
  services: Services,
  config: Config,
  box: Extract<BoxSpec, { kind: "dockerfile" }>,
): Promise<ResolvedBox> {
  if (!existsSync(box.dockerfile) || !statSync(box.dockerfile).isFile()) {
    throw new VmError(
      "DOCKERFILE_NOT_FOUND",
      `Dockerfile ${box.dockerfile} (vm.box in ${config.file}) does not exist`,
      {
        hint: "Fix the path in vm.box; relative paths start from the folder of vm.yaml",
      },
    );
  }
  if (!existsSync(box.context) || !statSync(box.context).isDirectory()) {
    throw new VmError(
      "BUILD_CONTEXT_NOT_FOUND",
      `Build context ${box.context} (vm.box in ${config.file}) is not a folder`,
      {
        hint: "Fix vm.box.context; relative paths start from the folder of vm.yaml",
      },
    );
  }
  const tag = boxImageTag(config.project.name);
  services.log(`Building ${tag} from ${box.dockerfile}\n`);
  const labels = managedLabels("box", services.extraLabels, {
    [Label.project]: config.project.name,
    [Label.config]: config.file,
  });
  const { packBuildContext } = await import("./build/context.ts");
  const context = await packBuildContext(box.context, box.dockerfile, { labels });
  const imageId = await services.engine.images.build({
    context: context.stream,
    dockerfile: context.dockerfile,
    tag,
    buildArgs: box.args,
    onOutput: services.log,
  });
  await context.done;
  return { image: tag, imageId, description: `Dockerfile ${box.dockerfile}` };
}

async function imageBox(services: Services, ref: string): Promise<ResolvedBox> {
  let image = await services.engine.images.inspect(ref);
  if (!image) {
    services.log(`Image ${ref} is not here; pulling it\n`);
    try {
      await services.engine.images.pull(ref, (line) => services.log(line + "\n"));
    } catch (error) {
      throw new VmError(
        "IMAGE_NOT_FOUND",
        `Image '${ref}' is not in the engine and could not be pulled: ${(error as Error).message}`,
        {
          hint: "Build or load the image first (docker build / docker load), or set vm.box to a Dockerfile or an imported snapshot (@name)",
          cause: error,
        },
      );
    }
    image = await services.engine.images.inspect(ref);
  }
  if (!image) throw new VmError("IMAGE_NOT_FOUND", `Image '${ref}' could not be found after pulling it`);
  return { image: ref, imageId: image.id, description: `image ${ref}` };
}
