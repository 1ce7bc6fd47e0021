/** The engine reports the host's arch as uname does (x86_64); images use Go's names (amd64). */
export function normalizeArch(arch: string): string {
  const map: Record<string, string> = {
    x86_64: "amd64",
    aarch64: "arm64",
    armv7l: "arm",
    i386: "386",
    i686: "386",
  };
  return map[arch] ?? arch;
}
