import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker, dockerTry, type TestEngine } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import {
  blobsAdded,
  corruptBlob,
  dockerCli,
  registryRequest,
  storedBlobs,
  testRegistry,
  totalBytes,
  uniqueRepo,
} from "./helpers/registry.ts";
import { cleanupRun, interruptAt, REPO, runVm, uniqueName, vmEnv, type VmResult } from "./helpers/vm.ts";
import { newKey, openSshPrivateKey } from "../src/snapshot-file/testing/keys.ts";
import { startTokenServer, type TokenServer } from "./helpers/token-server.ts";

/** The token registry's realm names one port: wait for another test file's token server to close. */
async function tokenServer(options: Parameters<typeof startTokenServer>[0]): Promise<TokenServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startTokenServer(options);
    } catch (error) {
      if (attempt >= 240 || !/already in use/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

const ARTIFACT_TYPE = "application/vnd.dev.vm.snapshot.v1";

/**
 * Snapshots through real registries (Distribution 2.8 on loopback, started by scripts/registry): pushed
 * from the Docker 20.10 engine, pulled into the Docker 26 containerd engine and back, with vm's metadata
 * as an OCI referrer of the image, found through the `sha256-<hex>` tag (Distribution 2.8 has no
 * referrers API).
 */
describe("snapshots through an OCI registry (push, pull, vm.box: @registry/repo:tag)", () => {
  const engines = availableEngines();
  const classic = engines.find((e) => e.imageStore === "classic") ?? engines[0]!;
  const containerd = engines.find((e) => e.imageStore === "containerd") ?? engines[engines.length - 1]!;
  const plain = testRegistry("plain");
  const dir = mkdtempSync(join(tmpdir(), "vm-registry-"));
  const emptyDockerConfig = join(dir, "docker-config");
  mkdirSync(emptyDockerConfig);
  writeFileSync(join(emptyDockerConfig, "config.json"), "{}\n");
  const base = uniqueName("reg");
  let counter = 0;

  /** A config home per machine: what one machine's vm knows of snapshots. */
  const home = (machine: string) => join(dir, `home-${machine}`);
  const vm = (engine: TestEngine, machine: string, args: string[], env: Record<string, string> = {}) =>
    runVm(args, {
      cwd: dir,
      engine,
      env: { XDG_CONFIG_HOME: home(machine), DOCKER_CONFIG: emptyDockerConfig, ...env },
    });
  const ok = (res: VmResult, what: string) => assert.equal(res.code, 0, `${what}: ${res.stderr}`);

  /** A snapshot built on `engine` from busybox plus a layer only it has (`extra` for more of its own). */
  async function snapshotOn(engine: TestEngine, machine: string, extra = "", from?: string): Promise<string> {
    const name = `${base}-${++counter}`;
    const project = join(dir, name);
    mkdirSync(project, { recursive: true });
    writeFileSync(
      join(project, "Dockerfile"),
      `FROM ${from ?? ensureBusybox(engine)}\nRUN echo ${name} > /marker${extra ? ` && ${extra}` : ""}\n`,
    );
    const made = await runVm(["snapshot", "create", `@${name}`, "--from-dockerfile", "Dockerfile"], {
      cwd: project,
      engine,
      env: { XDG_CONFIG_HOME: home(machine) },
    });
    ok(made, "snapshot create");
    return name;
  }

  const listed = async (engine: TestEngine, machine: string): Promise<string[]> => {
    const res = await vm(engine, machine, ["snapshot", "list", "--format", "json"]);
    ok(res, "snapshot list");
    return (JSON.parse(res.stdout) as { name: string }[]).map((s) => s.name);
  };

  /** vm's metadata artifact for a pushed tag, found as a pull finds it (the fallback tag's index). */
  async function artifactOf(repo: string, tag: string) {
    const top = await registryRequest(plain, "GET", `/v2/${repo}/manifests/${tag}`, {
      headers: {
        accept:
          "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json",
      },
    });
    assert.equal(top.status, 200);
    const subject = String(top.headers["docker-content-digest"]);
    const index = await registryRequest(plain, "GET", `/v2/${repo}/manifests/${subject.replace(":", "-")}`, {
      headers: { accept: "application/vnd.oci.image.index.v1+json" },
    });
    assert.equal(index.status, 200, "the referrers fallback tag exists");
    const listing = JSON.parse(index.body.toString("utf8")) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    const descriptor = listing.manifests.find((m) => m.artifactType === ARTIFACT_TYPE);
    assert.ok(descriptor, "vm's artifact is listed");
    const manifest = await registryRequest(plain, "GET", `/v2/${repo}/manifests/${descriptor.digest}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const document = JSON.parse(manifest.body.toString("utf8")) as {
      subject: { digest: string };
      layers: { digest: string; annotations: Record<string, string> }[];
    };
    const image = JSON.parse(top.body.toString("utf8")) as { annotations?: Record<string, string> };
    return { subject, digest: descriptor.digest, document, imageAnnotations: image.annotations ?? {} };
  }

  before(() => {
    for (const engine of engines) ensureBusybox(engine);
  });

  after(() => {
    for (const engine of engines) cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  it("pushes from Docker 20.10 and pulls into Docker 26 (containerd): a verified snapshot a box starts from", async () => {
    const name = await snapshotOn(classic, "a");
    const ref = `${plain.host}/${uniqueRepo("cross")}:1`;
    const pushed = await vm(classic, "a", ["snapshot", "push", `@${name}`, ref, "--json"]);
    ok(pushed, "push");
    const result = JSON.parse(pushed.stdout) as {
      digest: string;
      referrers: string;
      metadataPresent: boolean;
    };
    assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(result.referrers, "tag", "Distribution 2.8 has no referrers API: the fallback tag is used");
    assert.equal(result.metadataPresent, false);
    const artifact = await artifactOf(ref.slice(plain.host.length + 1, ref.lastIndexOf(":")), "1");
    assert.equal(artifact.subject, result.digest);
    // The tag's manifest carries the standard annotations (the engine's push has none).
    assert.equal(artifact.imageAnnotations["dev.vm.snapshot.name"], name);
    assert.match(artifact.imageAnnotations["org.opencontainers.image.created"] ?? "", /^\d{4}-\d\d-\d\dT/);
    assert.equal(artifact.document.subject.digest, result.digest);
    assert.deepEqual(
      artifact.document.layers.map((l) => l.annotations["org.opencontainers.image.title"]),
      [
        "manifest.json",
        "metadata/versions.json",
        "metadata/packages.json",
        "metadata/build-info.json",
        "docs/README.md",
        "checksums.json",
      ],
    );
    assert.equal(
      dockerTry(classic, ["image", "inspect", ref]).status,
      1,
      "the registry name vm gave the image for the push is gone",
    );

    const pulled = await vm(containerd, "b", ["snapshot", "pull", ref]);
    ok(pulled, "pull");
    assert.match(
      pulled.stdout,
      new RegExp(
        `Pulled snapshot @${name} from ${ref.replace(/[.]/g, "\\.")} \\(.*metadata and image verified\\)`,
      ),
    );
    const inspect = await vm(containerd, "b", ["snapshot", "inspect", `@${name}`]);
    ok(inspect, "inspect");
    assert.match(
      inspect.stdout,
      new RegExp(`Source: +pulled from ${ref.replace(/[.]/g, "\\.")} \\(${result.digest}\\)`),
    );
    assert.notEqual(
      dockerTry(containerd, ["image", "inspect", `${ref.split(":1")[0]}@${result.digest}`]).status,
      0,
      "the pinned name of the pull is gone",
    );

    const project = join(dir, `${name}-use`);
    mkdirSync(project);
    writeFileSync(join(project, "vm.yaml"), `project:\n  name: ${name}-use\nvm:\n  box: "@${name}"\n`);
    const env = { XDG_CONFIG_HOME: home("b"), DOCKER_CONFIG: emptyDockerConfig };
    ok(await runVm(["create"], { cwd: project, engine: containerd, env }), "create");
    const marker = await runVm(["exec", "--", "cat", "/marker"], { cwd: project, engine: containerd, env });
    assert.equal(marker.stdout.trim(), name);
    ok(await runVm(["destroy", "--force"], { cwd: project, engine: containerd, env }), "destroy");

    // And back: pushed from the containerd store, pulled into the classic one.
    const backRepo = uniqueRepo("back");
    const back = `${plain.host}/${backRepo}:2`;
    ok(await vm(containerd, "b", ["snapshot", "push", `@${name}`, back]), "push back");
    assert.equal((await artifactOf(backRepo, "2")).imageAnnotations["dev.vm.snapshot.name"], name);
    const again = await vm(classic, "c", ["snapshot", "pull", back, "--name", `${name}-back`]);
    ok(again, "pull back");
    const image = docker(classic, ["image", "inspect", "-f", "{{.Id}}", `vm-snapshot/global:${name}-back`]);
    assert.equal(
      image,
      docker(classic, ["image", "inspect", "-f", "{{.Id}}", `vm-snapshot/global:${name}`]),
      "the same image, by config digest",
    );
  });

  it("`docker pull` of a pushed snapshot gives a runnable image", async () => {
    const name = await snapshotOn(classic, "a");
    const ref = `${plain.host}/${uniqueRepo("docker-pull")}:1`;
    const pushed = await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]);
    ok(pushed, "push");
    // Distribution 2.8 has no referrers API: the push says where the metadata is found instead.
    assert.match(
      pushed.stdout,
      /this registry has no referrers API: the metadata is found through the tag sha256-[0-9a-f]{64}/,
    );
    const cli = dockerCli(containerd.host);
    try {
      cli.run(["pull", ref]);
      assert.equal(cli.run(["run", "--rm", ref, "cat", "/marker"]), name);
    } finally {
      cli.tryRun(["rmi", ref]);
      cli.dispose();
    }
  });

  it('vm.box: "@registry/repo:tag" pulls on first use on a machine that never saw it, and is local afterwards', async () => {
    const name = await snapshotOn(classic, "a");
    const ref = `${plain.host}/${uniqueRepo("box")}:1`;
    ok(await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]), "push");
    const project = join(dir, `${name}-box`);
    mkdirSync(project);
    writeFileSync(join(project, "vm.yaml"), `project:\n  name: ${name}-box\nvm:\n  box: "@${ref}"\n`);
    const env = { XDG_CONFIG_HOME: home("fresh"), DOCKER_CONFIG: emptyDockerConfig };
    const created = await runVm(["create"], { cwd: project, engine: containerd, env });
    ok(created, "create");
    assert.match(created.stderr, /is not here yet; pulling it/);
    assert.match(created.stdout, new RegExp(`from snapshot @${ref.replace(/[.]/g, "\\.")}`));
    const marker = await runVm(["exec", "--", "cat", "/marker"], { cwd: project, engine: containerd, env });
    assert.equal(marker.stdout.trim(), name);
    const recreated = await runVm(["create", "--force"], { cwd: project, engine: containerd, env });
    ok(recreated, "create --force");
    assert.doesNotMatch(recreated.stderr, /pulling/, "the second use does not ask the registry");
    ok(await runVm(["destroy", "--force"], { cwd: project, engine: containerd, env }), "destroy");
  });

  it("a second snapshot on the same base uploads only its new layers; an unchanged one uploads nothing", async () => {
    // A base with a 3 MB layer of its own, and a child of it with a small layer.
    const baseName = await snapshotOn(classic, "a", "head -c 3000000 /dev/urandom > /big");
    const child = await snapshotOn(classic, "a", "echo child > /child", `vm-snapshot/global:${baseName}`);
    const repo = uniqueRepo("layers");
    ok(
      await vm(classic, "a", ["snapshot", "push", `@${baseName}`, `${plain.host}/${repo}:base`]),
      "push base",
    );
    const before = storedBlobs(plain);
    const second = await vm(classic, "a", [
      "snapshot",
      "push",
      `@${child}`,
      `${plain.host}/${repo}:child`,
      "--json",
    ]);
    ok(second, "push child");
    const added = blobsAdded(before, storedBlobs(plain));
    assert.ok(
      totalBytes(added) < 100_000,
      `the child's push stored ${totalBytes(added)} bytes: only its own layer, config and metadata`,
    );
    const layers = (JSON.parse(second.stdout) as { layers: { moved: number; skipped: number } }).layers;
    assert.equal(layers.moved, 1);
    assert.ok(layers.skipped >= 2, JSON.stringify(layers));
    const unchanged = await vm(classic, "a", [
      "snapshot",
      "push",
      `@${child}`,
      `${plain.host}/${repo}:child`,
      "--json",
    ]);
    ok(unchanged, "push again");
    const third = JSON.parse(unchanged.stdout) as { layers: { moved: number }; metadataPresent: boolean };
    assert.equal(third.layers.moved, 0);
    assert.equal(third.metadataPresent, true);
  });

  it("refuses a tampered metadata blob or image layer in the registry, and registers nothing", async () => {
    const name = await snapshotOn(classic, "a", "head -c 200000 /dev/urandom > /noise");
    const repo = uniqueRepo("tamper");
    const ref = `${plain.host}/${repo}:1`;
    ok(await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]), "push");
    const { document } = await artifactOf(repo, "1");
    const readme = document.layers.find(
      (l) => l.annotations["org.opencontainers.image.title"] === "docs/README.md",
    )!;
    const damaged = corruptBlob(plain, readme.digest);
    try {
      const pulled = await vm(containerd, "tamper", ["snapshot", "pull", ref]);
      assert.equal(pulled.code, 7, pulled.stderr);
      assert.match(pulled.stderr, /does not match its digest/);
    } finally {
      damaged.restore();
    }
    assert.deepEqual(await listed(containerd, "tamper"), []);

    // The image's own layer: the engine checks it against the manifest and refuses it.
    const manifest = await registryRequest(plain, "GET", `/v2/${repo}/manifests/1`, {
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    const layers = (
      JSON.parse(manifest.body.toString("utf8")) as { layers: { digest: string; size: number }[] }
    ).layers;
    const own = layers[layers.length - 1]!; // the RUN step's: no other test has it
    const broken = corruptBlob(plain, own.digest);
    try {
      const pulled = await vm(containerd, "tamper", ["snapshot", "pull", ref]);
      assert.notEqual(pulled.code, 0, pulled.stdout);
      assert.match(pulled.stderr, /could not pull|digest/i);
    } finally {
      broken.restore();
    }
    assert.deepEqual(await listed(containerd, "tamper"), []);
    // Intact again, it pulls. (The containerd store keeps a failed download for about a second, and
    // refuses the blob as "unexpected commit digest" meanwhile: a retry a moment later gets it.)
    let intact = await vm(containerd, "tamper", ["snapshot", "pull", ref]);
    for (let attempt = 0; intact.code !== 0 && attempt < 5; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      intact = await vm(containerd, "tamper", ["snapshot", "pull", ref]);
    }
    ok(intact, "pull of the intact snapshot");
  });

  it("a signed push pulls with --require-signature and a trusted key; an unsigned one is refused", async () => {
    const name = await snapshotOn(classic, "a");
    const key = newKey("ci@acme");
    const keyFile = join(dir, `${name}.key`);
    writeFileSync(keyFile, openSshPrivateKey(key, "ci@acme"), { mode: 0o600 });
    const trusted = join(dir, `${name}.pub`);
    writeFileSync(trusted, key.publicLine + "\n");
    const signedRef = `${plain.host}/${uniqueRepo("signed")}:1`;
    const unsignedRef = `${plain.host}/${uniqueRepo("unsigned")}:1`;
    ok(await vm(classic, "a", ["snapshot", "push", `@${name}`, signedRef, "--sign", keyFile]), "signed push");
    ok(await vm(classic, "a", ["snapshot", "push", `@${name}`, unsignedRef]), "unsigned push");
    const refused = await vm(containerd, "sig", [
      "snapshot",
      "pull",
      unsignedRef,
      "--require-signature",
      "--trusted-key",
      trusted,
    ]);
    assert.equal(refused.code, 7, refused.stderr);
    assert.match(refused.stderr, /not signed/);
    const untrusted = await vm(containerd, "sig", ["snapshot", "pull", signedRef, "--require-signature"]);
    assert.equal(untrusted.code, 7, untrusted.stderr);
    assert.match(untrusted.stderr, /not a trusted key/);
    assert.deepEqual(await listed(containerd, "sig"), []);
    const pulled = await vm(containerd, "sig", [
      "snapshot",
      "pull",
      signedRef,
      "--require-signature",
      "--trusted-key",
      trusted,
    ]);
    ok(pulled, "signed pull");
    assert.match(pulled.stdout, /signed by SHA256:\S+ \(ci@acme\)/);
  });

  it("an image without vm's metadata pulls as a plain, unsigned snapshot and says so", async () => {
    const ref = `${plain.host}/${uniqueRepo("plain-image")}:1`;
    const cli = dockerCli(classic.host);
    const marker = uniqueName("plainimg");
    const project = join(dir, marker);
    mkdirSync(project);
    writeFileSync(
      join(project, "Dockerfile"),
      `FROM ${ensureBusybox(classic)}\nRUN echo ${marker} > /marker\nLABEL dev.vm.test.run=${vmEnv(classic).VM_LABELS!.split("=")[1]}\n`,
    );
    try {
      cli.run(["build", "-q", "-t", ref, project]);
      cli.run(["push", ref]);
    } finally {
      cli.tryRun(["rmi", ref]);
      cli.dispose();
    }
    const required = await vm(containerd, "plainimg", ["snapshot", "pull", ref, "--require-signature"]);
    assert.equal(required.code, 7, required.stderr);
    assert.match(required.stderr, /carries no vm metadata/);
    const pulled = await vm(containerd, "plainimg", ["snapshot", "pull", ref]);
    ok(pulled, "pull");
    assert.match(pulled.stderr, /carries no vm metadata: pulling it as a plain image/);
    assert.match(pulled.stdout, /Pulled snapshot @1-1 |Pulled snapshot @plain-image-\d+-1 /);
    const name = /Pulled snapshot @(\S+)/.exec(pulled.stdout)![1]!;
    const inspect = await vm(containerd, "plainimg", ["snapshot", "inspect", `@${name}`]);
    assert.match(inspect.stdout, /a plain image, no vm metadata/);
  });

  it("a push or pull killed with SIGKILL leaves nothing registered and no name behind, and runs again", async () => {
    const name = await snapshotOn(classic, "a");
    const repo = uniqueRepo("killed");
    const ref = `${plain.host}/${repo}:1`;
    const killedAt = async (engine: TestEngine, machine: string, args: string[], point: string) => {
      const run = await interruptAt(args, point, "SIGKILL", {
        cwd: dir,
        engine,
        env: { XDG_CONFIG_HOME: home(machine), DOCKER_CONFIG: emptyDockerConfig },
      });
      return { reached: run.reached, signal: run.killed };
    };
    const push = await killedAt(classic, "a", ["snapshot", "push", `@${name}`, ref], "push-tagged");
    assert.deepEqual(push, { reached: true, signal: "SIGKILL" });
    assert.equal(
      dockerTry(classic, ["image", "inspect", ref]).status,
      0,
      "the killed push left its registry name",
    );
    ok(await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]), "push again");
    assert.notEqual(
      dockerTry(classic, ["image", "inspect", ref]).status,
      0,
      "the next push took the name back",
    );

    const pull = await killedAt(containerd, "killed", ["snapshot", "pull", ref], "pull-before-commit");
    assert.deepEqual(pull, { reached: true, signal: "SIGKILL" });
    assert.deepEqual(await listed(containerd, "killed"), []);
    ok(await vm(containerd, "killed", ["snapshot", "pull", ref]), "pull again");
    assert.deepEqual(await listed(containerd, "killed"), [name]);
    const pinned = docker(containerd, ["images", "--digests", "--format", "{{.Repository}}@{{.Digest}}"]);
    assert.doesNotMatch(
      pinned,
      new RegExp(`${repo.replace(/[.]/g, "\\.")}@`),
      "no pinned name of either pull is left",
    );
  });

  it("pushes a snapshot file with no engine at all, keeping its signature, and it pulls into both engines", async () => {
    const name = await snapshotOn(classic, "a", "head -c 300000 /dev/urandom > /noise");
    const key = newKey("release@acme");
    const keyFile = join(dir, `${name}.key`);
    writeFileSync(keyFile, openSshPrivateKey(key, "release@acme"), { mode: 0o600 });
    const trusted = join(dir, `${name}.pub`);
    writeFileSync(trusted, key.publicLine + "\n");
    const file = join(dir, `${name}.snapshot.tar.zst`);
    ok(await vm(classic, "a", ["snapshot", "export", `@${name}`, "-o", file, "--sign", keyFile]), "export");
    const repo = uniqueRepo("file");
    const ref = `${plain.host}/${repo}:1`;
    const noEngine = { DOCKER_HOST: `unix://${join(dir, "no-engine.sock")}` };
    const before = storedBlobs(plain);
    const pushed = await vm(classic, "ci", ["snapshot", "push", file, ref, "--json"], noEngine);
    ok(pushed, "file push");
    const result = JSON.parse(pushed.stdout) as { name: string; signedBy: string; layers: { moved: number } };
    assert.equal(result.name, name);
    assert.match(result.signedBy, /^SHA256:/);
    assert.ok(result.layers.moved >= 1);
    assert.ok(
      totalBytes(blobsAdded(before, storedBlobs(plain))) > 300_000,
      "the file's own layer was uploaded",
    );
    const again = await vm(classic, "ci", ["snapshot", "push", file, ref, "--json"], noEngine);
    ok(again, "file push again");
    assert.equal(
      (JSON.parse(again.stdout) as { layers: { moved: number } }).layers.moved,
      0,
      "nothing uploaded twice",
    );

    // Into the containerd engine, and into the classic one after its own copy is gone.
    const into = await vm(containerd, "file-b", [
      "snapshot",
      "pull",
      ref,
      "--require-signature",
      "--trusted-key",
      trusted,
    ]);
    ok(into, "pull into containerd");
    assert.match(into.stdout, /signed by SHA256:\S+ \(release@acme\)/);
    ok(await vm(classic, "a", ["snapshot", "delete", `@${name}`]), "delete on the classic engine");
    const back = await vm(classic, "file-c", ["snapshot", "pull", ref]);
    ok(back, "pull into classic");
    for (const engine of [containerd, classic])
      assert.equal(docker(engine, ["run", "--rm", `vm-snapshot/global:${name}`, "cat", "/marker"]), name);
  });

  it("TLS and Basic auth: credentials from docker's config.json auths, and from a credential helper", async () => {
    const tls = testRegistry("tls");
    const name = await snapshotOn(classic, "a");
    const ref = `${tls.host}/${uniqueRepo("tls")}:1`;
    const auths = join(dir, "docker-config-auths");
    mkdirSync(auths, { recursive: true });
    const pair = Buffer.from(`${tls.user}:${tls.password}`).toString("base64");
    writeFileSync(join(auths, "config.json"), JSON.stringify({ auths: { [tls.host]: { auth: pair } } }));
    ok(
      await vm(classic, "a", ["snapshot", "push", `@${name}`, ref], { DOCKER_CONFIG: auths }),
      "push with auths",
    );

    const helper = join(dir, "docker-config-helper");
    mkdirSync(helper, { recursive: true });
    writeFileSync(join(helper, "config.json"), JSON.stringify({ credHelpers: { [tls.host]: "vmtest" } }));
    const store = join(dir, "helper-credentials.json");
    writeFileSync(store, JSON.stringify({ [tls.host]: { Username: tls.user, Secret: tls.password } }));
    const log = join(dir, "helper.log");
    const helperEnv = {
      DOCKER_CONFIG: helper,
      PATH: `${join(REPO, "test/fixtures")}:${process.env.PATH ?? ""}`,
      VMTEST_CREDENTIALS_FILE: store,
      VMTEST_CREDENTIALS_LOG: log,
    };
    const pulled = await vm(containerd, "tls", ["snapshot", "pull", ref], helperEnv);
    ok(pulled, "pull with the credential helper");
    assert.match(
      readFileSync(log, "utf8"),
      new RegExp(tls.host.replace(/[.]/g, "\\.")),
      "the helper was asked",
    );
    writeFileSync(store, JSON.stringify({ [tls.host]: { Username: tls.user, Secret: "wrong" } }));
    const refused = await vm(containerd, "tls2", ["snapshot", "pull", ref], helperEnv);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /refused to let vm pull from .* with the credentials from credHelpers/);
    assert.doesNotMatch(refused.stderr, /wrong/, "no secret in the message");
  });

  it("Bearer tokens: vm asks the registry's token service for the repository's scope, with the user's credentials", async () => {
    const token = testRegistry("token");
    const name = await snapshotOn(classic, "a");
    const repo = uniqueRepo("token");
    const ref = `${token.host}/${repo}:1`;
    const server = await tokenServer({ users: { pusher: "token-secret" } });
    try {
      const anonymous = await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]);
      assert.equal(anonymous.code, 1, anonymous.stderr);
      assert.match(anonymous.stderr, /docker login/);
      const config = join(dir, "docker-config-token");
      mkdirSync(config, { recursive: true });
      writeFileSync(
        join(config, "config.json"),
        JSON.stringify({
          auths: { [token.host]: { auth: Buffer.from("pusher:token-secret").toString("base64") } },
        }),
      );
      ok(
        await vm(classic, "a", ["snapshot", "push", `@${name}`, ref], { DOCKER_CONFIG: config }),
        "push with a token",
      );
      // vm's own requests (the engine asks the token service too): the user, for this repository's push.
      const asked = server.requests.filter(
        (r) => r.user === "pusher" && r.scopes.includes(`repository:${repo}:pull,push`),
      );
      assert.ok(asked.length > 0, JSON.stringify(server.requests.map((r) => [r.user, r.scopes])));
      // Anonymous pull: the token service grants pull to anyone.
      ok(await vm(containerd, "token", ["snapshot", "pull", ref]), "anonymous pull");
    } finally {
      await server.close();
    }
  });

  it("says what to run when the registry wants credentials vm does not have", async () => {
    const tls = testRegistry("tls");
    const name = await snapshotOn(classic, "a");
    const ref = `${tls.host}/${uniqueRepo("nologin")}:1`;
    const res = await vm(classic, "a", ["snapshot", "push", `@${name}`, ref]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`refused to let vm push to .* without credentials`));
    assert.match(
      res.stderr,
      new RegExp(`Hint: Log in first: docker login ${tls.host.replace(/[.]/g, "\\.")}`),
    );
    const pull = await vm(containerd, "nologin", ["snapshot", "pull", ref]);
    assert.equal(pull.code, 1, pull.stderr);
    assert.match(pull.stderr, /docker login/);
    void REPO;
  });
});
