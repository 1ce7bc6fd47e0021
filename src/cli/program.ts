import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import type { CommandDef } from "./command.ts";
import type { CommandContext } from "./context.ts";

export type Runner = (def: CommandDef, args: string[], options: Record<string, unknown>) => Promise<void>;

/** Builds the commander tree from the command table; every action goes through `runner`. */
export function buildProgram(defs: CommandDef[], ctx: Pick<CommandContext, "io">, runner: Runner): Command {
  const program = new Command("vm")
    .description("Container-based development environments from a vm.yaml, with portable snapshots")
    .version(VERSION, "-V, --version", "print vm's version")
    .option("--config <file>", "use this vm.yaml instead of ./vm.yaml or the nearest parent's")
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .helpCommand("help [command]", "show help for a command")
    .addHelpText("after", "\nRun `vm <command> --help` for a command's flags. Docs: docs/user-guide.md")
    .configureOutput({ writeOut: (s) => ctx.io.stdout.write(s), writeErr: (s) => ctx.io.stderr.write(s) })
    .exitOverride();

  for (const def of defs) {
    let parent = program;
    for (const segment of def.path.slice(0, -1)) {
      parent =
        parent.commands.find((c) => c.name() === segment) ??
        parent.command(segment).description(`${segment} commands`).exitOverride().enablePositionalOptions();
    }
    const cmd = parent
      .command(def.path[def.path.length - 1]!)
      .description(def.summary)
      .exitOverride();
    def.configure?.(cmd);
    if (def.usesConfig) {
      cmd.option("--config <file>", "use this vm.yaml instead of ./vm.yaml or the nearest parent's");
      cmd.option(
        "--project <name>",
        "act on this project (default: from vm.yaml, else the environment vm created in this folder)",
      );
    }
    if (def.json) cmd.option("--json", "print JSON for scripts");
    cmd.action(async (...params: unknown[]) => {
      const command = params[params.length - 1] as Command;
      const args = command.processedArgs.flat().filter((a): a is string => typeof a === "string");
      await runner(def, args, command.optsWithGlobals());
    });
  }
  return program;
}

export function usageExit(error: CommanderError): number {
  if (
    error.code === "commander.helpDisplayed" ||
    error.code === "commander.version" ||
    error.code === "commander.help"
  )
    return 0;
  return 2;
}
