import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * An image's worth of planted secrets of real formats (invented values) in the places people leak them,
 * and decoys that must stay quiet. Values are derived at run time, so no literal token sits in the
 * repository for secret scanners to flag.
 */
const B62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX = "0123456789abcdef";
function fake(seed: string, length: number, alphabet = B62): string {
  let out = "";
  for (let i = 0; out.length < length; i++)
    for (const byte of createHash("sha256").update(`planted/${seed}/${i}`).digest())
      out += alphabet[byte % alphabet.length];
  return out.slice(0, length);
}
const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

export const T = {
  ghp: "ghp_" + fake("ghp", 36),
  gho: "gho_" + fake("gho", 36),
  ghu: "ghu_" + fake("ghu", 36),
  pat: "github_pat_" + fake("pat1", 22) + "_" + fake("pat2", 59),
  glpat: "glpat-" + fake("glpat", 20),
  glpat2: "glpat-" + fake("glpat2", 20),
  npm: "npm_" + fake("npm", 36),
  npm2: "npm_" + fake("npm2", 36),
  antOauth: "sk-ant-oat01-" + fake("ant1", 95),
  antApi: "sk-ant-api03-" + fake("ant2", 95),
  openai: "sk-proj-" + fake("oai", 120),
  openai2: "sk-proj-" + fake("oai2", 120),
  google: "AIza" + fake("goog", 35),
  hf: "hf_" + fake("hf", 34, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
  slack: `xoxb-${fake("sl1", 12, "0123456789")}-${fake("sl2", 13, "0123456789")}-${fake("sl3", 24)}`,
  webhook: `https://hooks.slack.com/services/T${fake("wh1", 10, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")}/B${fake("wh2", 10, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")}/${fake("wh3", 24)}`,
  stripe: "sk_live_" + fake("stripe", 32),
  twilio: "SK" + fake("twilio", 32, HEX),
  aws: "AKIA" + fake("aws", 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
  awsSecret: fake("awssecret", 40),
  sendgrid: `SG.${fake("sg1", 22)}.${fake("sg2", 43)}`,
  digitalocean: "dop_v1_" + fake("do", 64, HEX),
  pypi: "pypi-AgEIcHlwaS5vcmc" + fake("pypi", 80),
  jwt: [
    b64url({ alg: "HS256", typ: "JWT" }),
    b64url({ sub: "svc-7", iat: 1735689600 }),
    fake("jwt", 43),
  ].join("."),
  cargo: "cio" + fake("cargo", 32),
  gem: "rubygems_" + fake("gem", 48, HEX),
  terraform: `${fake("tf1", 14)}.atlasv1.${fake("tf2", 67)}`,
  vault: "hvs." + fake("vault", 24),
  dbPassword: fake("dbpw", 20),
  deploySecret: fake("deploy", 24),
  pgpass: fake("pg", 16),
  rclone: fake("rclone", 32),
  maven: fake("maven", 20),
};

/** [path in the image, the kind the scan must report there]. */
export const PLANTED: [string, RegExp][] = [
  ["config: Env GITHUB_TOKEN", /GitHub token/],
  ["config: Env DB_PASSWORD", /secret in DB_PASSWORD/],
  ["config: Label com.example.deploy-token", /GitLab token/],
  ["history", /npm token/],
  ["history", /secret in build arg DEPLOY_SECRET/],
  ["root/.claude/.credentials.json", /Claude Code login/],
  ["root/.claude/.credentials.json", /Anthropic API key/],
  ["home/dev/.claude.json", /Claude Code API key/],
  ["root/.codex/auth.json", /Codex login/],
  ["root/.codex/auth.json", /OpenAI API key/],
  ["root/.gemini/oauth_creds.json", /Gemini CLI login/],
  ["root/.gemini/.env", /Google API key/],
  ["root/.config/github-copilot/apps.json", /GitHub Copilot login/],
  ["root/.config/gh/hosts.yml", /GitHub CLI login/],
  ["root/.config/glab-cli/config.yml", /GitLab CLI login/],
  ["root/.cargo/credentials.toml", /cargo registry token/],
  ["root/.gem/credentials", /RubyGems API key/],
  ["root/.cache/huggingface/token", /Hugging Face token/],
  ["root/.terraform.d/credentials.tfrc.json", /Terraform token/],
  ["root/.vault-token", /Vault token/],
  ["root/.npmrc", /npm credentials/],
  ["root/.pypirc", /PyPI/],
  ["home/dev/.bashrc", /OpenAI API key/],
  ["home/dev/.bashrc", /Slack token/],
  ["home/dev/.config/app/settings.json", /Stripe key/],
  ["home/dev/.config/app/settings.json", /Twilio key/],
  ["root/.ssh/id_ed25519", /private key/],
  ["root/.aws/credentials", /cloud credentials/],
  ["root/.aws/credentials", /AWS access key/],
  ["root/.docker/config.json", /docker credentials/],
  ["root/.git-credentials", /git credentials/],
  ["etc/app/service.conf", /JSON Web Token/],
  ["home/dev/.env", /SendGrid key/],
  ["root/.kube/config", /kubernetes credentials/],
  ["home/dev/notes.md", /Slack webhook/],
  ["root/.pgpass", /PostgreSQL password file/],
  ["etc/profile.d/tokens.sh", /GitHub token/],
  ["home/dev/.profile", /DigitalOcean token/],
  ["root/.config/rclone/rclone.conf", /rclone credentials/],
  ["home/dev/.m2/settings.xml", /Maven credentials/],
];

const KEY = [
  "-----BEGIN OPENSSH PRIVATE ",
  "KEY-----\n",
  fake("ssh", 70),
  "\n-----END OPENSSH PRIVATE ",
  "KEY-----\n",
].join("");

const FILES: Record<string, string> = {
  "root/.claude/.credentials.json": JSON.stringify({
    claudeAiOauth: { accessToken: T.antOauth, expiresAt: 1767225600000 },
  }),
  "home/dev/.claude.json": JSON.stringify({ numStartups: 3, primaryApiKey: T.antApi }),
  "root/.codex/auth.json": JSON.stringify({ OPENAI_API_KEY: T.openai, tokens: null }),
  "root/.gemini/oauth_creds.json": JSON.stringify({
    access_token: "ya29." + fake("ya29", 60),
    token_type: "Bearer",
  }),
  "root/.gemini/.env": `GEMINI_API_KEY=${T.google}\n`,
  "root/.config/github-copilot/apps.json": JSON.stringify({
    "github.com:Iv1.b507a08c87ecfe98": { user: "dev", oauth_token: T.ghu },
  }),
  "root/.config/gh/hosts.yml": `github.com:\n    user: dev\n    oauth_token: ${T.gho}\n    git_protocol: https\n`,
  "root/.config/glab-cli/config.yml": `hosts:\n    gitlab.com:\n        token: ${T.glpat2}\n        api_protocol: https\n`,
  "root/.cargo/credentials.toml": `[registry]\ntoken = "${T.cargo}"\n`,
  "root/.gem/credentials": `---\n:rubygems_api_key: ${T.gem}\n`,
  "root/.cache/huggingface/token": T.hf,
  "root/.terraform.d/credentials.tfrc.json": JSON.stringify({
    credentials: { "app.terraform.io": { token: T.terraform } },
  }),
  "root/.vault-token": T.vault,
  "root/.npmrc": `//registry.npmjs.org/:_authToken=${T.npm2}\n`,
  "root/.pypirc": `[pypi]\nusername = __token__\npassword = ${T.pypi}\n`,
  "home/dev/.bashrc": `alias ll='ls -l'\nexport OPENAI_API_KEY=${T.openai2}\nexport SLACK_BOT_TOKEN="${T.slack}"\n`,
  "home/dev/.config/app/settings.json": JSON.stringify(
    { payments: { stripe: T.stripe }, sms: { twilio: T.twilio } },
    null,
    2,
  ),
  "root/.ssh/id_ed25519": KEY,
  "root/.aws/credentials": `[default]\naws_access_key_id = ${T.aws}\naws_secret_access_key = ${T.awsSecret}\n`,
  "root/.docker/config.json": JSON.stringify({
    auths: { "ghcr.io": { auth: Buffer.from(`dev:${T.ghp}`).toString("base64") } },
  }),
  "root/.git-credentials": `https://dev:${T.ghp}@github.com\n`,
  "etc/app/service.conf": `[auth]\nbearer = ${T.jwt}\n`,
  "home/dev/.env": `NODE_ENV=development\nSENDGRID_API_KEY=${T.sendgrid}\n`,
  "root/.kube/config": `apiVersion: v1\nusers:\n- name: dev\n  user:\n    token: ${fake("kube", 40)}\n`,
  "home/dev/notes.md": `# deploy\nalerts go to ${T.webhook}\n`,
  "root/.pgpass": `db.internal:5432:app:app:${T.pgpass}\n`,
  "etc/profile.d/tokens.sh": `export GH_TOKEN=${T.pat}\n`,
  "home/dev/.profile": `export DIGITALOCEAN_TOKEN=${T.digitalocean}\n`,
  "root/.config/rclone/rclone.conf": `[s3]\ntype = s3\nsecret_access_key = ${T.rclone}\n`,
  "home/dev/.m2/settings.xml": `<settings><servers><server><id>corp</id><password>${T.maven}</password></server></servers></settings>\n`,
};

/** Paths that must stay quiet: they mention secrets, hold hashes and base64, or are libraries' fixtures. */
export const DECOYS: string[] = [
  "etc/ssl/certs/ca-certificates.crt",
  "root/project/.env.example",
  "root/project/README.md",
  "root/project/package-lock.json",
  "root/project/logo.png.b64",
  "root/project/node_modules/jsonwebtoken/test/fixtures.json",
  "root/project/src/auth.js",
  "root/project/ids.txt",
  "etc/app/defaults.conf",
];

function decoyFiles(): Record<string, string> {
  const lock = {
    name: "project",
    lockfileVersion: 3,
    packages: Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [
        `node_modules/pkg-${i}`,
        {
          version: `1.${i}.0`,
          resolved: `https://registry.npmjs.org/pkg-${i}/-/pkg-${i}-1.${i}.0.tgz`,
          integrity: "sha512-" + createHash("sha512").update(`pkg-${i}`).digest("base64"),
        },
      ]),
    ),
  };
  const png = Buffer.concat(
    Array.from({ length: 40 }, (_, i) => createHash("sha512").update(`png${i}`).digest()),
  );
  return {
    "etc/ssl/certs/ca-certificates.crt": readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8"),
    "root/project/.env.example":
      "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nAPI_KEY=your-api-key\nPASSWORD=changeme\n",
    "root/project/README.md":
      "Set GITHUB_TOKEN to your token (ghp_...), and the database password in .env.\nThe API key goes in sk-... form.\n",
    "root/project/package-lock.json": JSON.stringify(lock, null, 2),
    "root/project/logo.png.b64": ("iVBORw0KGgo" + png.toString("base64")).replace(/(.{76})/g, "$1\n"),
    "root/project/node_modules/jsonwebtoken/test/fixtures.json": JSON.stringify({ token: T.jwt, gh: T.ghp }),
    "root/project/src/auth.js":
      "// read the token and password from the environment\nconst password = process.env.PASSWORD;\nconst token = process.env.API_TOKEN;\n",
    "root/project/ids.txt":
      Array.from({ length: 20 }, (_, i) => createHash("sha1").update(`c${i}`).digest("hex")).join("\n") +
      "\n3f1c2a9e-8b7d-4c6e-9a1f-2b3c4d5e6f70\n",
    "etc/app/defaults.conf": "api_key = changeme\npassword = <set me>\ntoken_ttl = 3600\n",
  };
}

/** Writes the build context: planted/ and decoys/ (both copied to /), and a Dockerfile FROM `base`. */
export function writeSecretsContext(dir: string, base: string): void {
  for (const [folder, files] of [
    ["planted", FILES],
    ["decoys", decoyFiles()],
  ] as const)
    for (const [path, content] of Object.entries(files)) {
      const full = join(dir, folder, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  writeFileSync(
    join(dir, "Dockerfile"),
    [
      `FROM ${base}`,
      "COPY planted/ /",
      "COPY decoys/ /",
      `ENV GITHUB_TOKEN=${T.ghp} DB_PASSWORD=${T.dbPassword} LANG=C.UTF-8`,
      `LABEL com.example.deploy-token="${T.glpat}" org.opencontainers.image.title="secrets fixture"`,
      "ARG NPM_TOKEN",
      "ARG DEPLOY_SECRET",
      'RUN echo "installing with a token" > /built',
      "",
    ].join("\n"),
  );
}

/** Every planted value in full: none may appear in what vm prints. */
export const SECRET_VALUES: string[] = Object.values(T);
