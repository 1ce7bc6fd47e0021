import { formatBytes } from "../lib/units.ts";
import type { Manifest } from "../snapshot-file/format.ts";
import type { LegacyRead } from "../snapshot-file/legacy-format.ts";
import { platformString, type SnapshotMetadata } from "../snapshot-file/metadata.ts";

/** The stable JSON/YAML shape of one `vm snapshot list` row (documented in docs/snapshots.md). */
export function listRow(s: SnapshotMetadata) {
  return {
    name: s.name,
    type: s.scope === "global" ? "base" : "project",
    project: s.project,
    created_at: s.created_at,
    size_bytes: s.size_bytes,
    platform: platformString(s.platform),
    description: s.description,
    source: s.source,
    /** The file it was imported from ("-" for standard input), or null when it was made here. */
    imported_from: s.imported?.file ?? null,
    languages: s.languages,
    tools: s.tools.map((t) => t.name),
    image_id: s.image_id,
    image_tag: s.image_tag,
  };
}

/** Where a snapshot came from, for people: "built here", "imported from base.snapshot.tar.gz (vm 3.x)". */
export function sourceText(s: SnapshotMetadata): string {
  if (s.source === "built") return "built here";
  if (s.source === "committed") return "committed here";
  const pulled = s.imported?.registry;
  if (pulled)
    return `pulled from ${pulled.ref}${s.imported?.format === "image" ? " (a plain image, no vm metadata)" : ""}`;
  const file = s.imported?.file;
  const from =
    file === undefined
      ? "imported"
      : file === "-"
        ? "imported from stdin"
        : `imported from ${file.split("/").pop()}`;
  return s.imported?.format === "vm 3.x" ? `${from} (vm 3.x)` : from;
}

/** `vm snapshot inspect` for people: the metadata, readable. */
export function describeSnapshot(s: SnapshotMetadata): string {
  const lines = [
    `Name:        ${s.scope === "global" ? "@" : ""}${s.name}${s.project ? ` (project ${s.project})` : ""}`,
    `Description: ${s.description || "-"}`,
    `Created:     ${s.created_at} (${s.source})`,
    ...(s.imported
      ? [`Source:      ${sourceText(s)}${s.imported.registry ? ` (${s.imported.registry.digest})` : ""}`]
      : []),
    `Image:       ${s.image_tag}`,
    `Image ID:    ${s.image_id}`,
    `Platform:    ${platformString(s.platform)}`,
    `Size:        ${formatBytes(s.size_bytes)}`,
  ];
  const langs = Object.entries(s.languages);
  lines.push(`Languages:   ${langs.length ? langs.map(([k, v]) => `${k} ${v}`).join(", ") : "-"}`);
  lines.push(
    `Tools:       ${s.tools.length ? s.tools.map((t) => `${t.name}${t.version ? "@" + t.version : ""} (${t.source})`).join(", ") : "-"}`,
  );
  lines.push(
    `Packages:    ${s.os_packages.count ? `${s.os_packages.count} (${s.os_packages.manager})` : "-"}`,
  );
  if (s.build.dockerfile)
    lines.push(
      `Dockerfile:  ${s.build.dockerfile} (sha256 ${s.build.dockerfile_sha256?.slice(0, 12) ?? "?"})`,
    );
  else if (s.build.box) lines.push(`Box:         ${s.build.box}`);
  lines.push(
    `Built with:  vm ${s.build.vm_version}, Docker ${s.build.engine_version} (${s.build.image_store} image store)`,
  );
  if (s.git)
    lines.push(
      `Git:         ${s.git.branch ?? "(detached)"} ${s.git.commit.slice(0, 12)}${s.git.dirty ? " (uncommitted changes)" : ""}`,
    );
  if (s.inventory_note) lines.push(`Note:        ${s.inventory_note}`);
  return lines.join("\n") + "\n";
}

/** `vm snapshot inspect FILE`: the manifest of an archive, read from its head. */
export function describeManifest(m: Manifest, compression: string): string {
  const langs = Object.entries(m.languages);
  return [
    `Snapshot file: ${m.snapshot_name} (format ${m.version}, ${compression})`,
    `Description:   ${m.description || "-"}`,
    `Created:       ${m.created_at}; exported ${m.exported_at}`,
    `Image:         ${m.image_digest}`,
    `Platform:      ${m.platform}`,
    `Size:          ${formatBytes(m.size_bytes)} in the engine, ${m.layers.length} layers`,
    `Languages:     ${langs.length ? langs.map(([k, v]) => `${k} ${v}`).join(", ") : "-"}`,
    `Tools:         ${m.tools.length ? m.tools.join(", ") : "-"}`,
    `Exported by:   vm ${m.vm_version}, Docker ${m.engine.version} (${m.engine.image_store} image store)`,
    `Import it:     vm snapshot import <file>   then   vm.box: "@${m.snapshot_name}"`,
    "",
  ].join("\n");
}

/** `vm snapshot inspect FILE` of a vm 3.x file: what its two documents say. */
export function describeLegacyFile(read: LegacyRead, compression: string): string {
  const { manifest, metadata } = read;
  const service = metadata?.services[0];
  return [
    `Snapshot file: ${manifest?.snapshot_name ?? "?"} (vm 3.x format ${manifest?.version ?? "?"}, ${compression})`,
    `Description:   ${manifest?.description ?? metadata?.description ?? "-"}`,
    `Created:       ${metadata?.created_at ?? manifest?.created_at ?? "?"}`,
    `Project:       ${manifest?.is_global ? "global (base) snapshot" : (metadata?.project_name ?? manifest?.project_name ?? "?")}`,
    `Image:         images/${read.image?.file ?? "?"} (${read.image ? formatBytes(read.image.size) : "missing"}), recorded ID ${service?.image_digest ?? "none"}`,
    `Volumes:       ${read.volumes.length ? read.volumes.map((v) => `${v.name} (${formatBytes(v.size)})`).join(", ") : "-"}`,
    `Checks:        none recorded but the image ID; vm snapshot verify checks the image against it`,
    `Import it:     vm snapshot import <file>   then   vm.box: "@${manifest?.snapshot_name ?? "NAME"}"`,
    "",
  ].join("\n");
}
