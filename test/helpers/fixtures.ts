import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { docker, dockerTry, type TestEngine } from "./engines.ts";

/**
 * Fixture images are built by the tests themselves (there is no registry here) and cached in the engine
 * under a versioned tag and the label dev.vm.test.fixture, so reruns skip the build.
 */
export const FIXTURE_LABEL = "dev.vm.test.fixture";
export const BUSYBOX = "vm-test-fixture/busybox:1";

/** A tiny image: busybox from Debian's busybox-static, FROM scratch. Has sh, sleep, cat, id, adduser. */
export function ensureBusybox(engine: TestEngine): string {
  if (dockerTry(engine, ["image", "inspect", BUSYBOX]).status === 0) return BUSYBOX;
  const dir = mkdtempSync(join(tmpdir(), "vm-fixture-"));
  try {
    copyFileSync("/bin/busybox", join(dir, "busybox"));
    writeFileSync(
      join(dir, "Dockerfile"),
      [
        "FROM scratch",
        "COPY busybox /bin/busybox",
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        "RUN mkdir -p /tmp /root /home/developer && chmod 1777 /tmp && chown 1000:1000 /home/developer" +
          " && printf 'root:x:0:0:root:/root:/bin/sh\\ndeveloper:x:1000:1000::/home/developer:/bin/sh\\n' > /etc/passwd" +
          " && printf 'root:x:0:\\ndeveloper:x:1000:\\n' > /etc/group",
        `LABEL ${FIXTURE_LABEL}=busybox-1`,
        "",
      ].join("\n"),
    );
    docker(engine, ["build", "-q", "-t", BUSYBOX, dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return BUSYBOX;
}

export const TOOLS = "vm-test-fixture/tools:1";

/**
 * busybox plus stand-ins that answer like real toolchains (node, python3, go, a global npm package, a
 * cargo binary, dpkg-query), so the snapshot inventory can be checked without a registry.
 */
export function ensureToolsImage(engine: TestEngine): string {
  if (dockerTry(engine, ["image", "inspect", TOOLS]).status === 0) return TOOLS;
  const base = ensureBusybox(engine);
  const dir = mkdtempSync(join(tmpdir(), "vm-fixture-"));
  const script = (body: string) => `#!/bin/sh\n${body}\n`;
  try {
    writeFileSync(join(dir, "node"), script('echo "v22.11.0"'));
    writeFileSync(join(dir, "python3"), script('[ "$1" = --version ] && echo "Python 3.13.0"; exit 0'));
    writeFileSync(join(dir, "go"), script('echo "go version go1.22.1 linux/amd64"'));
    writeFileSync(join(dir, "npm"), script('[ "$1" = root ] && echo /usr/local/lib/node_modules'));
    writeFileSync(
      join(dir, "dpkg-query"),
      script("printf 'pkg\\tdpkg\\tbash=5.2.15-2\\npkg\\tdpkg\\tcurl=7.88.1-10\\n'"),
    );
    writeFileSync(
      join(dir, "package.json"),
      '{\n  "name": "@anthropic-ai/claude-code",\n  "version": "1.0.0"\n}\n',
    );
    writeFileSync(
      join(dir, "Dockerfile"),
      [
        `FROM ${base}`,
        "COPY node python3 go npm dpkg-query /usr/local/bin/",
        "COPY package.json /usr/local/lib/node_modules/@anthropic-ai/claude-code/package.json",
        "RUN chmod +x /usr/local/bin/* && mkdir -p /root/.cargo/bin && cp /bin/busybox /root/.cargo/bin/cargo-watch",
        `LABEL ${FIXTURE_LABEL}=tools-1`,
        "",
      ].join("\n"),
    );
    docker(engine, ["build", "-q", "-t", TOOLS, dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return TOOLS;
}

export const BULK = "vm-test-fixture/bulk:1";

/** busybox plus 48 MiB of random bytes: an export of it takes long enough to be interrupted mid-way. */
export function ensureBulkImage(engine: TestEngine): string {
  if (dockerTry(engine, ["image", "inspect", BULK]).status === 0) return BULK;
  const base = ensureBusybox(engine);
  const dir = mkdtempSync(join(tmpdir(), "vm-fixture-"));
  try {
    writeFileSync(
      join(dir, "Dockerfile"),
      `FROM ${base}\nRUN dd if=/dev/urandom of=/bulk bs=1M count=48\nLABEL ${FIXTURE_LABEL}=bulk-1\n`,
    );
    docker(engine, ["build", "-q", "-t", BULK, dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return BULK;
}

export const TEXT = "vm-test-fixture/text:1";

/**
 * busybox plus 3.4 MB of generated text (the numbers 1 to 500000, one a line): compressible, and by
 * clearly different amounts at different levels (about 5% between gzip 1 and 9, 10x between zstd 1 and 19).
 */
export function ensureTextImage(engine: TestEngine): string {
  if (dockerTry(engine, ["image", "inspect", TEXT]).status === 0) return TEXT;
  const base = ensureBusybox(engine);
  const dir = mkdtempSync(join(tmpdir(), "vm-fixture-"));
  try {
    writeFileSync(
      join(dir, "Dockerfile"),
      `FROM ${base}\nRUN seq 1 500000 > /numbers.txt\nLABEL ${FIXTURE_LABEL}=text-1\n`,
    );
    docker(engine, ["build", "-q", "-t", TEXT, dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return TEXT;
}
