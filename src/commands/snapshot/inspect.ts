import type { CommandDef } from "../../cli/command.ts";
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { describeLegacyFile, describeManifest, describeSnapshot } from "../../snapshot/report.ts";
import { findSnapshot } from "../../store/resolve.ts";
import { SnapshotStore } from "../../store/store.ts";
import { withRemoteOptions, remoteOptions, snapshotProject } from "./shared.ts";

export const snapshotInspectCommand: CommandDef = {
  path: ["snapshot", "inspect"],
  summary: "Show everything recorded about a snapshot",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    withRemoteOptions(cmd).argument(
      "<name>",
      "snapshot name (@name: the global one), a snapshot file, or an https:// URL or s3:// path of one",
    ),
  run: async (ctx, args, options) => {
    if (looksLikeFile(args[0]!, ctx.cwd)) {
      const { readManifestOnly } = await import("../../snapshot-file/verify-file.ts");
      const file = await readManifestOnly(args[0]!, ctx.cwd, ctx.io.stdin, {
        ...remoteOptions(ctx, options),
        onNote: () => {}, // only the head is read: whether the server can resume does not matter
      });
      if ("legacy" in file)
        return { json: file.legacy, text: describeLegacyFile(file.legacy, file.compression) };
      return { json: file.manifest, text: describeManifest(file.manifest, file.compression) };
    }
    const project = await snapshotProject(ctx, args[0]!);
    const { metadata } = await findSnapshot(SnapshotStore.fromEnv(ctx.env), args[0]!, project?.name, (text) =>
      ctx.io.stderr.write(text),
    );
    return { json: metadata, text: describeSnapshot(metadata) };
  },
};

/** A snapshot file rather than a name: a path, or a name with an archive extension that exists. */
function looksLikeFile(arg: string, cwd: string): boolean {
  if (arg === "-" || arg.includes("/") || /\.(tar|gz|tgz|zst)$/.test(arg)) return true;
  const path = resolve(cwd, arg);
  return existsSync(path) && statSync(path).isFile();
}
