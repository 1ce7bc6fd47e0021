import type { Readable, Writable } from "node:stream";
import { findConfig } from "../config/discover.ts";
import { loadConfig, type Config } from "../config/load.ts";
import type { Engine } from "../engine/engine.ts";
import { extraLabels } from "../engine/labels.ts";
import type { Services } from "../env/box.ts";
import { ExitCode, VmError } from "../errors.ts";
import { SnapshotStore } from "../snapshot/store.ts";

export interface Io {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable & { isTTY?: boolean };
}

/** What a command gets: the process's surroundings and the engine client built once in main. */
export interface CommandContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  io: Io;
  engine: Engine;
  /** --config as given, if given. */
  configOption: string | undefined;
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
  };
}

/** The config the command works on: --config, ./vm.yaml or the nearest parent's. */
export async function requireConfig(ctx: CommandContext): Promise<Config> {
  const file = findConfig(ctx.cwd, ctx.configOption);
  if (!file) {
    throw new VmError("CONFIG_NOT_FOUND", `No vm.yaml in ${ctx.cwd} or any parent folder`, {
      hint: "Run `vm create` here to write a starter vm.yaml, or pass --config FILE",
      exitCode: ExitCode.config,
    });
  }
  return loadConfig(file);
}
