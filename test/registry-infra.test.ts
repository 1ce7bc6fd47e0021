import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { availableEngines, type TestEngine } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import {
  REGISTRY_RUN_ID,
  assertRegistryAnswers,
  blobsAdded,
  corruptBlob,
  deleteManifest,
  dockerCli,
  dockerLogin,
  manifestDigest,
  MANIFEST_ACCEPT,
  parseChallenge,
  registryRequest,
  storedBlobBytes,
  storedBlobs,
  testRegistries,
  totalBytes,
  uniqueRepo,
  type Credentials,
  type DockerCli,
  type TestRegistry,
} from "./helpers/registry.ts";
import { parseScope, startTokenServer, tokenIssuer, type TokenServer } from "./helpers/token-server.ts";

/**
 * The registry infrastructure the push/pull work is tested against is real: three Distribution 2.8
 * registries from scripts/registry (plain HTTP, TLS + Basic auth, Bearer tokens) that both real engines
 * push to and pull from, and a token server the token registry accepts.
 */

const registries = testRegistries();
const { plain, tls, token } = registries;

const TOKEN_USER = "vm-pusher";
const TOKEN_PASSWORD = "token-server-test-password";
const TOKEN_CREDS: Credentials = { user: TOKEN_USER, password: TOKEN_PASSWORD };

function bothEngines(): { classic: TestEngine; containerd: TestEngine } {
  const all = availableEngines();
  const classic = all.find((e) => e.imageStore === "classic");
  const containerd = all.find((e) => e.imageStore === "containerd");
  if (!classic || !containerd)
    throw new Error(
      "These tests push from a classic-store engine and pull into a containerd-store one; " +
        "run `bash scripts/setup` so that both engines answer",
    );
  return { classic, containerd };
}

const { classic: engine1, containerd: engine2 } = bothEngines();

interface Pushed {
  repo: string;
  ref: string;
  marker: string;
  digest: string;
}

