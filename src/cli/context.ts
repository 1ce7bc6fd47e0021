import type { Config } from "../config/load.ts";
import type { Engine } from "../engine/engine.ts";
import { extraLabels } from "../engine/labels.ts";
import type { RemoteBoxes, Services } from "../env/services.ts";
import { findProject, requireProject, type ProjectContext, type ProjectQuery } from "../env/project.ts";
import type { Io } from "../lib/io.ts";
import { SnapshotStore } from "../store/store.ts";

/** What a command gets: the process's surroundings and the engine client built once in main. */
export interface CommandContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  io: Io;
  engine: Engine;
  /** --config as given, if given. */
  configOption: string | undefined;
  /** --project as given, if given. */
  projectOption: string | undefined;
  /** How `vm.box: "@registry/repo:tag"` is pulled (main wires in the registry client). */
  remoteBoxes?: RemoteBoxes;
}

/** What a command hands back for main to print: text for people, json for --json. */
export interface CommandResult {
  text?: string;
  json?: unknown;
  exitCode?: number;
}

export function services(ctx: CommandContext): Services {
  return {
    engine: ctx.engine,
    snapshots: SnapshotStore.fromEnv(ctx.env),
    env: ctx.env,
    extraLabels: extraLabels(ctx.env),
    log: (text) => ctx.io.stderr.write(text),
    remoteBoxes: ctx.remoteBoxes,
  };
}

export function projectQuery(ctx: CommandContext): ProjectQuery {
  return {
    engine: ctx.engine,
    cwd: ctx.cwd,
    configOption: ctx.configOption,
    projectOption: ctx.projectOption,
    log: (text) => ctx.io.stderr.write(text),
  };
}

/**
 * The config of the project the command works on: --project, --config, ./vm.yaml or the nearest parent's,
 * else the one environment vm created from this folder (see env/project.ts).
 */
export function requireConfig(ctx: CommandContext): Promise<Config> {
  return requireProject(projectQuery(ctx));
}

/** The project in context, if any: for snapshot commands, which also work without one. */
export function currentProject(ctx: CommandContext): Promise<ProjectContext | undefined> {
  return findProject(projectQuery(ctx));
}
