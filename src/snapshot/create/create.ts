import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { packBuildContext } from "../../env/build/context.ts";
import type { ImageConfig } from "../../engine/engine.ts";
import { removeImageIfUnused } from "../../engine/image-chain.ts";
import { Label, managedLabels } from "../../engine/labels.ts";
import type { Services } from "../../env/services.ts";
import { findEnvironment } from "../../env/environment.ts";
import { VmError } from "../../errors.ts";
import { checkFault } from "../../lib/faults.ts";
import { pauseMarkerDir, recoverPaused, whilePaused } from "../../env/quiesce.ts";
import { VERSION } from "../../version.ts";
import { gitState, type GitState } from "./git.ts";
import { configDigest } from "./identity.ts";
import { cleanLeftovers, ownerLabel, STAGING_REPO, stagingTag } from "../leftovers.ts";
import { lockSnapshot } from "../../store/lock.ts";
import { imageFacts, takeInventory } from "../inventory.ts";
import { METADATA_FORMAT, type SnapshotMetadata } from "../../snapshot-file/metadata.ts";
import { describeRef, imageRepo, refLabel, type SnapshotRef } from "../../snapshot-file/names.ts";

export type DockerfileOptions = CommonOptions & {
  dockerfile: string;
  context: string;
  buildArgs: Record<string, string>;
  /** Record the build args' values in the metadata (by default only their names: values are often tokens). */
  recordBuildArgs?: boolean;
  projectDir?: string;
};

const BUILD_ARGS_NOTE =
  "build arg values are not recorded (they often hold tokens); vm snapshot create --record-build-args records them";

export interface CommonOptions {
  ref: SnapshotRef;
  description: string;
  force: boolean;
}

async function withLock<T>(services: Services, options: CommonOptions, work: () => Promise<T>): Promise<T> {
  const lock = await lockSnapshot(services.snapshots.root, options.ref, "created");
  try {
    const removed = await cleanLeftovers(services);
    if (removed) services.log(`Removed ${removed} leftover(s) of an interrupted vm snapshot create\n`);
    return await work();
  } finally {
    await lock.release();
  }
}

/** Refuses to overwrite an existing snapshot unless --force. */
async function checkConflict(services: Services, options: CommonOptions): Promise<void> {
  if (!options.force && (await services.snapshots.read(options.ref))) {
    throw new VmError("SNAPSHOT_EXISTS", `Snapshot '${describeRef(options.ref)}' already exists`, {
      hint: "Use --force to overwrite it, or choose another name",
    });
  }
}

function snapshotLabels(services: Services, ref: SnapshotRef): Record<string, string> {
  // Committed images inherit the environment's labels; every vm key is set so none of those survive.
  return managedLabels("snapshot", services.extraLabels, {
    [Label.snapshot]: refLabel(ref),
    [Label.project]: ref.scope === "project" ? ref.project : "",
    [Label.config]: "",
    [Label.workspace]: "",
    [Label.box]: "",
  });
}

/**
 * `vm snapshot create`: commits the project's environment. With `quiesce` the container is paused for
 * the commit and unpaused afterwards whatever happens.
 */
export async function createFromEnvironment(
  services: Services,
  options: CommonOptions & { project: string; quiesce: boolean; projectDir?: string },
): Promise<SnapshotMetadata> {
  return withLock(services, options, () => commitEnvironment(services, options));
}

async function commitEnvironment(
  services: Services,
  options: CommonOptions & { project: string; quiesce: boolean; projectDir?: string },
): Promise<SnapshotMetadata> {
  await checkConflict(services, options);
  const { engine } = services;
  const found = await findEnvironment(engine, options.project);
  const markers = pauseMarkerDir(services.snapshots.root);
  const env = found && (await recoverPaused(engine, markers, found, services.log));
  if (!env) {
    throw new VmError("ENV_NOT_FOUND", `Project '${options.project}' has no environment to snapshot`, {
      hint: "Create it with `vm create`, or build a snapshot straight from a Dockerfile: vm snapshot create @NAME --from-dockerfile PATH",
    });
  }
  const container = await engine.containers.inspect(env.id);
  // The snapshot keeps the box's own command, user and environment, not vm's keep-alive command or the
  // vm.yaml environment (which may hold secrets); vm sets those again on every container it creates.
  const base = container ? await engine.images.inspect(container.imageId) : undefined;
  const changes = base ? restoreBoxConfig(base.config) : [];
  const tag = stagingTag();
  const pause = options.quiesce && env.state === "running";
  const commit = () => {
    checkFault(services.env, "commit");
    return engine.containers.commit(env.id, {
      repo: STAGING_REPO,
      tag,
      labels: { ...(base?.labels ?? {}), ...snapshotLabels(services, options.ref) },
      changes,
      comment: `vm snapshot ${describeRef(options.ref)}`,
    });
  };
  let imageId: string;
  if (pause) {
    imageId = await whilePaused(engine, markers, env.id, commit);
  } else {
    imageId = await commit();
  }
  const git = options.projectDir ? await gitState(options.projectDir) : null;
  return register(services, options, `${STAGING_REPO}:${tag}`, imageId, {
    source: "committed",
    box: env.labels[Label.box] ?? null,
    dockerfile: null,
    dockerfileSha256: null,
    buildArgs: {},
    git,
  });
}

