import { existsSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { findConfig } from "../config/discover.ts";
import { formatWarnings, loadConfig, type Config } from "../config/load.ts";
import type { ContainerSummary, Engine } from "../engine/engine.ts";
import { Label } from "../engine/labels.ts";
import { VmError } from "../errors.ts";
import { envLabels, listEnvironments } from "./environment.ts";
import { validateProjectName } from "../lib/names.ts";

/** How the project a command acts on was found; said once on stderr when it was not named outright. */
export type ProjectSource = "--project" | "--config" | "vm.yaml" | "environment";

export interface ProjectContext {
  name: string;
  /** The project's vm.yaml, when there is one to read (an environment's config file may be gone). */
  config: Config | undefined;
  source: ProjectSource;
}

export interface ProjectQuery {
  engine: Engine;
  cwd: string;
  configOption: string | undefined;
  projectOption: string | undefined;
  log: (text: string) => void;
}

/**
 * Which project a command means: `--project`, then `--config`, then vm.yaml discovery, then the
 * environments vm created from this folder (or the nearest parent that has some), as docker compose finds
 * its project from the folder. Undefined when there is none; several environments from one folder are an
 * error that lists them and how to pick one.
 */
export async function findProject(query: ProjectQuery): Promise<ProjectContext | undefined> {
  const context = await find(query);
  // What the vm.yaml in use does that deserves a word (a field set twice, vm 3.x fields it ignores).
  if (context?.config?.warnings.length) query.log(formatWarnings(context.config));
  return context;
}

async function find(query: ProjectQuery): Promise<ProjectContext | undefined> {
  if (query.projectOption !== undefined) {
    const name = query.projectOption;
    validateProjectName(name);
    const env = await environmentOf(query.engine, name);
    const file = env?.labels[Label.config];
    const config = file && existsSync(file) ? await loadConfig(file) : undefined;
    return { name, config: config?.project.name === name ? config : undefined, source: "--project" };
  }
  const file = findConfig(query.cwd, query.configOption);
  if (file) {
    const config = await loadConfig(file);
    return {
      name: config.project.name,
      config,
      source: query.configOption !== undefined ? "--config" : "vm.yaml",
    };
  }
  const found = await environmentsFromFolder(query.engine, query.cwd);
  if (found.length === 0) return undefined;
  if (found.length > 1) throw severalEnvironments(found, query.cwd);
  const env = found[0]!;
  const name = env.labels[Label.project]!;
  const configFile = env.labels[Label.config];
  const config = configFile && existsSync(configFile) ? await loadConfig(configFile) : undefined;
  const from = configFile ? ` from ${relative(query.cwd, configFile) || configFile}` : "";
  query.log(`Using project '${name}': its environment ${env.name} was created here${from}\n`);
  return { name, config: config?.project.name === name ? config : undefined, source: "environment" };
}

/**
 * The project's config for commands that work on its environment. Found through an environment whose
 * config file is gone, it is rebuilt from the environment's labels (folder, name), which is all that
 * stop, destroy, status, exec and ssh need; vm.yaml's environment and user are then not applied.
 */
export async function requireProject(query: ProjectQuery): Promise<Config> {
  const context = await findProject(query);
  if (!context) throw noProject(query.cwd);
  if (context.config) return context.config;
  const env = await environmentOf(query.engine, context.name);
  if (!env) {
    throw new VmError("ENV_NOT_FOUND", `Project '${context.name}' has no environment`, {
      hint: "vm list --all shows the environments on this engine; create one with `vm create` in the project's folder",
    });
  }
  const details = await query.engine.containers.inspect(env.id);
  const dir = env.labels[Label.workspace] ?? query.cwd;
  const mount = details?.mounts.find((m) => m.type === "bind" && m.source === dir);
  return {
    file: env.labels[Label.config] ?? resolve(dir, "vm.yaml"),
    dir,
    project: { name: context.name, workspacePath: mount?.destination ?? "/workspace" },
    ports: [],
    environment: {},
    volumes: [],
    warnings: [],
  };
}

export function noProject(cwd: string): VmError {
  return new VmError(
    "CONFIG_NOT_FOUND",
    `No vm.yaml in ${cwd} or any parent folder, and no environment was created here`,
    {
      hint: "Run it in the project's folder, pass --config FILE or --project NAME (`vm list --all` shows the projects), or run `vm create` to start one here",
    },
  );
}

async function environmentOf(engine: Engine, project: string): Promise<ContainerSummary | undefined> {
  return (await engine.containers.list(envLabels(project)))[0];
}

/**
 * The environments whose project folder (where their config file lives) is `cwd` or its nearest parent
 * that has any. An engine that cannot be reached has none to offer: the command then says what it lacks.
 */
async function environmentsFromFolder(engine: Engine, cwd: string): Promise<ContainerSummary[]> {
  let envs: ContainerSummary[];
  try {
    envs = await listEnvironments(engine, true);
  } catch (error) {
    // An engine that is down has no environments to offer; a DOCKER_HOST vm cannot use is said as such.
    if (error instanceof VmError && error.code === "ENGINE_UNAVAILABLE") return [];
    throw error;
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const here = envs.filter((e) => e.labels[Label.workspace] === dir && e.labels[Label.project]);
    if (here.length > 0) return here;
    if (dirname(dir) === dir) return [];
  }
}

function severalEnvironments(envs: ContainerSummary[], cwd: string): VmError {
  const lines = envs.map((e) => {
    const file = e.labels[Label.config];
    const config = file ? relative(cwd, file) || file : undefined;
    return `  ${e.labels[Label.project]!} (${e.name}${config ? `, from ${config}` : ""}): --project ${e.labels[Label.project]!}${config ? `  or  --config ${config}` : ""}`;
  });
  return new VmError(
    "PROJECT_AMBIGUOUS",
    `Several environments were created from this folder, so which project is meant is unclear:\n${lines.join("\n")}`,
    { hint: "Pick one with --project NAME or --config FILE, as listed above" },
  );
}
