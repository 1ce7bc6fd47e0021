import { requireConfig } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { streamLogs } from "../env/session.ts";
import { VmError } from "../errors.ts";

export const logsCommand: CommandDef = {
  path: ["logs"],
  summary: "Show the environment's output (its main process's stdout and stderr)",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .option("-f, --follow", "keep printing new output until Ctrl-C")
      .option("-n, --tail <lines>", "only the last N lines"),
  run: async (ctx, _args, options) => {
    const config = await requireConfig(ctx);
    let tail: number | undefined;
    if (options.tail !== undefined) {
      tail = Number(options.tail);
      if (!Number.isInteger(tail) || tail < 0) {
        throw new VmError("USAGE", `--tail expects a number of lines, got '${options.tail as string}'`);
      }
    }
    await streamLogs(ctx, config, {
      follow: options.follow === true,
      ...(tail !== undefined ? { tail } : {}),
    });
    return {};
  },
};
