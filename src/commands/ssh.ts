import { requireConfig } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { LOGIN_SHELL, runInEnvironment } from "../env/session.ts";

export const sshCommand: CommandDef = {
  path: ["ssh"],
  summary: "Open an interactive shell in the environment (or run -c CMD in a shell)",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .option("-c, --command <cmd>", "run this shell command instead of an interactive shell")
      .option("-u, --user <user>", "log in as this user instead of vm.user"),
  run: async (ctx, _args, options) => {
    const config = await requireConfig(ctx);
    const command = options.command as string | undefined;
    const exitCode = await runInEnvironment(ctx, config, {
      cmd: command === undefined ? LOGIN_SHELL : ["/bin/sh", "-c", command],
      tty: undefined,
      user: options.user as string | undefined,
      workdir: undefined,
      env: [],
      interactive: command === undefined,
    });
    return { exitCode };
  },
};
