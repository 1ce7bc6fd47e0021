import { stringify } from "yaml";
import type { CommandDef } from "../../cli/command.ts";
import { table } from "../../cli/output.ts";
import { formatBytes } from "../../lib/units.ts";
import { VmError } from "../../errors.ts";
import { listSnapshots } from "../../snapshot/manage.ts";
import { listRow, sourceText } from "../../snapshot/report.ts";
import { SnapshotStore } from "../../store/store.ts";

export const snapshotListCommand: CommandDef = {
  path: ["snapshot", "list"],
  summary: "List snapshots: global (base) ones and every project's",
  configure: (cmd) =>
    cmd
      .alias("ls")
      .option("--format <format>", "table, json or yaml", "table")
      .option("--json", "the same as --format json, as for vm's other commands")
      .option("--show-digest", "add the image digest column")
      .option("--filter <glob>", "only names matching this pattern (* and ?)")
      .option("--type <type>", "base (global) or project")
      .option("--project <name>", "only this project's snapshots")
      .option("-w, --wide", "add the languages and tools installed, and where each snapshot came from"),
  run: async (ctx, _args, options) => {
    const format = options.json === true ? "json" : (options.format as string);
    if (!["table", "json", "yaml"].includes(format)) {
      throw new VmError("USAGE", `--format must be table, json or yaml, not '${format}'`);
    }
    const type = options.type as string | undefined;
    if (type !== undefined && type !== "base" && type !== "project") {
      throw new VmError("USAGE", `--type must be base or project, not '${type}'`);
    }
    const snapshots = await listSnapshots(
      SnapshotStore.fromEnv(ctx.env),
      {
        ...(options.filter ? { glob: options.filter as string } : {}),
        ...(type ? { type } : {}),
        ...(typeof options.project === "string" ? { project: options.project } : {}),
      },
      (file, error) => ctx.io.stderr.write(`Warning: skipped ${file}: ${error.message}\n`),
    );
    const rows = snapshots.map(listRow);
    if (format === "json") return { text: JSON.stringify(rows, null, 2) + "\n" };
    if (format === "yaml") return { text: rows.length ? stringify(rows) : "[]\n" };
    if (rows.length === 0)
      return {
        text: "No snapshots. Create one with `vm snapshot create` or import one with `vm snapshot import <file>`.\n",
      };
    const wide = options.wide === true;
    const headers = ["NAME", "TYPE", "CREATED", "SIZE", "PLATFORM", "DESCRIPTION"];
    if (wide) headers.push("LANGUAGES", "TOOLS", "SOURCE");
    if (options.showDigest) headers.push("DIGEST");
    const cells = rows.map((r, i) => {
      const row = [
        r.type === "base" ? `@${r.name}` : r.name,
        r.type === "base" ? "base" : `project (${r.project})`,
        r.created_at.slice(0, 16).replace("T", " "),
        formatBytes(r.size_bytes),
        r.platform,
        r.description.length > 40 ? r.description.slice(0, 39) + "…" : r.description,
      ];
      if (wide) {
        const langs = Object.entries(r.languages).map(([k, v]) => `${k} ${v}`);
        row.push(
          shorten(langs.join(", ") || "-"),
          shorten(r.tools.join(", ") || "-"),
          sourceText(snapshots[i]!),
        );
      }
      if (options.showDigest) row.push(r.image_id);
      return row;
    });
    return { text: table(headers, cells) };
  },
};

function shorten(text: string, max = 40): string {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
