import { Command, CommanderError } from "commander";
import { suggest } from "../config/suggest.ts";
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
    .helpCommand("help [command]", "show help for a command")
    .addHelpText("after", "\nRun `vm <command> --help` for a command's flags. Docs: docs/user-guide.md")
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (text, write) => write(usageError(text, program)),
    })
    .exitOverride();

  for (const def of defs) {
    let parent = program;
    for (const segment of def.path.slice(0, -1)) {
      parent = parent.commands.find((c) => c.name() === segment) ?? group(parent, segment);
    }
    const cmd = parent
      .command(def.path[def.path.length - 1]!)
      .description(def.summary)
      .exitOverride();
    cmd.configureOutput({ outputError: (text, write) => write(usageError(text, cmd)) });
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

/** A command that groups others (`vm snapshot`). */
function group(parent: Command, name: string): Command {
  const cmd = parent.command(name).description(`${name} commands`).exitOverride().enablePositionalOptions();
  cmd.configureOutput({ outputError: (text, write) => write(usageError(text, cmd)) });
  return cmd;
}

/**
 * Commander's usage errors ("error: unknown command 'stauts'") as vm's other errors read: `Error: ...`
 * and a `Hint:` with the closest command or option and where to look.
 */
export function usageError(text: string, cmd: Command): string {
  const message = text
    .trim()
    .replace(/^error:\s*/, "")
    .replace(/\n\(Did you mean [^)]*\)$/, "");
  const path: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name());
  const name = path.join(" ");
  const where = cmd.parent ? ` for ${name}` : "";
  const help = cmd.createHelp();
  const unknownCommand = /^unknown command '(.*)'$/.exec(message);
  if (unknownCommand) {
    const names = help.visibleCommands(cmd).flatMap((c) => [c.name(), ...c.aliases()]);
    const close = suggest(unknownCommand[1]!, names);
    const list = `\`${name} --help\` lists the commands`;
    return `Error: unknown command '${unknownCommand[1]!}'${where}\nHint: ${close ? `did you mean \`${name} ${close}\`? (${list})` : list}\n`;
  }
  const unknownOption = /^unknown option '(.*)'$/.exec(message);
  if (unknownOption) {
    const flag = unknownOption[1]!;
    const flags = help.visibleOptions(cmd).flatMap((o) => (o.long ? [o.long] : []));
    const close = flag.startsWith("--") ? suggest(flag, flags) : undefined;
    const hint = close
      ? `did you mean ${close}? (\`${name} --help\`)`
      : `\`${name} --help\` lists its options`;
    return `Error: unknown option '${flag}'${where}\nHint: ${hint}\n`;
  }
  return `Error: ${message}\nHint: \`${name} --help\` shows how to use it\n`;
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
