import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { isVmError } from "../errors.ts";
import { dockerAuthHeader, resolveCredentials, type Credentials } from "./credentials.ts";

const fixtures = fileURLToPath(new URL("../../test/fixtures/", import.meta.url));
const base64 = (text: string) => Buffer.from(text).toString("base64");
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  /** config.json's content: an object is written as JSON, a string as it is; undefined writes none. */
  config?: unknown;
  /** What docker-credential-vmtest holds: server URL → {Username, Secret}. */
  helper?: Record<string, { Username: string; Secret: string }>;
  /** Extra helpers: docker-credential-<name> → its sh script body. */
  scripts?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

/** A temporary DOCKER_CONFIG folder, and the environment vm would run with. */
function setup({ config, helper, scripts = {}, env = {} }: Setup = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vm-credentials-"));
  dirs.push(dir);
  const configDir = join(dir, "docker");
  const bin = join(dir, "bin");
  mkdirSync(configDir);
  mkdirSync(bin);
  if (config !== undefined)
    writeFileSync(
      join(configDir, "config.json"),
      typeof config === "string" ? config : JSON.stringify(config),
    );
  const credentialsFile = join(dir, "helper.json");
  writeFileSync(credentialsFile, JSON.stringify(helper ?? {}));
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(join(bin, `docker-credential-${name}`), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, `docker-credential-${name}`), 0o755);
  }
  const log = join(dir, "helper.log");
  return {
    file: join(configDir, "config.json"),
    env: {
      DOCKER_CONFIG: configDir,
      PATH: `${bin}:${fixtures}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      VMTEST_CREDENTIALS_FILE: credentialsFile,
      VMTEST_CREDENTIALS_LOG: log,
      ...env,
    },
    /** The server URLs the vmtest helper was asked about. */
    asked: (): string[] => {
      try {
        return readFileSync(log, "utf8").split("\n").slice(0, -1);
      } catch {
        return [];
      }
    },
  };
}

/** The REGISTRY_CREDENTIALS_FAILED a lookup throws, checked to hold none of the secrets. */
async function failure(promise: Promise<unknown>, secrets: string[] = []) {
  const error: unknown = await promise.then(
    () => assert.fail("resolved"),
    (thrown: unknown) => thrown,
  );
  assert.ok(isVmError(error, "REGISTRY_CREDENTIALS_FAILED"), String(error));
  assert.equal(error.exitCode, 1);
  assert.ok(error.hint, "a hint");
  for (const secret of secrets) {
    assert.ok(!error.message.includes(secret), `the secret is in: ${error.message}`);
    assert.ok(!error.hint.includes(secret), `the secret is in: ${error.hint}`);
  }
  return error;
}

const basic = (username: string, password: string, source: string): Credentials => ({
  kind: "basic",
  username,
  password,
  source,
});

describe("registry credentials (registry/credentials.ts)", () => {
  it("no config.json (or no DOCKER_CONFIG folder) means anonymous", async () => {
    const { env } = setup();
    assert.equal(await resolveCredentials("ghcr.io", env), undefined);
    assert.equal(
      await resolveCredentials("ghcr.io", { ...env, DOCKER_CONFIG: join(env.DOCKER_CONFIG, "nope") }),
      undefined,
    );
    assert.equal(await resolveCredentials("ghcr.io", setup({ config: {} }).env), undefined);
  });

  it("auths: base64 user:password, split at the first ':' so the password may hold more", async () => {
    const { env, file } = setup({ config: { auths: { "ghcr.io": { auth: base64("alice:pa:ss:word") } } } });
    assert.deepEqual(
      await resolveCredentials("ghcr.io", env),
      basic("alice", "pa:ss:word", `auths in ${file}`),
    );
    assert.equal(await resolveCredentials("quay.io", env), undefined, "another registry's entry is not used");
  });

  it("auths: identitytoken is an identity token, taking precedence over a password", async () => {
    const { env, file } = setup({
      config: { auths: { "ghcr.io": { auth: base64("alice:pw"), identitytoken: "refresh-me" } } },
    });
    assert.deepEqual(await resolveCredentials("ghcr.io", env), {
      kind: "token",
      identityToken: "refresh-me",
      source: `auths in ${file}`,
    });
  });

  it("auths: username and password fields when there is no auth; an empty entry is anonymous", async () => {
    const { env, file } = setup({
      config: {
        auths: { "ghcr.io": { username: "bob", password: "x:y" }, "quay.io": {}, "a.io": { email: "e" } },
      },
    });
    assert.deepEqual(await resolveCredentials("ghcr.io", env), basic("bob", "x:y", `auths in ${file}`));
    assert.equal(await resolveCredentials("quay.io", env), undefined);
    assert.equal(await resolveCredentials("a.io", env), undefined);
  });

  it("auths: the exact host[:port] first, then URL forms and any key whose host is the registry's", async () => {
    const entry = (user: string) => ({ auth: base64(`${user}:pw`) });
    const { env } = setup({
      config: {
        auths: {
          "http://127.0.0.1:5000/v2/": entry("url"),
          "127.0.0.1:5000": entry("exact"),
          "https://legacy.example.com/some/path": entry("legacy"),
          "https://other.example.com:5000": entry("port"),
        },
      },
    });
    assert.equal((await resolveCredentials("127.0.0.1:5000", env))?.source.startsWith("auths"), true);
    assert.equal(
      ((await resolveCredentials("127.0.0.1:5000", env)) as { username: string }).username,
      "exact",
    );
    assert.equal(
      ((await resolveCredentials("legacy.example.com", env)) as { username: string }).username,
      "legacy",
    );
    assert.equal(
      ((await resolveCredentials("other.example.com:5000", env)) as { username: string }).username,
      "port",
    );
    assert.equal(
      await resolveCredentials("other.example.com", env),
      undefined,
      "the port is part of the host",
    );
  });

  it("Docker Hub: docker's https://index.docker.io/v1/ first, then the names other tools write", async () => {
    const hub = (keys: Record<string, string>) =>
      setup({
        config: {
          auths: Object.fromEntries(Object.entries(keys).map(([k, u]) => [k, { auth: base64(`${u}:pw`) }])),
        },
      });
    const user = async (setupResult: ReturnType<typeof setup>) =>
      ((await resolveCredentials("docker.io", setupResult.env)) as { username: string } | undefined)
        ?.username;
    assert.equal(
      await user(hub({ "docker.io": "short", "https://index.docker.io/v1/": "docker" })),
      "docker",
    );
    assert.equal(await user(hub({ "registry-1.docker.io": "r1", "index.docker.io": "index" })), "index");
    assert.equal(await user(hub({ "docker.io": "short" })), "short");
    assert.equal(await user(hub({ "https://registry-1.docker.io/v2/": "r1" })), "r1");
    assert.equal(await user(hub({ "ghcr.io": "other" })), undefined);
  });

  it("credsStore: the helper is asked with the registry's docker key on stdin; <token> means an identity token", async () => {
    const { env, asked } = setup({
      config: { credsStore: "vmtest" },
      helper: {
        "127.0.0.1:5000": { Username: "alice", Secret: "pa:ss" },
        "https://index.docker.io/v1/": { Username: "<token>", Secret: "hub-refresh" },
      },
    });
    assert.deepEqual(
      await resolveCredentials("127.0.0.1:5000", env),
      basic("alice", "pa:ss", "credsStore (docker-credential-vmtest)"),
    );
    assert.deepEqual(await resolveCredentials("docker.io", env), {
      kind: "token",
      identityToken: "hub-refresh",
      source: "credsStore (docker-credential-vmtest)",
    });
    assert.deepEqual(asked(), ["127.0.0.1:5000", "https://index.docker.io/v1/"]);
  });

  it("credsStore: a helper with nothing for the registry means anonymous, not the auths entry (docker's native store)", async () => {
    const { env, asked } = setup({
      config: { credsStore: "vmtest", auths: { "ghcr.io": { auth: base64("stale:password") } } },
    });
    assert.equal(await resolveCredentials("ghcr.io", env), undefined);
    assert.deepEqual(asked(), ["ghcr.io"]);
  });

  it("credHelpers for the registry come before credsStore, which comes before auths", async () => {
    const config = {
      credHelpers: { "ghcr.io": "vmtest" },
      credsStore: "store",
      auths: { "ghcr.io": { auth: base64("file:pw") }, "quay.io": { auth: base64("file:pw") } },
    };
    const { env, asked } = setup({
      config,
      helper: { "ghcr.io": { Username: "helper", Secret: "h" } },
      scripts: { store: 'cat >/dev/null; echo \'{"Username":"store","Secret":"s"}\'' },
    });
    assert.deepEqual(
      await resolveCredentials("ghcr.io", env),
      basic("helper", "h", "credHelpers (docker-credential-vmtest)"),
    );
    assert.deepEqual(
      await resolveCredentials("quay.io", env),
      basic("store", "s", "credsStore (docker-credential-store)"),
    );
    assert.deepEqual(asked(), ["ghcr.io"], "credHelpers of other registries are not asked");
    const fileOnly = setup({ config: { ...config, credsStore: undefined, credHelpers: undefined } });
    assert.equal((await resolveCredentials("quay.io", fileOnly.env))?.source, `auths in ${fileOnly.file}`);
  });

  it('a credHelpers entry of "" exempts its registry from credsStore: auths are used (as docker does)', async () => {
    const { env, file, asked } = setup({
      config: {
        credHelpers: { "ghcr.io": "" },
        credsStore: "vmtest",
        auths: { "ghcr.io": { auth: base64("file:pw") } },
      },
    });
    assert.deepEqual(await resolveCredentials("ghcr.io", env), basic("file", "pw", `auths in ${file}`));
    assert.deepEqual(asked(), []);
  });

  it("a helper that says nothing for a server is anonymous too (an empty Secret)", async () => {
    const { env } = setup({
      config: { credsStore: "vmtest" },
      helper: { "ghcr.io": { Username: "", Secret: "" } },
    });
    assert.equal(await resolveCredentials("ghcr.io", env), undefined);
  });

  it("a helper missing from PATH is an error naming it and the config field, with what to do", async () => {
    const { env, file } = setup({ config: { credsStore: "desktop" } });
    const error = await failure(resolveCredentials("ghcr.io", env));
    assert.equal(
      error.message,
      `The credential helper docker-credential-desktop (credsStore in ${file}) is not on PATH`,
    );
    assert.equal(
      error.hint,
      `Install docker-credential-desktop, or remove "credsStore" from ${file} and run: docker login ghcr.io`,
    );
  });

  it("a failing helper is an error with its first line of output, stderr first, never its secret", async () => {
    const { env, file } = setup({
      config: { credHelpers: { "ghcr.io": "locked", "quay.io": "stdout", "a.io": "silent" } },
      scripts: {
        locked:
          'cat >/dev/null; echo "hunter2 in progress" ; printf "\\n  keychain is locked  \\nsecond line\\n" >&2; exit 3',
        stdout: "cat >/dev/null; echo 'error getting credentials: access denied'; exit 1",
        silent: "exit 7",
      },
    });
    const locked = await failure(resolveCredentials("ghcr.io", env));
    assert.equal(
      locked.message,
      `The credential helper docker-credential-locked (credHelpers in ${file}) failed for ghcr.io: keychain is locked`,
    );
    assert.match(locked.hint ?? "", /docker login ghcr\.io/);
    assert.match(
      (await failure(resolveCredentials("quay.io", env))).message,
      /failed for quay\.io: error getting credentials: access denied$/,
    );
    assert.match((await failure(resolveCredentials("a.io", env))).message, /failed for a\.io: exit code 7$/);
  });

  it("a helper that answers with something other than credentials JSON is an error that does not repeat it", async () => {
    const { env } = setup({
      config: { credHelpers: { "ghcr.io": "garbled", "quay.io": "nosecret" } },
      scripts: {
        garbled: "cat >/dev/null; echo 'Username: alice Secret: s3cr3t'",
        nosecret: 'cat >/dev/null; echo \'{"Username":"alice","Secret":42}\'',
      },
    });
    assert.match(
      (await failure(resolveCredentials("ghcr.io", env), ["s3cr3t"])).message,
      /something other than/,
    );
    await failure(resolveCredentials("quay.io", env));
  });

  it("a helper that does not answer in time is killed, and the lookup fails at once", async () => {
    const { env } = setup({ config: { credsStore: "slow" }, scripts: { slow: "sleep 4; echo late" } });
    const started = Date.now();
    const error = await failure(resolveCredentials("ghcr.io", env, { helperTimeoutMs: 300 }));
    assert.match(error.message, /did not answer for ghcr\.io within 0\.3 s/);
    assert.ok(Date.now() - started < 3000, "not waiting for the helper's own child (sleep) to end");
  });

  it("a config.json that is not JSON is an error naming the file and the place, not the text", async () => {
    const { env, file } = setup({ config: '{"auths": {"ghcr.io": {"auth": "c2VjcmV0OnNlY3JldA=="}}' });
    const error = await failure(resolveCredentials("ghcr.io", env), ["c2VjcmV0OnNlY3JldA=="]);
    assert.match(error.message, new RegExp(`^The docker config ${file} is not valid JSON`));
    assert.match(error.hint ?? "", /DOCKER_CONFIG/);
  });

  it("a config.json of the wrong shape, or an auth that is not base64 user:password, names the field", async () => {
    const cases: [unknown, RegExp][] = [
      [[], /is not a JSON object/],
      [{ auths: [] }, /has a "auths" that is not an object/],
      [{ credsStore: 3 }, /has a "credsStore" that is not a helper name/],
      [{ credHelpers: { "ghcr.io": true } }, /has a "credHelpers" that is not an object of helper names/],
      [{ auths: { "ghcr.io": "x" } }, /has an auths\["ghcr.io"\] that is not an object/],
      [
        { auths: { "ghcr.io": { auth: "!!not base64!!" } } },
        /auths\["ghcr.io"\] that has an "auth" that is not base64/,
      ],
      [{ auths: { "ghcr.io": { auth: base64("no-colon") } } }, /is not base64 of "user:password"/],
      [{ auths: { "ghcr.io": { auth: base64(":pw-without-user") } } }, /is not base64 of "user:password"/],
      [{ auths: { "ghcr.io": { username: "u", password: 5 } } }, /has a "password" that is not a string/],
    ];
    for (const [config, message] of cases) {
      const { env } = setup({ config });
      const error = await failure(resolveCredentials("ghcr.io", env), ["no-colon", "pw-without-user"]);
      assert.match(error.message, message, JSON.stringify(config));
    }
  });

  it("a config.json that cannot be read is an error naming the file", async () => {
    const { env, file } = setup();
    mkdirSync(file);
    assert.match((await failure(resolveCredentials("ghcr.io", env))).message, /cannot be read \(EISDIR\)/);
  });

  it("finds ~/.docker/config.json through HOME when DOCKER_CONFIG is unset or empty", async () => {
    const { env } = setup({ config: { auths: { "ghcr.io": { auth: base64("home:pw") } } } });
    const home = join(env.DOCKER_CONFIG, "..", "home");
    mkdirSync(join(home, ".docker"), { recursive: true });
    writeFileSync(
      join(home, ".docker", "config.json"),
      JSON.stringify({ auths: { "ghcr.io": { auth: base64("h:pw") } } }),
    );
    for (const DOCKER_CONFIG of [undefined, ""])
      assert.equal(
        ((await resolveCredentials("ghcr.io", { ...env, DOCKER_CONFIG, HOME: home })) as { username: string })
          .username,
        "h",
      );
  });

  it("DOCKER_AUTH_CONFIG comes before config.json and its helpers; a registry it lacks falls through", async () => {
    const { env } = setup({
      config: { credsStore: "vmtest" },
      helper: { "quay.io": { Username: "helper", Secret: "h" } },
      env: { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { "ghcr.io": { auth: base64("ci:token") } } }) },
    });
    assert.deepEqual(await resolveCredentials("ghcr.io", env), basic("ci", "token", "DOCKER_AUTH_CONFIG"));
    assert.equal(((await resolveCredentials("quay.io", env)) as { username: string }).username, "helper");
    const bad = setup({ env: { DOCKER_AUTH_CONFIG: '{"auths": {"ghcr.io": {"auth": "c2VjcmV0"' } });
    const error = await failure(resolveCredentials("ghcr.io", bad.env), ["c2VjcmV0"]);
    assert.match(error.message, /^DOCKER_AUTH_CONFIG is not valid JSON/);
  });

  it("the engine's X-Registry-Auth: base64url JSON of docker's AuthConfig, none for anonymous", () => {
    const decode = (header: string | undefined) => {
      assert.ok(header);
      assert.match(header, /^[A-Za-z0-9_-]*={0,2}$/, "base64url");
      assert.equal(header.length % 4, 0, "padded, as the docker CLI sends it");
      return JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as unknown;
    };
    const password = "p?>?~~/+"; // encodes to characters base64 and base64url write differently
    assert.deepEqual(decode(dockerAuthHeader(basic("alice", password, "test"), "ghcr.io")), {
      username: "alice",
      password,
      serveraddress: "ghcr.io",
    });
    assert.deepEqual(
      decode(dockerAuthHeader({ kind: "token", identityToken: "tok", source: "test" }, "docker.io")),
      { identitytoken: "tok", serveraddress: "https://index.docker.io/v1/" },
    );
    assert.equal(dockerAuthHeader(undefined, "ghcr.io"), undefined);
  });
});
