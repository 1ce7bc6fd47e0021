import type { CommandDef } from "../cli/command.ts";
import { ago, table } from "../cli/output.ts";
import { listEnvironments, recordedOn } from "../env/environment.ts";

export const listCommand: CommandDef = {
  path: ["list"],
  summary: "List vm environments on this engine (running ones; --all for every one)",
  json: true,
  configure: (cmd) => cmd.alias("ls").option("-a, --all", "include stopped environments"),
  run: async (ctx, _args, options) => {
    const envs = await listEnvironments(ctx.engine, options.all === true);
    const rows = envs.map((e) => ({
      project: recordedOn(e).project,
      container: e.name,
      state: e.state,
      status: e.status,
      box: recordedOn(e).box,
      config: recordedOn(e).config,
      created: new Date(e.created * 1000).toISOString(),
    }));
    if (rows.length === 0) {
      return {
        json: rows,
        text:
          options.all === true
            ? "No environments.\n"
            : "No running environments (vm list --all shows stopped ones).\n",
      };
    }
    const text = table(
      ["PROJECT", "CONTAINER", "STATE", "CREATED", "BOX"],
      rows.map((r) => [r.project, r.container, r.state, ago(new Date(r.created)), r.box]),
    );
    return { json: rows, text };
  },
};
