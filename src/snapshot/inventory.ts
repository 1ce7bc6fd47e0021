import type { Engine, ImageDetails } from "../engine/engine.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import { imageTag, type SnapshotRef } from "../snapshot-file/names.ts";

/** What is inside an image: language runtimes, user-installed tools, OS packages. */
export interface Inventory {
  languages: Record<string, string>;
  tools: { name: string; version: string; source: string }[];
  os_packages: { manager: string | null; count: number; packages: string[] };
  /** Set when the probe could not finish (timed out, no shell): what was found is still kept. */
  note?: string;
}

const TIMEOUT_MS = 60_000;

// Runs in the image with no network, as root so every home folder is readable. Each finding is one
// tab-separated line; anything missing is simply not printed. POSIX sh only: boxes may have no bash.
const PROBE = `
have() { command -v "$1" >/dev/null 2>&1; }
emit() { printf '%s\\t%s\\t%s\\n' "$1" "$2" "$3"; }
have node && emit lang node "$(node --version 2>/dev/null)"
have python3 && emit lang python "$(python3 --version 2>&1)"
have python3 || { have python && emit lang python "$(python --version 2>&1)"; }
have rustc && emit lang rust "$(rustc --version 2>/dev/null)"
have cargo && emit lang cargo "$(cargo --version 2>/dev/null)"
have go && emit lang go "$(go version 2>/dev/null)"
have java && emit lang java "$(java -version 2>&1 | head -n 1)"
have ruby && emit lang ruby "$(ruby --version 2>/dev/null)"
have deno && emit lang deno "$(deno --version 2>/dev/null | head -n 1)"
have bun && emit lang bun "$(bun --version 2>/dev/null)"
if have npm; then
  root=$(npm root -g 2>/dev/null)
  for d in "$root"/* "$root"/@*/*; do
    [ -f "$d/package.json" ] || continue
    v=$(sed -n 's/^ *"version": *"\\([^"]*\\)".*/\\1/p' "$d/package.json" | head -n 1)
    emit tool "npm" "\${d#"$root"/}@$v"
  done
fi
have pipx && pipx list --short 2>/dev/null | while read -r n v; do emit tool pipx "$n@$v"; done
for h in /root /home/*; do
  [ -d "$h" ] || continue
  if have python3 && [ -d "$h/.local/lib" ]; then
    HOME="$h" python3 -m pip list --user --format=freeze 2>/dev/null | while IFS= read -r line; do emit tool pip "\${line%%==*}@\${line#*==}"; done
  fi
  for b in "$h"/.cargo/bin/*; do [ -x "$b" ] && emit tool cargo "\${b##*/}@"; done
done
for b in /usr/local/cargo/bin/*; do [ -x "$b" ] && emit tool cargo "\${b##*/}@"; done
if have dpkg-query; then
  dpkg-query -W -f='pkg\\tdpkg\\t\${Package}=\${Version}\\n' 2>/dev/null
elif have apk; then
  apk info -v 2>/dev/null | while IFS= read -r p; do emit pkg apk "$p"; done
elif have rpm; then
  rpm -qa --qf 'pkg\\trpm\\t%{NAME}=%{VERSION}-%{RELEASE}\\n' 2>/dev/null
fi
exit 0
`;

/** Tools that come with a runtime rather than being installed by the user. */
const BUNDLED = new Set([
  "npm",
  "corepack",
  "cargo",
  "rustc",
  "rustup",
  "rustfmt",
  "cargo-clippy",
  "clippy-driver",
  "rustdoc",
  "rust-gdb",
  "rust-lldb",
  "rust-gdbgui",
  "cargo-fmt",
  "rust-analyzer",
]);

/** Runs the probe in a throwaway container of `image`, bounded in time and without network. */
export async function takeInventory(
  engine: Engine,
  image: string,
  labels: Record<string, string>,
): Promise<Inventory> {
  let result;
  try {
    result = await engine.containers.runOnce(image, {
      cmd: ["/bin/sh", "-c", PROBE],
      user: "0",
      timeoutMs: TIMEOUT_MS,
      labels,
    });
  } catch (error) {
    return { ...parseInventory(""), note: `inventory skipped: ${(error as Error).message}` };
  }
  const inventory = parseInventory(result.stdout);
  if (result.timedOut)
    inventory.note = `inventory stopped after ${TIMEOUT_MS / 1000} s; what was found is listed`;
  else if (result.exitCode !== 0)
    inventory.note = `inventory probe exited with ${result.exitCode}: ${result.stderr.trim().slice(0, 200)}`;
  return inventory;
}

export function parseInventory(output: string): Inventory {
  const languages: Record<string, string> = {};
  const tools: Inventory["tools"] = [];
  const packages: string[] = [];
  let manager: string | null = null;
  for (const line of output.split("\n")) {
    const [kind, key, value] = line.split("\t");
    if (!kind || !key || value === undefined) continue;
    if (kind === "lang") {
      const version = versionIn(value);
      if (version) languages[key] = version;
    } else if (kind === "tool") {
      const at = value.lastIndexOf("@");
      const name = at > 0 ? value.slice(0, at) : value;
      if (BUNDLED.has(name) || !name) continue;
      tools.push({ name, version: at > 0 ? value.slice(at + 1) : "", source: key });
    } else if (kind === "pkg") {
      manager = key;
      packages.push(value);
    }
  }
  tools.sort((a, b) => a.name.localeCompare(b.name));
  packages.sort();
  return { languages, tools, os_packages: { manager, count: packages.length, packages } };
}

/** The first version-looking token: "v22.11.0" → 22.11.0, "go version go1.22.1 linux/amd64" → 1.22.1. */
export function versionIn(text: string): string | undefined {
  return /(\d+(?:\.\d+)+)/.exec(text)?.[1] ?? /(\d+)/.exec(text)?.[1];
}

/** What every snapshot's metadata says of its image and where it is kept, made or imported alike. */
export function imageFacts(
  ref: SnapshotRef,
  image: ImageDetails,
  inventory: Inventory,
): Pick<
  SnapshotMetadata,
  | "name"
  | "scope"
  | "project"
  | "engine_image_id"
  | "image_tag"
  | "platform"
  | "size_bytes"
  | "languages"
  | "tools"
  | "os_packages"
  | "inventory_note"
> {
  return {
    name: ref.name,
    scope: ref.scope,
    project: ref.scope === "project" ? ref.project : null,
    engine_image_id: image.id,
    image_tag: imageTag(ref),
    platform: image.platform,
    size_bytes: image.size,
    languages: inventory.languages,
    tools: inventory.tools,
    os_packages: inventory.os_packages,
    ...(inventory.note ? { inventory_note: inventory.note } : {}),
  };
}