/** `--from-dockerfile`: builds the Dockerfile and saves the image as a snapshot; no container is left. */
export async function createFromDockerfile(
  services: Services,
  options: DockerfileOptions,
): Promise<SnapshotMetadata> {
  return withLock(services, options, () => buildSnapshot(services, options));
}

async function buildSnapshot(services: Services, options: DockerfileOptions): Promise<SnapshotMetadata> {
  await checkConflict(services, options);
  let dockerfileBytes: Buffer;
  try {
    dockerfileBytes = await readFile(options.dockerfile);
  } catch {
    throw new VmError("DOCKERFILE_NOT_FOUND", `Dockerfile ${options.dockerfile} cannot be read`, {
      hint: "Check the --from-dockerfile path",
    });
  }
  const tag = stagingTag();
  services.log(`Building ${describeRef(options.ref)} from ${options.dockerfile}\n`);
  const context = await packBuildContext(options.context, options.dockerfile, {
    labels: snapshotLabels(services, options.ref),
  });
  const imageId = await services.engine.images.build({
    context: context.stream,
    dockerfile: context.dockerfile,
    tag: `${STAGING_REPO}:${tag}`,
    buildArgs: options.buildArgs,
    onOutput: services.log,
  });
  await context.done;
  const git = options.projectDir ? await gitState(options.projectDir) : null;
  return register(services, options, `${STAGING_REPO}:${tag}`, imageId, {
    source: "built",
    box: `Dockerfile ${options.dockerfile}`,
    dockerfile: options.dockerfile,
    dockerfileSha256: createHash("sha256").update(dockerfileBytes).digest("hex"),
    buildArgs: options.recordBuildArgs
      ? options.buildArgs
      : Object.fromEntries(Object.keys(options.buildArgs).map((key) => [key, null])),
    git,
  });
}

/**
 * Dockerfile instructions that give a committed image its box's command, user and folder back instead of
 * vm's keep-alive command, vm.user and the workspace. A box with no command at all keeps the keep-alive,
 * so the image still runs. (vm.yaml's environment never reaches the container's config: vm passes it to
 * each exec, so it cannot leak into a snapshot.)
 */
export function restoreBoxConfig(config: ImageConfig): string[] {
  const changes = [`WORKDIR ${config.workingDir || "/"}`, `USER ${config.user || "0"}`];
  if (config.entrypoint?.length || config.cmd?.length) {
    changes.push(`ENTRYPOINT ${JSON.stringify(config.entrypoint ?? [])}`);
    changes.push(`CMD ${JSON.stringify(config.cmd ?? [])}`);
  }
  return changes;
}

interface Origin {
  source: SnapshotMetadata["source"];
  box: string | null;
  dockerfile: string | null;
  dockerfileSha256: string | null;
  buildArgs: Record<string, string | null>;
  git: GitState | null;
}

/**
 * Turns a staged image into a snapshot: inventory, identity, the store's tag, then the metadata. On any
 * failure the staged image goes and an overwritten snapshot keeps its image and tag.
 */
async function register(
  services: Services,
  options: CommonOptions,
  staged: string,
  imageId: string,
  origin: Origin,
): Promise<SnapshotMetadata> {
  const { engine, snapshots } = services;
  const { ref } = options;
  const repo = imageRepo(ref);
  const old = await snapshots.read(ref);
  let tagMoved = false;
  try {
    const [info, image] = await Promise.all([engine.info(), engine.images.inspect(imageId)]);
    if (!image)
      throw new VmError("STAGED_IMAGE_MISSING", `The image just made (${imageId}) is gone from the engine`);
    services.log(`Taking inventory of ${describeRef(ref)}\n`);
    const [digest, inventory] = await Promise.all([
      configDigest(engine, info.imageStore, image.id),
      takeInventory(engine, image.id, managedLabels("snapshot", services.extraLabels, ownerLabel())),
    ]);
    const metadata: SnapshotMetadata = {
      format: METADATA_FORMAT,
      ...imageFacts(ref, image, inventory),
      created_at: new Date().toISOString(),
      description: options.description,
      source: origin.source,
      image_id: digest,
      build: {
        vm_version: VERSION,
        engine_version: info.serverVersion,
        image_store: info.imageStore,
        build_date: image.created || new Date().toISOString(),
        box: origin.box,
        dockerfile: origin.dockerfile,
        dockerfile_sha256: origin.dockerfileSha256,
        build_args: origin.buildArgs,
        ...(Object.values(origin.buildArgs).includes(null) ? { build_args_note: BUILD_ARGS_NOTE } : {}),
      },
      git: origin.git,
    };
    checkFault(services.env, "register");
    await engine.images.tag(image.id, repo, ref.name);
    tagMoved = true;
    await snapshots.write(ref, metadata);
    await removeImageIfUnused(engine, staged);
    if (old && old.engine_image_id !== image.id && !(await snapshots.imageShared(old.engine_image_id, ref))) {
      await removeImageIfUnused(engine, old.engine_image_id);
    }
    return metadata;
  } catch (error) {
    if (tagMoved) {
      if (old) await engine.images.tag(old.engine_image_id, repo, ref.name).catch(() => {});
      else await removeImageIfUnused(engine, `${repo}:${ref.name}`);
    }
    await removeImageIfUnused(engine, staged);
    throw error;
  }
}
