import { isMap } from "yaml";
import { keyValue, lineOfNode, type YamlSource } from "./yaml-source.ts";

/**
 * vm.yaml files written for vm 3.x (goobits/vm, and its 4.x/5.x successors) carry fields this vm does
 * not implement. They load: each such field is dropped with its line and the reason, in one warning.
 * (Fields that mean the same here, such as vm.box, vm.memory or ports.mappings, are read by the schema.)
 */
export const IGNORED_FIELDS: { path: string[]; reason: string }[] = [
  { path: ["$schema"], reason: "vm 3.x's schema; vm's is schema/vm.schema.json" },
  { path: ["os"], reason: "the box image decides the operating system" },
  { path: ["tart"], reason: "vm runs Docker only" },
  { path: ["versions"], reason: "pin language versions in the box's Dockerfile" },
  { path: ["networking"], reason: "vm does not join Docker networks" },
  { path: ["services"], reason: "vm does not install services; run them in the box image or as containers" },
  { path: ["apt_packages"], reason: "install packages in the box's Dockerfile" },
  { path: ["npm_packages"], reason: "install packages in the box's Dockerfile" },
  { path: ["pip_packages"], reason: "install packages in the box's Dockerfile" },
  { path: ["cargo_packages"], reason: "install packages in the box's Dockerfile" },
  { path: ["package_linking"], reason: "vm does not link host packages into the environment" },
  { path: ["terminal"], reason: "vm does not set up the shell prompt; the box image does" },
  { path: ["development"], reason: "vm does not forward the SSH agent or sync dotfiles" },
  { path: ["aliases"], reason: "define aliases in the box image's shell profile" },
  { path: ["claude_sync"], reason: "vm does not sync AI tool settings" },
  { path: ["gemini_sync"], reason: "vm does not sync AI tool settings" },
  { path: ["ai_sync"], reason: "vm does not sync AI tool settings" },
  { path: ["copy_git_config"], reason: "vm does not copy the host's git config" },
  { path: ["security"], reason: "vm uses the engine's default container security" },
  { path: ["worktrees"], reason: "vm does not manage git worktrees" },
  { path: ["host_sync"], reason: "vm does not sync host files, the SSH agent or AI tool settings" },
  { path: ["preset"], reason: "vm has no presets; put the tools in the box image" },
  { path: ["default_profile"], reason: "vm has no profiles" },
  { path: ["profiles"], reason: "vm has no profiles" },
  { path: ["storage"], reason: 'use volumes: ["name:/path"] for named volumes' },
  { path: ["mounts"], reason: "vm mounts the project folder only" },
  { path: ["tools"], reason: "install tools in the box's Dockerfile" },
  { path: ["bootstrap"], reason: "put set-up steps in the box's Dockerfile" },
  { path: ["package_edge"], reason: "vm does not run a package proxy" },
  { path: ["project", "backup_pattern"], reason: "vm does not back up databases" },
  { path: ["project", "env_template_path"], reason: "vm does not fill in .env templates" },
  { path: ["vm", "swap"], reason: "vm limits memory only; the engine decides swap" },
  { path: ["vm", "swappiness"], reason: "vm limits memory only; the engine decides swap" },
  { path: ["vm", "timezone"], reason: "the box image sets the time zone; TZ in environment works too" },
  { path: ["vm", "gui"], reason: "vm has no GUI support" },
  { path: ["vm", "uid"], reason: "vm.user sets who commands run as" },
  { path: ["vm", "gid"], reason: "vm.user sets who commands run as" },
  { path: ["vm", "pids_limit"], reason: "vm limits memory and CPUs only" },
  { path: ["vm", "stop_grace_period"], reason: "vm stops environments at once" },
  { path: ["vm", "logging"], reason: "the engine's logging settings apply" },
  { path: ["ports", "_range"], reason: "vm publishes only the ports listed" },
];

const PORT_NAME_REASON = "vm 3.x did not publish named ports either; list them under ports.mappings";

/**
 * Removes the ignored fields from the document and returns the one warning that lists them by line,
 * or undefined when the file has none.
 */
export function dropIgnoredFields(source: YamlSource, label: string): string | undefined {
  const found: { line: number; field: string; reason: string }[] = [];
  const drop = (parentPath: string[], key: unknown, reason: string) => {
    const parent = parentPath.length === 0 ? source.doc.contents : source.doc.getIn(parentPath, true);
    if (!isMap(parent)) return;
    const index = parent.items.findIndex((item) => keyValue(item.key) === key);
    if (index < 0) return;
    const line = lineOfNode(source, parent.items[index]!.key);
    found.push({ line, field: [...parentPath, String(key)].join("."), reason });
    parent.items.splice(index, 1);
  };
  for (const { path, reason } of IGNORED_FIELDS) drop(path.slice(0, -1), path[path.length - 1]!, reason);
  // vm 3.x's ports map knew _range and mappings; anything else under it (frontend: 3001) it dropped.
  const ports = source.doc.get("ports", true);
  if (isMap(ports)) {
    for (const key of ports.items.map((item) => keyValue(item.key))) {
      if (key !== "mappings") drop(["ports"], key, PORT_NAME_REASON);
    }
  }
  if (found.length === 0) return undefined;
  const lines = found
    .sort((a, b) => a.line - b.line)
    .map((f) => `  ${f.line > 0 ? `line ${f.line}: ` : ""}${f.field} (${f.reason})`);
  return `${label} has fields from vm 3.x that vm does not use; they are ignored:\n${lines.join("\n")}`;
}
