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
