import type { Config } from "../config/load.ts";
import { resolveLimits, type Limits } from "../lib/units.ts";
import type { ContainerDetails, ContainerSummary, Engine } from "../engine/engine.ts";
import { isConflict } from "../engine/errors.ts";
import { removeImageChain } from "../engine/image-chain.ts";
import { Label, managedLabels } from "../engine/labels.ts";
import { VmError } from "../errors.ts";
import { guardInterrupts } from "../lib/interrupt.ts";
import { resolveBox } from "./box.ts";
import type { Services } from "./services.ts";
import { seedVolumes } from "../store/volumes.ts";
import { containerName, volumeName } from "./names.ts";

export const envLabels = (project: string) => ({
  [Label.managed]: "true",
  [Label.role]: "environment",
  [Label.project]: project,
});

/** The project's environment container, found by label; undefined when there is none. */
export async function findEnvironment(
  engine: Engine,
  project: string,
): Promise<ContainerSummary | undefined> {
  const found = await engine.containers.list(envLabels(project));
  return found[0];
}

export async function requireEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await findEnvironment(engine, config.project.name);
  if (!env) {
    throw new VmError(
      "ENV_NOT_FOUND",
      `Project '${config.project.name}' has no environment (${config.file})`,
      {
        hint: "Create it with `vm create`",
      },
    );
  }
  return env;
}

/** The environment, if it runs; otherwise says what state it is in and how to bring it back. */
export function ensureRunning(env: ContainerSummary, config: Config): ContainerSummary {
  if (env.state !== "running") {
    throw new VmError(
      "ENV_NOT_RUNNING",
      `The environment of '${config.project.name}' is ${env.state}, not running`,
      {
        hint:
          env.state === "paused" ? "It is paused; `vm restart` brings it back" : "Start it with `vm start`",
      },
    );
  }
  return env;
}

export interface CreateResult {
  id: string;
  name: string;
  image: string;
  box: string;
  replaced: boolean;
}

export interface CreateOptions {
  force: boolean;
  /** Use this image instead of resolving vm.box (a snapshot restore). */
  image?: { ref: string; description: string };
}

/** Resolves the box, then creates and starts the project's container: project mounted, labelled, limited. */
export async function createEnvironment(
  services: Services,
  config: Config,
  options: CreateOptions,
): Promise<CreateResult> {
  const { engine } = services;
  let existing = await findEnvironment(engine, config.project.name);
  // vm starts every container it creates: one still in "created" was left by an interrupted vm create.
  if (existing?.state === "created") {
    services.log(`Removing ${existing.name}, left half-made by an interrupted vm create\n`);
    await engine.containers.remove(existing.id, { force: true });
    existing = undefined;
  }
  if (existing && !options.force) {
    throw new VmError(
      "ENV_EXISTS",
      `Project '${config.project.name}' already has an environment (${existing.name}, ${existing.state})`,
      {
        hint: "Use it with `vm ssh` / `vm exec`, or re-create it with `vm create --force`",
      },
    );
  }
  const box = options.image
    ? { image: options.image.ref, description: options.image.description }
    : await resolveBox(services, config);
  const limits = await resourceLimits(engine, config);
  if (existing) {
    services.log(`Removing the old environment ${existing.name}\n`);
    await engine.containers.remove(existing.id, { force: true });
  }
  const name = containerName(config.project.name);
  const labels = managedLabels("environment", services.extraLabels, {
    [Label.project]: config.project.name,
    [Label.config]: config.file,
    [Label.workspace]: config.dir,
    [Label.box]: box.description,
  });
  const volumeLabels = (volume: string) =>
    managedLabels("volume", services.extraLabels, {
      [Label.project]: config.project.name,
      [Label.volume]: volume,
    });
  if ("snapshot" in box && box.snapshot?.volumes.length) {
    const carried = box.snapshot.volumes;
    const wanted = config.volumes
      .filter((v) => carried.includes(v.name))
      .map((v) => ({ name: v.name, engineName: volumeName(config.project.name, v.name) }));
    const seeded = await seedVolumes(engine, box.image, box.snapshot.name, wanted, volumeLabels);
    if (seeded.length) services.log(`Volumes ${seeded.join(", ")} start with the snapshot's data\n`);
  }
  for (const volume of config.volumes) {
    await engine.volumes.ensure(
      volumeName(config.project.name, volume.name),
      managedLabels("volume", services.extraLabels, {
        [Label.project]: config.project.name,
        [Label.volume]: volume.name,
      }),
    );
  }
  // Ctrl-C or SIGTERM from here on removes the container, so an interrupted create leaves none behind.
  let id: string | undefined;
  let creating: Promise<string> | undefined;
  const removeHalfMade = async () => {
    // A signal during the create request: the container exists once the engine answers, so wait for it.
    const made = id ?? (await creating?.catch(() => undefined));
    if (made) await engine.containers.remove(made, { force: true });
  };
  return guardInterrupts(removeHalfMade, async () => {
    try {
      id = await (creating = engine.containers.create({
        name,
        image: box.image,
        labels,
        // vm.yaml's environment is given to each exec instead (vm exec, vm ssh): kept out of the container's
        // config, it cannot be committed into a snapshot.
        env: {},
        workingDir: config.project.workspacePath,
        ...(config.user !== undefined ? { user: config.user } : {}),
        hostname: config.project.hostname ?? config.project.name,
        // Keeps the environment up until it is stopped; the init process makes stop immediate.
        entrypoint: ["sleep"],
        cmd: ["infinity"],
        binds: [`${config.dir}:${config.project.workspacePath}`],
        volumes: config.volumes.map((v) => ({
          name: volumeName(config.project.name, v.name),
          target: v.target,
          readOnly: v.readOnly,
        })),
        ports: config.ports,
        ...limits,
      }));
    } catch (error) {
      if (isConflict(error)) {
        throw new VmError(
          "CONTAINER_NAME_TAKEN",
          `A container named '${name}' already exists and vm did not create it`,
          {
            hint: `Remove it (docker rm -f ${name}) or choose another project.name in ${config.file}`,
            cause: error,
          },
        );
      }
      throw error;
    }
    try {
      await engine.containers.start(id);
    } catch (error) {
      await engine.containers.remove(id, { force: true });
      throw new VmError(
        "ENV_START_FAILED",
        `The environment was created but did not start: ${(error as Error).message}`,
        {
          hint: "Check vm.memory, vm.cpus, ports (already in use?) and vm.user, then run `vm create` again",
          cause: error,
        },
      );
    }
    return { id, name, image: box.image, box: box.description, replaced: existing !== undefined };
  });
}

