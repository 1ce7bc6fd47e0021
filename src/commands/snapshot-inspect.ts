import type { CommandDef } from "../cli/command.ts";
import { describeSnapshot } from "../snapshot/report.ts";
import { findSnapshot } from "../snapshot/resolve.ts";
import { SnapshotStore } from "../snapshot/store.ts";
import { currentProject } from "./snapshot-shared.ts";

export const snapshotInspectCommand: CommandDef = {
  path: ["snapshot", "inspect"],
  summary: "Show everything recorded about a snapshot",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .argument("<name>", "snapshot name (@name: the global one)")
      .option("--project <name>", "look in this project's snapshots"),
  run: async (ctx, args, options) => {
    const { project } = await currentProject(ctx, options.project);
    const { metadata } = await findSnapshot(SnapshotStore.fromEnv(ctx.env), args[0]!, project);
    return { json: metadata, text: describeSnapshot(metadata) };
  },
};
