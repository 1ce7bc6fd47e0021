import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { entropy, findTokens, redact } from "./tokens.ts";

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LETTERS = UPPER + UPPER.toLowerCase();
const DIGITS = "0123456789";
const B62 = LETTERS + DIGITS;
const B64URL = B62 + "-_";
const HEX = "0123456789abcdef";

/**
 * A random-looking string drawn from `alphabet`, derived from `seed` so runs are reproducible. Tokens are
 * assembled from these at run time, so no literal token sits in this file for repository scanners to flag.
 */
function fake(seed: string, alphabet: string, length: number): string {
  let out = "";
  for (let i = 0; out.length < length; i++) {
    for (const byte of createHash("sha256").update(`${seed}/${i}`).digest()) {
      out += alphabet.charAt(byte % alphabet.length);
    }
  }
  return out.slice(0, length);
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
const jwt = [
  b64url({ alg: "HS256", typ: "JWT" }),
  b64url({ sub: "8f2c41", name: "Ada Lovelace", iat: 1735689600 }),
  fake("jwt", B64URL, 43),
].join(".");

const GITHUB = "ghp_" + fake("ghp", B62, 36);
const NPM = "npm_" + fake("npm", B62, 36);

/** [kind, token, the preview's expected head] for one invented value of each format. */
const TOKENS: [string, string, string][] = [
  ["GitHub token", GITHUB, "ghp_"],
  ["GitHub token", "gho_" + fake("gho", B62, 36), "gho_"],
  ["GitHub token", "github_pat_" + fake("pat1", B62, 22) + "_" + fake("pat2", B62, 59), "github_pat_"],
  ["GitLab token", "glpat-" + fake("glpat", B64URL, 20), "glpat-"],
  ["GitLab token", "glrt-" + fake("glrt", B64URL, 26), "glrt-"],
  [
    "Slack token",
    `xoxb-${fake("sb1", DIGITS, 12)}-${fake("sb2", DIGITS, 13)}-${fake("sb3", B62, 24)}`,
    "xoxb-",
  ],
  [
    "Slack token",
    `xoxp-${fake("sp1", DIGITS, 11)}-${fake("sp2", DIGITS, 11)}-${fake("sp3", DIGITS, 12)}-${fake("sp4", HEX, 32)}`,
    "xoxp-",
  ],
  [
    "Slack webhook",
    `https://hooks.slack.com/services/T${fake("wt", UPPER + DIGITS, 10)}/B${fake("wb", UPPER + DIGITS, 10)}/${fake("ws", B62, 24)}`,
    "https://hooks.slack.com/services/",
  ],
  ["Anthropic API key", "sk-ant-api03-" + fake("ant", B64URL, 93) + "AA", "sk-ant-api03"],
  ["OpenAI API key", "sk-proj-" + fake("proj", B64URL, 156), "sk-proj-"],
  ["OpenAI API key", "sk-" + fake("oa1", B62, 20) + "T3BlbkFJ" + fake("oa2", B62, 20), "sk-"],
  ["Hugging Face token", "hf_" + fake("hf", LETTERS, 34), "hf_"],
  ["npm token", NPM, "npm_"],
  ["Google API key", "AIza" + fake("gcp", B64URL, 35), "AIza"],
  ["Stripe key", "sk_live_" + fake("stripe", B62, 99), "sk_live_"],
  ["Stripe key", "rk_test_" + fake("stripe-rk", B62, 24), "rk_test_"],
  ["Twilio key", "SK" + fake("twilio", HEX, 32), "SK"],
  ["AWS access key", "AKIA" + fake("aws", UPPER + "234567", 16), "AKIA"],
  ["AWS access key", "ASIA" + fake("aws-sts", UPPER + "234567", 16), "ASIA"],
  ["SendGrid key", "SG." + fake("sg1", B64URL, 22) + "." + fake("sg2", B64URL, 43), "SG."],
  ["DigitalOcean token", "dop_v1_" + fake("do", HEX, 64), "dop_v1_"],
  ["PyPI token", "pypi-AgEIcHlwaS5vcmc" + fake("pypi", B64URL, 150), "pypi-AgEIcHl"],
  ["Shopify token", "shpat_" + fake("shopify", HEX, 32), "shpat_"],
  ["Databricks token", "dapi" + fake("databricks", HEX, 32), "dapi"],
  ["JSON Web Token", jwt, "eyJh"],
];

describe("findTokens", () => {
  it("finds one invented value of each format with its kind and a redacted preview", () => {
    for (const [kind, token, head] of TOKENS) {
      const found = findTokens(`value ${token} end`);
      assert.deepEqual(found, [{ kind, preview: `${head}…${token.slice(-4)}` }], token);
      const middle = token.slice(token.length / 2 - 4, token.length / 2 + 4);
      assert.ok(!found[0]?.preview.includes(middle), `${kind} preview leaks the middle of the token`);
    }
  });

  it("finds a token in a shell rc line, JSON, YAML and a URL query", () => {
    const expected = [{ kind: "GitHub token", preview: `ghp_…${GITHUB.slice(-4)}` }];
    assert.deepEqual(findTokens(`export GITHUB_TOKEN=${GITHUB}\n`), expected);
    assert.deepEqual(findTokens(`{"token":"${NPM}"}`), [
      { kind: "npm token", preview: `npm_…${NPM.slice(-4)}` },
    ]);
    const gho = "gho_" + fake("gho", B62, 36);
    assert.deepEqual(findTokens(`github.com:\n  oauth_token: ${gho}\n  user: ada\n`), [
      { kind: "GitHub token", preview: `gho_…${gho.slice(-4)}` },
    ]);
    assert.deepEqual(
      findTokens(`curl "https://api.github.com/user?access_token=${GITHUB}&page=2"`),
      expected,
    );
  });

  it("reports each distinct token once, in order of appearance", () => {
    const text = `${NPM}\n${GITHUB}\n${NPM}\nagain ${GITHUB}`;
    assert.deepEqual(
      findTokens(text).map((match) => match.kind),
      ["npm token", "GitHub token"],
    );
  });

  it("ignores a token glued to a longer identifier or run of its alphabet", () => {
    assert.deepEqual(findTokens(`x${GITHUB}`), []);
    assert.deepEqual(findTokens(`_${GITHUB}`), []);
    assert.deepEqual(findTokens(`${GITHUB}Q`), []);
    assert.deepEqual(findTokens(`${GITHUB}_suffix`), []);
    assert.deepEqual(findTokens("ghp_" + fake("long", B62, 46)), []);
    assert.deepEqual(findTokens("AKIA" + fake("aws", UPPER + "234567", 16) + "Z"), []);
  });

  it("does not report a legacy-shaped sk- key that is really an Anthropic key as OpenAI", () => {
    const anthropic = "sk-ant-api03-" + fake("ant", B64URL, 93) + "AA";
    assert.deepEqual(
      findTokens(anthropic).map((match) => match.kind),
      ["Anthropic API key"],
    );
  });

  describe("stays quiet on look-alikes", () => {
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      createHash("sha512").update("pixels").digest(),
      createHash("sha512").update("more pixels").digest(),
    ]).toString("base64");
    const integrity = `"integrity": "sha512-${createHash("sha512").update("left-pad").digest("base64")}"`;
    const decoys: [string, string][] = [
      ["an x placeholder", "ghp_" + "x".repeat(36)],
      ["a placeholder in angle brackets", "GITHUB_TOKEN=ghp_<your token here>"],
      ["an elided key", "OPENAI_API_KEY=sk-..."],
      ["the documented AWS example key", "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE"],
      ["an AWS placeholder", "AKIA" + "XXXXXXXXXXXXXXXX"],
      ["a sequential GitHub placeholder", "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"],
      ["a sequential Slack placeholder", "xoxb-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"],
      [
        "a Slack webhook placeholder",
        "https://hooks.slack.com/services/T00000000/B00000000/" + "X".repeat(24),
      ],
      ["a GitLab placeholder", "glpat-" + "xxxxxxxxxxxxxxxxxxxx"],
      ["a repeated-block placeholder", "npm_" + "aB3dE5".repeat(6)],
      ["a camelCase identifier without digits", "ghp_" + "buttonPrimaryHoverStateActiveColorXy"],
      ["a package-lock integrity string", integrity],
      ["a git sha", "commit 9f3b2c71e4a8d05b6c1f7e2a3d9b8c4e5f6a7b1c"],
      ["a UUID", "id: 3f2b8c1e-9a4d-4e7b-8c2a-6d5f1e0b9a7c"],
      ["base64 of a PNG", `src="data:image/png;base64,${png}"`],
      ["plain words", "token password secret api_key sk-learn scikit-learn"],
      ["npm and Hugging Face identifiers", "npm_config_cache hf_hub_download npm_package_version"],
      ["a CSS class", ".ghp_button { color: red } #gho_header"],
      ["AIza with too few characters", "key=AIza" + fake("short", B62, 20)],
      [
        "a JWT whose header is not JSON",
        `${Buffer.from('{"alg" HS256, no JSON').toString("base64url")}.${jwt.split(".")[1]}.${fake("s", B64URL, 43)}`,
      ],
      [
        "a JWT whose header has no alg",
        `${b64url({ typ: "JWT", kid: "k1" })}.${jwt.split(".")[1]}.${fake("s", B64URL, 43)}`,
      ],
      ["a Twilio-shaped run of digits", "SK" + "7".repeat(8) + fake("digits", DIGITS, 24)],
    ];
    for (const [what, text] of decoys) {
      it(`ignores ${what}`, () => assert.deepEqual(findTokens(text), []));
    }
  });

  it("returns nothing for 4 MiB of ordinary source code", () => {
    const paragraph = `
import { createHash } from "node:crypto";
// Read the token from the environment; never log the password or the api_key.
export async function login(options = { token: process.env.GITHUB_TOKEN, retries: 3 }) {
  const hash = createHash("sha256").update(options.token ?? "").digest("hex");
  const cache = process.env.npm_config_cache ?? "~/.npm"; // hf_hub_download, sk-learn, SKU-1234
  document.querySelector(".ghp_button")?.classList.add("active", "AIza", "eyJ", "dapi");
  return fetch(\`https://api.example.com/v1/session?user=\${encodeURIComponent(hash)}&cache=\${cache}\`);
}
`;
    const text = paragraph.repeat(Math.ceil((4 * 1024 * 1024) / paragraph.length));
    assert.ok(text.length >= 4 * 1024 * 1024);
    assert.deepEqual(findTokens(text), []);
  });
});

describe("redact", () => {
  it("keeps the prefix and the last 4 characters", () => {
    assert.equal(redact(GITHUB, 4), `ghp_…${GITHUB.slice(-4)}`);
  });

  it("keeps the first 4 characters of a token without a prefix", () => {
    assert.equal(redact(jwt, 0), `eyJh…${jwt.slice(-4)}`);
  });

  it("shows no tail on a token too short to hide anything", () => {
    assert.equal(redact("ghp_abc12", 4), "ghp_…");
  });
});

describe("entropy", () => {
  it("measures Shannon entropy in bits per character", () => {
    assert.equal(entropy(""), 0);
    assert.equal(entropy("aaaa"), 0);
    assert.equal(entropy("abab"), 1);
    assert.equal(entropy("abcd"), 2);
    assert.ok(entropy(fake("e", B62, 36)) > 4);
  });
});