/** vm.memory and vm.cpus for the engine; the engine's size is asked only for a percentage ("50%"). */
async function resourceLimits(engine: Engine, config: Config): Promise<Limits> {
  const needsEngine = config.memoryPercent !== undefined || config.cpusPercent !== undefined;
  return resolveLimits(config, needsEngine ? await engine.info() : undefined);
}

export async function startEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.containers.start(env.id);
  return env;
}

export async function stopEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.containers.stop(env.id);
  return env;
}

export async function restartEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.containers.stop(env.id);
  await engine.containers.start(env.id);
  return env;
}

export interface DestroyResult {
  name: string;
  images: string[];
  /** Box images still in use as the base of a snapshot (untagged; they go with that snapshot). */
  keptImages: string[];
  volumes: string[];
  keptVolumes: string[];
}

/**
 * Removes the container, the box image vm built for the project and, unless `keepVolumes`, the project's
 * named volumes. (`vm create --force` is the re-creation that keeps volumes.)
 */
export async function destroyEnvironment(
  engine: Engine,
  config: Config,
  options: { keepVolumes: boolean },
): Promise<DestroyResult> {
  const env = await requireEnvironment(engine, config);
  await engine.containers.remove(env.id, { force: true });
  const project = { [Label.managed]: "true", [Label.project]: config.project.name };
  const images: string[] = [];
  const keptImages: string[] = [];
  for (const image of await engine.images.list({ ...project, [Label.role]: "box" })) {
    const name = image.tags[0] ?? image.id;
    // Untagged first: an image built on the box (a snapshot of the environment) keeps it alive as its
    // base, and then only that snapshot's deletion may remove it; it must not stay behind as vm-box/...
    if (await removeImageChain(engine, image.id, { untag: true })) images.push(name);
    else keptImages.push(name);
  }
  const volumes: string[] = [];
  const keptVolumes: string[] = [];
  for (const volume of await engine.volumes.list({ ...project, [Label.role]: "volume" })) {
    if (options.keepVolumes) {
      keptVolumes.push(volume.name);
      continue;
    }
    await engine.volumes.remove(volume.name);
    volumes.push(volume.name);
  }
  return { name: env.name, images, keptImages, volumes, keptVolumes };
}

export async function inspectEnvironment(engine: Engine, config: Config): Promise<ContainerDetails> {
  const env = await requireEnvironment(engine, config);
  const details = await engine.containers.inspect(env.id);
  if (!details) throw new VmError("ENV_NOT_FOUND", `The environment of '${config.project.name}' vanished`);
  return details;
}

export async function listEnvironments(engine: Engine, all: boolean): Promise<ContainerSummary[]> {
  const envs = await engine.containers.list({ [Label.managed]: "true", [Label.role]: "environment" });
  return all ? envs : envs.filter((e) => e.state === "running");
}

/** What vm recorded on an environment's container: its project, the box it was made from, its vm.yaml. */
export function recordedOn(env: { labels: Record<string, string>; image: string }) {
  return {
    project: env.labels[Label.project] ?? "",
    box: env.labels[Label.box] ?? env.image,
    config: env.labels[Label.config] ?? "",
  };
}