/** Builds, on `cli`'s engine, a tiny image with a unique /marker, tagged REGISTRY/REPO:v1. */
function buildMarkedImage(cli: DockerCli, registry: TestRegistry, label: string): Omit<Pushed, "digest"> {
  const repo = uniqueRepo(label);
  const ref = `${registry.host}/${repo}:v1`;
  const marker = `${REGISTRY_RUN_ID}-${label}-${randomBytes(4).toString("hex")}`;
  const base = ensureBusybox(engine1);
  const dir = mkdtempSync(join(tmpdir(), "vm-registry-infra-"));
  try {
    writeFileSync(join(dir, "Dockerfile"), `FROM ${base}\nRUN echo ${marker} > /marker\n`);
    cli.run(["build", "-q", "-t", ref, dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { repo, ref, marker };
}

function pushedDigest(pushOutput: string): string {
  const m = /digest: (sha256:[a-f0-9]{64})/.exec(pushOutput);
  assert.ok(m, `docker push printed no digest:\n${pushOutput}`);
  return m[1]!;
}

/** Removes what a test made: the manifest in the registry (through the API) and the tags on both engines. */
function cleanUp(
  t: TestContext,
  registry: TestRegistry,
  image: { repo: string; ref: string },
  creds?: Credentials,
) {
  t.after(async () => {
    await deleteManifest(registry, image.repo, "v1", creds ? { credentials: creds } : {});
    for (const engine of [engine1, engine2]) {
      const cli = dockerCli(engine.host);
      cli.tryRun(["rmi", image.ref]);
      cli.dispose();
    }
  });
}

/** engine2 pulls the image and runs it: the marker engine1 built comes back. */
function pullAndRunOnEngine2(cli: DockerCli, image: Pushed) {
  cli.run(["pull", image.ref]);
  assert.equal(cli.run(["run", "--rm", image.ref, "cat", "/marker"]), image.marker);
  const repoDigests = cli.run(["image", "inspect", "--format", "{{json .RepoDigests}}", image.ref]);
  assert.ok(
    repoDigests.includes(image.digest),
    `engine2's ${image.ref} is ${repoDigests}, pushed ${image.digest}`,
  );
}

interface ManifestJson {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

async function getManifest(registry: TestRegistry, repo: string, reference: string, creds?: Credentials) {
  const res = await registryRequest(registry, "GET", `/v2/${repo}/manifests/${reference}`, {
    headers: { accept: MANIFEST_ACCEPT },
    ...(creds ? { credentials: creds } : {}),
  });
  assert.equal(res.status, 200, `GET manifest ${repo}:${reference}: ${res.status} ${res.body.toString()}`);
  return { body: res.body, json: JSON.parse(res.body.toString()) as ManifestJson };
}

const sha256 = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

describe("registries from scripts/registry", () => {
  before(async () => {
    for (const r of [plain, tls, token]) await assertRegistryAnswers(r);
  });

  describe("plain (HTTP, anonymous)", () => {
    it("engine1 pushes anonymously over HTTP, engine2 pulls and runs the same image, and a manifest DELETE removes the tag", async (t) => {
      const cli1 = dockerCli(engine1.host);
      const cli2 = dockerCli(engine2.host);
      t.after(() => [cli1, cli2].forEach((c) => c.dispose()));
      const built = buildMarkedImage(cli1, plain, "plain-roundtrip");
      cleanUp(t, plain, built);

      const image = { ...built, digest: pushedDigest(cli1.run(["push", built.ref])) };
      assert.equal(await manifestDigest(plain, image.repo, "v1"), image.digest);
      pullAndRunOnEngine2(cli2, image);

      assert.equal(await deleteManifest(plain, image.repo, "v1"), image.digest);
      assert.equal(await manifestDigest(plain, image.repo, "v1"), undefined);
      assert.equal(await manifestDigest(plain, image.repo, image.digest), undefined);
    });

    it("storage helpers see exactly the blobs a push added, each as large as the manifest says", async (t) => {
      const cli1 = dockerCli(engine1.host);
      t.after(() => cli1.dispose());
      const built = buildMarkedImage(cli1, plain, "plain-blobs");
      cleanUp(t, plain, built);

      const before = storedBlobs(plain);
      const digest = pushedDigest(cli1.run(["push", built.ref]));
      const after = storedBlobs(plain);
      const added = blobsAdded(before, after);

      const { body, json } = await getManifest(plain, built.repo, digest);
      assert.equal(sha256(body), digest);
      for (const d of [json.config, ...json.layers]) assert.equal(after.get(d.digest), d.size, d.digest);
      // Unique to this push: the manifest, the config and the layer holding the marker. (The busybox
      // layers are shared with every earlier push.)
      const unique = [digest, json.config.digest, json.layers.at(-1)!.digest];
      for (const d of unique) assert.ok(added.has(d), `${d} should be new in the registry`);
      assert.equal(after.get(digest), body.length);
      assert.ok(totalBytes(added) >= storedBlobBytes(plain, unique));
      assert.equal(storedBlobBytes(plain, added.keys()), totalBytes(added));
    });

    it("a corrupted stored blob keeps its length but not its digest: engine2 refuses to pull it until it is restored", async (t) => {
      const cli1 = dockerCli(engine1.host);
      const cli2 = dockerCli(engine2.host);
      t.after(() => [cli1, cli2].forEach((c) => c.dispose()));
      const built = buildMarkedImage(cli1, plain, "plain-tamper");
      cleanUp(t, plain, built);
      const image = { ...built, digest: pushedDigest(cli1.run(["push", built.ref])) };
      const { json } = await getManifest(plain, image.repo, image.digest);
      const layer = json.layers.at(-1)!; // the marker's layer: no other test has this content

      const sizeBefore = storedBlobs(plain).get(layer.digest);
      const tampered = corruptBlob(plain, layer.digest);
      t.after(() => tampered.restore());
      assert.equal(storedBlobs(plain).get(layer.digest), sizeBefore);
      const served = await registryRequest(plain, "GET", `/v2/${image.repo}/blobs/${layer.digest}`);
      assert.equal(served.status, 200);
      assert.equal(served.body.length, layer.size);
      assert.notEqual(sha256(served.body), layer.digest);

      const refused = cli2.tryRun(["pull", image.ref]);
      assert.notEqual(refused.status, 0, `engine2 pulled a corrupted layer:\n${refused.stdout}`);
      assert.match(refused.stderr, /digest|sha256/i);

      tampered.restore();
      const restored = await registryRequest(plain, "GET", `/v2/${image.repo}/blobs/${layer.digest}`);
      assert.equal(sha256(restored.body), layer.digest);
      // containerd keeps the bad download as a complete ingest under a ref named after the layer digest
      // until the pull's lease is collected (about a second here); a pull in that window commits the same
      // bad bytes again ("unexpected commit digest") without fetching anything, or, while the collection
      // runs, finds the content it was about to check gone ("content digest ...: not found", seen in CI).
      const deadline = Date.now() + 20_000;
      for (;;) {
        const again = cli2.tryRun(["pull", image.ref]);
        if (again.status === 0) break;
        assert.match(
          again.stderr,
          /unexpected commit digest|content digest sha256:[0-9a-f]{64}: not found/,
          "engine2's pull after the restore failed otherwise",
        );
        assert.ok(Date.now() < deadline, `engine2 still refuses the restored layer: ${again.stderr}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      pullAndRunOnEngine2(cli2, image);
    });
  });

  describe("tls (HTTPS from a test CA, htpasswd Basic auth)", () => {
    it("serves a certificate for 127.0.0.1 and localhost that only the test CA vouches for, and asks for Basic auth", async () => {
      const ca = readFileSync(tls.ca, "utf8");
      assert.equal(readFileSync(`/etc/docker/certs.d/${tls.host}/ca.crt`, "utf8"), ca);
      const anonymous = await registryRequest(tls, "GET", "/v2/", { anonymous: true });
      assert.equal(anonymous.status, 401);
      assert.equal(parseChallenge(String(anonymous.headers["www-authenticate"])).scheme, "basic");
      assert.equal((await registryRequest(tls, "GET", "/v2/")).status, 200);
      const wrong = await registryRequest(tls, "GET", "/v2/", {
        credentials: { user: tls.user, password: "nope" },
      });
      assert.equal(wrong.status, 401);

      const status = (url: string, withCa: boolean) =>
        new Promise<number | string>((resolve) => {
          httpsGet(url, withCa ? { ca } : {}, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        });
      const port = tls.host.split(":")[1]!;
      assert.equal(await status(`https://localhost:${port}/v2/`, true), 401);
      assert.equal(await status(`https://127.0.0.1:${port}/v2/`, true), 401);
      const untrusted = await status(`https://127.0.0.1:${port}/v2/`, false);
      assert.equal(typeof untrusted, "string", "the system trust store accepted the test CA's certificate");
    });

    it("refuses an anonymous push; after docker login engine1 pushes over HTTPS and engine2 (logged in) pulls and runs it", async (t) => {
      const anon1 = dockerCli(engine1.host);
      t.after(() => anon1.dispose());
      const built = buildMarkedImage(anon1, tls, "tls-roundtrip");
      cleanUp(t, tls, built);

      const refused = anon1.tryRun(["push", built.ref]);
      assert.notEqual(refused.status, 0, "an anonymous push to the tls registry succeeded");
      assert.match(refused.stderr, /no basic auth credentials|unauthorized|authentication required/i);
      assert.equal(await manifestDigest(tls, built.repo, "v1"), undefined);

      assert.throws(() => dockerLogin(engine1.host, tls, tls.user, "wrong-password"), /login .* failed/);
      const cli1 = dockerLogin(engine1.host, tls, tls.user, tls.password);
      const cli2 = dockerLogin(engine2.host, tls, tls.user, tls.password);
      t.after(() => [cli1, cli2].forEach((c) => c.dispose()));
      assert.match(
        readFileSync(join(cli1.configDir, "config.json"), "utf8"),
        new RegExp(tls.host.replace(/\./g, "\\.")),
      );

      const image = { ...built, digest: pushedDigest(cli1.run(["push", built.ref])) };
      assert.equal(await manifestDigest(tls, image.repo, "v1"), image.digest);
      pullAndRunOnEngine2(cli2, image);
    });
  });

  describe("token (Bearer tokens from test/helpers/token-server.ts)", () => {
    let server: TokenServer;
    before(async () => {
      server = await startTokenServer({ users: { [TOKEN_USER]: TOKEN_PASSWORD } });
    });
    after(async () => {
      await server?.close();
    });

    /** Requests whose scopes name `repo` and ask for every one of `actions`. */
    const asked = (repo: string, actions: string[]) =>
      server.requests.filter((r) =>
        r.scopes.some((s) => {
          const p = parseScope(s);
          return p?.name === repo && actions.every((a) => p.actions.includes(a));
        }),
      );

    it("docker logs in through the token server; engine1 pushes with a pull,push token and engine2 (logged in) pulls and runs it", async (t) => {
      const anon = await registryRequest(token, "GET", "/v2/", { anonymous: true });
      assert.equal(anon.status, 401);
      const challenge = parseChallenge(String(anon.headers["www-authenticate"]));
      assert.deepEqual(challenge, {
        scheme: "bearer",
        params: { realm: server.realm, service: token.service },
      });

      const loginsBefore = server.requests.length;
      assert.throws(() => dockerLogin(engine1.host, token, TOKEN_USER, "wrong-password"), /login .* failed/);
      const cli1 = dockerLogin(engine1.host, token, TOKEN_USER, TOKEN_PASSWORD);
      const cli2 = dockerLogin(engine2.host, token, TOKEN_USER, TOKEN_PASSWORD);
      t.after(() => [cli1, cli2].forEach((c) => c.dispose()));
      const logins = server.requests.slice(loginsBefore);
      assert.ok(
        logins.some((r) => r.presentedUser === TOKEN_USER && r.status === 401),
        "the wrong password reached the token server and was refused",
      );
      assert.ok(
        logins.some((r) => r.user === TOKEN_USER && r.status === 200 && r.scopes.length === 0),
        `no successful scope-less login request: ${JSON.stringify(logins)}`,
      );

      const built = buildMarkedImage(cli1, token, "token-roundtrip");
      cleanUp(t, token, built, TOKEN_CREDS);
      const image = { ...built, digest: pushedDigest(cli1.run(["push", built.ref])) };
      const pushes = asked(image.repo, ["pull", "push"]);
      assert.ok(pushes.length > 0, `no token request asked push on ${image.repo}`);
      assert.ok(
        pushes.every((r) => r.user === TOKEN_USER && r.granted.some((g) => g.actions.includes("push"))),
        JSON.stringify(pushes),
      );

      const pullsBefore = server.requests.length;
      pullAndRunOnEngine2(cli2, image);
      const pulls = server.requests
        .slice(pullsBefore)
        .filter((r) => r.user === TOKEN_USER && r.status === 200);
      assert.ok(
        pulls.some((r) => r.scopes.includes(`repository:${image.repo}:pull`)),
        `engine2 asked no pull token for ${image.repo} as ${TOKEN_USER}: ${JSON.stringify(server.requests.slice(pullsBefore))}`,
      );
      assert.equal(await manifestDigest(token, image.repo, "v1", { credentials: TOKEN_CREDS }), image.digest);
    });

    it("refuses an anonymous push (anonymous tokens carry pull only) while an anonymous pull works", async (t) => {
      const pusher = dockerLogin(engine1.host, token, TOKEN_USER, TOKEN_PASSWORD);
      const anon1 = dockerCli(engine1.host);
      const anon2 = dockerCli(engine2.host);
      t.after(() => [pusher, anon1, anon2].forEach((c) => c.dispose()));

      const shared = buildMarkedImage(pusher, token, "token-anon-pull");
      cleanUp(t, token, shared, TOKEN_CREDS);
      const image = { ...shared, digest: pushedDigest(pusher.run(["push", shared.ref])) };
      pullAndRunOnEngine2(anon2, image);

      const built = buildMarkedImage(anon1, token, "token-anon-push");
      cleanUp(t, token, built, TOKEN_CREDS);
      const refused = anon1.tryRun(["push", built.ref]);
      assert.notEqual(refused.status, 0, "an anonymous push to the token registry succeeded");
      assert.match(refused.stderr, /denied|unauthorized|authentication required/i);
      assert.equal(await manifestDigest(token, built.repo, "v1", { credentials: TOKEN_CREDS }), undefined);

      const tries = asked(built.repo, ["push"]);
      assert.ok(tries.length > 0, `engine1 never asked for a push token on ${built.repo}`);
      for (const r of tries) {
        assert.equal(r.user, undefined);
        assert.equal(r.status, 200);
        assert.deepEqual(
          r.granted.filter((g) => g.name === built.repo).flatMap((g) => g.actions),
          ["pull"],
          JSON.stringify(r),
        );
      }
    });

    it("Distribution 2.8 takes tokens naming their key by x5c or libtrust kid, and refuses a foreign key, issuer or audience, an array aud and an expired token", async () => {
      const status = async (jwt: string) =>
        (
          await registryRequest(token, "GET", "/v2/", {
            anonymous: true,
            headers: { authorization: `Bearer ${jwt}` },
          })
        ).status;
      assert.equal(await status(tokenIssuer()(TOKEN_USER, [])), 200);
      assert.equal(await status(tokenIssuer({ keyHeader: "kid" })(TOKEN_USER, [])), 200);
      // A token for a repository grants what its access claim says, and nothing more.
      const repo = uniqueRepo("token-claims");
      const pullOnly = tokenIssuer()(TOKEN_USER, [{ type: "repository", name: repo, actions: ["pull"] }]);
      const tags = await registryRequest(token, "GET", `/v2/${repo}/tags/list`, {
        anonymous: true,
        headers: { authorization: `Bearer ${pullOnly}` },
      });
      assert.equal(tags.status, 404); // authorised; the repository just does not exist
      const upload = await registryRequest(token, "POST", `/v2/${repo}/blobs/uploads/`, {
        anonymous: true,
        headers: { authorization: `Bearer ${pullOnly}` },
      });
      assert.equal(upload.status, 401);
      // The challenge names the scope the request needs (its actions in no fixed order: both seen).
      const wanted = parseChallenge(String(upload.headers["www-authenticate"])).params;
      assert.equal(wanted.error, "insufficient_scope");
      const scope = parseScope(wanted.scope ?? "");
      assert.deepEqual([scope?.name, scope?.actions.sort()], [repo, ["pull", "push"]]);

      assert.equal(await status(tokenIssuer({ issuer: "someone-else" })(TOKEN_USER, [])), 401);
      assert.equal(await status(tokenIssuer({ audience: "another-service" })(TOKEN_USER, [])), 401);
      assert.equal(await status(tokenIssuer({ audience: [token.service] })(TOKEN_USER, [])), 401);
      assert.equal(await status(tokenIssuer({ expiresIn: -120 })(TOKEN_USER, [])), 401); // beyond the 60 s leeway
      // Signed by a key the registry does not trust: named by kid, or with the trusted certificate in x5c.
      const dir = mkdtempSync(join(tmpdir(), "vm-token-key-"));
      try {
        const otherKey = join(dir, "other.key");
        const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
        writeFileSync(otherKey, privateKey.export({ type: "pkcs8", format: "pem" }));
        for (const keyHeader of ["kid", "x5c"] as const) {
          const jwt = tokenIssuer({ keyHeader, keyFile: otherKey, certFile: token.signingCert })(
            TOKEN_USER,
            [],
          );
          assert.equal(await status(jwt), 401, keyHeader);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a second token server on the realm's fixed port fails clearly, and a grant function decides what each scope gets", async () => {
      await assert.rejects(startTokenServer(), new RegExp(`:${token.tokenServerPort} is already in use`));
      await server.close();
      const custom = await startTokenServer({
        users: { [TOKEN_USER]: TOKEN_PASSWORD },
        grant: (user, scope) => (scope.name.startsWith("read-only/") ? ["pull"] : user ? scope.actions : []),
      });
      try {
        const url = new URL(custom.realm);
        url.searchParams.set("service", token.service);
        url.searchParams.append("scope", "repository:read-only/a:pull,push");
        url.searchParams.append("scope", "repository:other/b:pull,push");
        const basic = "Basic " + Buffer.from(`${TOKEN_USER}:${TOKEN_PASSWORD}`).toString("base64");
        const res = await fetch(url, { headers: { authorization: basic } });
        assert.equal(res.status, 200);
        const body = (await res.json()) as Record<string, unknown>;
        assert.deepEqual(Object.keys(body).sort(), ["access_token", "expires_in", "issued_at", "token"]);
        assert.equal(body.token, body.access_token);
        const claims = JSON.parse(Buffer.from(String(body.token).split(".")[1]!, "base64url").toString()) as {
          access: unknown;
          aud: unknown;
          iss: unknown;
          sub: unknown;
        };
        assert.deepEqual(claims.access, [
          { type: "repository", name: "read-only/a", actions: ["pull"] },
          { type: "repository", name: "other/b", actions: ["pull", "push"] },
        ]);
        assert.deepEqual([claims.aud, claims.iss, claims.sub], [token.service, token.issuer, TOKEN_USER]);
        assert.deepEqual(
          custom.requests.map((r) => [r.user, r.scopes]),
          [[TOKEN_USER, ["repository:read-only/a:pull,push", "repository:other/b:pull,push"]]],
        );
        const wrong = await fetch(url, {
          headers: { authorization: "Basic " + Buffer.from("x:y").toString("base64") },
        });
        assert.equal(wrong.status, 401);
      } finally {
        await custom.close();
      }
    });
  });
});
