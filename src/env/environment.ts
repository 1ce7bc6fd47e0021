import type { Config } from "../config/load.ts";
import type { ContainerDetails, ContainerSummary, Engine } from "../engine/engine.ts";
import { EngineError } from "../engine/http.ts";
import { Label, managedLabels } from "../engine/labels.ts";
import { ExitCode, VmError } from "../errors.ts";
import { resolveBox, type Services } from "./box.ts";
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
  const found = await engine.listContainers(envLabels(project));
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
        exitCode: ExitCode.notFound,
      },
    );
  }
  return env;
}

export async function requireRunning(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  if (env.state !== "running") {
    throw new VmError(
      "ENV_NOT_RUNNING",
      `The environment of '${config.project.name}' is ${env.state}, not running`,
      {
        hint:
          env.state === "paused" ? "It is paused; `vm restart` brings it back" : "Start it with `vm start`",
        exitCode: ExitCode.failure,
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
  const existing = await findEnvironment(engine, config.project.name);
  if (existing && !options.force) {
    throw new VmError(
      "ENV_EXISTS",
      `Project '${config.project.name}' already has an environment (${existing.name}, ${existing.state})`,
      {
        hint: "Use it with `vm ssh` / `vm exec`, or re-create it with `vm create --force`",
        exitCode: ExitCode.conflict,
      },
    );
  }
  const box = options.image
    ? { image: options.image.ref, description: options.image.description }
    : await resolveBox(services, config);
  if (existing) {
    services.log(`Removing the old environment ${existing.name}\n`);
    await engine.removeContainer(existing.id, { force: true });
  }
  const name = containerName(config.project.name);
  const labels = managedLabels("environment", services.extraLabels, {
    [Label.project]: config.project.name,
    [Label.config]: config.file,
    [Label.workspace]: config.dir,
    [Label.box]: box.description,
  });
  for (const volume of config.volumes) {
    await engine.ensureVolume(
      volumeName(config.project.name, volume.name),
      managedLabels("volume", services.extraLabels, { [Label.project]: config.project.name }),
    );
  }
  let id: string;
  try {
    id = await engine.createContainer({
      name,
      image: box.image,
      labels,
      env: config.environment,
      workingDir: config.project.workspacePath,
      ...(config.user !== undefined ? { user: config.user } : {}),
      hostname: config.project.name,
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
      ...(config.memoryBytes !== undefined ? { memoryBytes: config.memoryBytes } : {}),
      ...(config.nanoCpus !== undefined ? { nanoCpus: config.nanoCpus } : {}),
    });
  } catch (error) {
    if (error instanceof EngineError && error.status === 409) {
      throw new VmError(
        "CONTAINER_NAME_TAKEN",
        `A container named '${name}' already exists and vm did not create it`,
        {
          hint: `Remove it (docker rm -f ${name}) or choose another project.name in ${config.file}`,
          exitCode: ExitCode.conflict,
          cause: error,
        },
      );
    }
    throw error;
  }
  try {
    await engine.startContainer(id);
  } catch (error) {
    await engine.removeContainer(id, { force: true });
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
}

export async function startEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.startContainer(env.id);
  return env;
}

export async function stopEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.stopContainer(env.id);
  return env;
}

export async function restartEnvironment(engine: Engine, config: Config): Promise<ContainerSummary> {
  const env = await requireEnvironment(engine, config);
  await engine.stopContainer(env.id);
  await engine.startContainer(env.id);
  return env;
}

export interface DestroyResult {
  name: string;
  images: string[];
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
  await engine.removeContainer(env.id, { force: true });
  const project = { [Label.managed]: "true", [Label.project]: config.project.name };
  const images: string[] = [];
  for (const image of await engine.listImages({ ...project, [Label.role]: "box" })) {
    try {
      await engine.removeImage(image.id, { force: false });
      images.push(image.tags[0] ?? image.id);
    } catch (error) {
      // Still used by another container (a snapshot restored from it, say): leave it to its owner.
      if (!(error instanceof EngineError && error.status === 409)) throw error;
    }
  }
  const volumes: string[] = [];
  const keptVolumes: string[] = [];
  for (const volume of await engine.listVolumes({ ...project, [Label.role]: "volume" })) {
    if (options.keepVolumes) {
      keptVolumes.push(volume.name);
      continue;
    }
    await engine.removeVolume(volume.name);
    volumes.push(volume.name);
  }
  return { name: env.name, images, volumes, keptVolumes };
}

export async function inspectEnvironment(engine: Engine, config: Config): Promise<ContainerDetails> {
  const env = await requireEnvironment(engine, config);
  const details = await engine.inspectContainer(env.id);
  if (!details)
    throw new VmError("ENV_NOT_FOUND", `The environment of '${config.project.name}' vanished`, {
      exitCode: ExitCode.notFound,
    });
  return details;
}

export async function listEnvironments(engine: Engine, all: boolean): Promise<ContainerSummary[]> {
  const envs = await engine.listContainers({ [Label.managed]: "true", [Label.role]: "environment" });
  return all ? envs : envs.filter((e) => e.state === "running");
}
