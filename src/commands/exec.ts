import { requireConfig } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { runInEnvironment } from "../env/session.ts";

export const execCommand: CommandDef = {
  path: ["exec"],
  summary: "Run a command in the environment (in the workspace, as vm.user); its exit code is vm's",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .argument("<command...>", "the command and its arguments (put -- before it when it has flags)")
      .option("-t, --tty", "allocate a terminal (default: when stdin and stdout are terminals)")
      .option("-T, --no-tty", "never allocate a terminal")
      .option("-u, --user <user>", "run as this user instead of vm.user")
      .option("-w, --workdir <dir>", "run in this folder instead of the workspace")
      .option("-e, --env <KEY=VALUE...>", "extra environment variables")
      .passThroughOptions()
      .usage("[options] -- <command...>"),
  run: async (ctx, args, options) => {
    const config = await requireConfig(ctx);
    const exitCode = await runInEnvironment(ctx, config, {
      cmd: args,
      tty: typeof options.tty === "boolean" ? options.tty : undefined,
      user: options.user as string | undefined,
      workdir: options.workdir as string | undefined,
      env: (options.env as string[] | undefined) ?? [],
      interactive: false,
    });
    return { exitCode };
  },
};
