import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { readEntries, resealed, writeEntries } from "./helpers/archives.ts";
import { availableEngines } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { cleanupRun, makeProject, runVm, uniqueName } from "./helpers/vm.ts";

const haveKeygen = spawnSync("ssh-keygen", ["-?"]).error === undefined;

describe("signed snapshots", { skip: haveKeygen ? false : "ssh-keygen is not installed" }, () => {
  const engine = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-sign-"));
  const homeA = join(dir, "home-a");
  const homeB = join(dir, "home-b");
  const name = uniqueName("signed");
  const signed = join(dir, "signed.snapshot.tar.gz");
  const unsigned = join(dir, "unsigned.snapshot.tar.gz");
  const vm = (home: string, args: string[]) =>
    runVm(args, { cwd: dir, engine, env: { XDG_CONFIG_HOME: home } });
  let fingerprint = "";

  before(async () => {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "team-ci", "-f", join(dir, "team")]);
    execFileSync("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      "stranger",
      "-f",
      join(dir, "stranger"),
    ]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret", "-f", join(dir, "locked")]);
    fingerprint = execFileSync("ssh-keygen", ["-lf", join(dir, "team.pub")], { encoding: "utf8" }).split(
      " ",
    )[1]!;
    const p = makeProject({ Dockerfile: `FROM ${ensureBusybox(engine)}\nRUN echo signed > /signed\n` });
    try {
      assert.equal(
        (await vm(homeA, ["snapshot", "create", `@${name}`, "--from-dockerfile", join(p.dir, "Dockerfile")]))
          .code,
        0,
      );
    } finally {
      p.cleanup();
    }
    const res = await vm(homeA, [
      "snapshot",
      "export",
      `@${name}`,
      "--sign",
      join(dir, "team"),
      "-o",
      signed,
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await vm(homeA, ["snapshot", "export", `@${name}`, "-o", unsigned])).code, 0);
  });
  const tried: string[] = [];
  afterEach((t) => void tried.push(t.name));
  after(() => {
    console.log(`signature cases tried: ${tried.length} (${tried.join("; ")})`);
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  it("verify reports the signer with the fingerprint ssh-keygen shows", async () => {
    const res = await vm(homeB, ["snapshot", "verify", signed]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`signed by ${fingerprint.replace(/[+/]/g, "\\$&")} \\(team-ci\\)`));
    assert.match((await vm(homeB, ["snapshot", "verify", unsigned])).stdout, /not signed/);
  });

  it("--require-signature accepts only a trusted signer (--trusted-key or trusted_keys)", async () => {
    const untrusted = await vm(homeB, [
      "snapshot",
      "import",
      signed,
      "--require-signature",
      "--trusted-key",
      join(dir, "stranger.pub"),
      "--name",
      `${name}-a`,
    ]);
    assert.equal(untrusted.code, 7);
    assert.match(untrusted.stderr, /is signed by SHA256:\S+ \(team-ci\), which is not a trusted key/);
    const trusted = await vm(homeB, [
      "snapshot",
      "import",
      signed,
      "--require-signature",
      "--trusted-key",
      join(dir, "team.pub"),
      "--name",
      `${name}-b`,
    ]);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /signed by SHA256:\S+ \(team-ci\)/);
    mkdirSync(join(homeB, "vm"), { recursive: true });
    writeFileSync(join(homeB, "vm", "trusted_keys"), readFileSync(join(dir, "team.pub")));
    assert.equal(
      (await vm(homeB, ["snapshot", "import", signed, "--require-signature", "--name", `${name}-c`])).code,
      0,
    );
  });

  it("refuses an unsigned file when signatures are required by flag or by settings.yaml", async () => {
    const byFlag = await vm(homeB, [
      "snapshot",
      "import",
      unsigned,
      "--require-signature",
      "--name",
      `${name}-d`,
    ]);
    assert.equal(byFlag.code, 7, byFlag.stdout + byFlag.stderr);
    assert.match(byFlag.stderr, /The snapshot file is not signed, and this import requires a signature/);
    const home = join(dir, "home-settings");
    mkdirSync(join(home, "vm"), { recursive: true });
    writeFileSync(join(home, "vm", "settings.yaml"), "require_signature: true\n");
    const bySettings = await vm(home, ["snapshot", "import", unsigned, "--name", `${name}-e`]);
    assert.equal(bySettings.code, 7);
    assert.match(bySettings.stderr, /not signed/);
  });

  it("refuses a file modified after signing, even with its checksums re-sealed", async () => {
    const forged = join(dir, "forged.snapshot.tar.gz");
    await writeEntries(
      forged,
      resealed(await readEntries(signed), (m) => (m.description = "trust me")),
    );
    const res = await vm(homeB, ["snapshot", "import", forged, "--name", `${name}-f`]);
    assert.equal(res.code, 7, res.stdout + res.stderr);
    assert.match(
      res.stderr,
      /The signature by SHA256:\S+ \(team-ci\) does not match: the file was changed after it was signed/,
    );
    assert.notEqual((await vm(homeB, ["snapshot", "verify", forged])).code, 0);
  });

  it("refuses a signed file whose signature was stripped off", async () => {
    const stripped = join(dir, "stripped.snapshot.tar.gz");
    await writeEntries(
      stripped,
      (await readEntries(signed)).filter((e) => e.name !== "signature.json"),
    );
    const res = await vm(homeB, ["snapshot", "import", stripped, "--name", `${name}-g`]);
    assert.equal(res.code, 7, res.stdout + res.stderr);
    assert.match(
      res.stderr,
      /The manifest says the file is signed by SHA256:\S+, but its signature\.json is missing: it was removed/,
    );
    assert.equal((await vm(homeB, ["snapshot", "verify", stripped])).code, 7);
  });

  it("refuses a passphrase-protected key with a hint instead of asking", async () => {
    const res = await vm(homeA, [
      "snapshot",
      "export",
      `@${name}`,
      "--sign",
      join(dir, "locked"),
      "-o",
      join(dir, "x.tar.gz"),
    ]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /is encrypted with a passphrase/);
  });
});
