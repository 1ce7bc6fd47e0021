// Reference images for the benchmark, built locally (no registry) and cached in the engine by tag.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run } from "./lib.ts";

const HERE = resolve(import.meta.dirname);
const ROOTFS = "/var/cache/vm-dev/rootfs-bookworm";

function has(image: string): boolean {
  try {
    run("docker", ["image", "inspect", image]);
    return true;
  } catch {
    return false;
  }
}

function debianMirror(): string {
  try {
    const text = run("sh", ["-c", "cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null"]);
    return (
      /URIs:\s*(\S+debian)\s*$/m.exec(text)?.[1] ??
      /deb\s+(\S+debian)\s/.exec(text)?.[1] ??
      "http://deb.debian.org/debian"
    );
  } catch {
    return "http://deb.debian.org/debian";
  }
}

/** Debian 12 minbase from debootstrap, imported as vm-bench/debian:bookworm (~30 s the first time). */
function ensureDebian(log: (s: string) => void): void {
  if (has("vm-bench/debian:bookworm")) return;
  if (!existsSync(ROOTFS)) {
    log("bench: debootstrap of Debian 12 minbase (first run only)\n");
    mkdirSync("/var/cache/vm-dev", { recursive: true });
    run("debootstrap", ["--variant=minbase", "bookworm", `${ROOTFS}.tmp`, debianMirror()]);
    run("mv", [`${ROOTFS}.tmp`, ROOTFS]);
  }
  run("sh", ["-c", `tar -C ${ROOTFS} -c . | docker import - vm-bench/debian:bookworm`]);
}

function build(tag: string, dockerfile: string, log: (s: string) => void): void {
  if (has(tag)) return;
  log(`bench: building ${tag} (first run only)\n`);
  run("docker", ["build", "-q", "-t", tag, "-f", join(HERE, "images", dockerfile), join(HERE, "images")], {
    env: { ...process.env, DOCKER_BUILDKIT: "0" },
  });
}

export function ensureImages(log: (s: string) => void): { small: string; dev: string; large: string } {
  if (!has("vm-bench/small:1")) {
    const dir = mkdtempSync(join(tmpdir(), "vm-bench-small-"));
    copyFileSync("/bin/busybox", join(dir, "busybox"));
    writeFileSync(
      join(dir, "Dockerfile"),
      'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n',
    );
    run("docker", ["build", "-q", "-t", "vm-bench/small:1", dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  ensureDebian(log);
  build("vm-bench/dev:1", "Dockerfile.dev", log);
  return { small: "vm-bench/small:1", dev: "vm-bench/dev:1", large: "vm-bench/large:1" };
}

export function ensureLarge(log: (s: string) => void): string {
  build("vm-bench/large:1", "Dockerfile.large", log);
  return "vm-bench/large:1";
}
