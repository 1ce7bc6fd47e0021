import type { Command } from "commander";
import type { CommandContext, CommandResult } from "./context.ts";

/** One command: its place in the tree, its help, its flags, and a handler that returns what to print. */
export interface CommandDef {
  path: string[];
  summary: string;
  /** Adds --config FILE (all commands that work on a project). */
  usesConfig?: boolean;
  /** Adds --json. */
  json?: boolean;
  configure?: (cmd: Command) => void;
  run: (ctx: CommandContext, args: string[], options: Record<string, unknown>) => Promise<CommandResult>;
}
