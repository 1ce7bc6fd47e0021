import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kindsFound, ruleFor, searchForTokens } from "./rules.ts";

describe("ruleFor", () => {
  it("knows the AI CLIs' and developer tools' credential files by their place", () => {
    const cases: [string, string][] = [
      ["root/.claude/.credentials.json", "Claude Code login"],
      ["home/dev/.codex/auth.json", "Codex login"],
      ["home/dev/.gemini/oauth_creds.json", "Gemini CLI login"],
      ["root/.config/github-copilot/hosts.json", "GitHub Copilot login"],
      ["root/.config/gh/hosts.yml", "GitHub CLI login"],
      ["root/.config/glab-cli/config.yml", "GitLab CLI login"],
      ["root/.cargo/credentials.toml", "cargo registry token"],
      ["root/.gem/credentials", "RubyGems API key"],
      ["root/.aws/credentials", "cloud credentials"],
      ["root/.cache/huggingface/token", "Hugging Face token"],
      ["root/.vault-token", "Vault token"],
    ];
    for (const [path, kind] of cases) assert.equal(ruleFor(path)?.kind, kind, path);
  });

  it("needs the place, not only the name: a config.yml or auth.json elsewhere is no login", () => {
    assert.equal(ruleFor("srv/app/config.yml"), undefined);
    assert.equal(ruleFor("srv/app/auth.json"), undefined);
    assert.equal(ruleFor("usr/share/doc/credentials"), undefined);
    assert.equal(ruleFor("app/.env.example"), undefined);
    assert.equal(ruleFor("app/.env.dist"), undefined);
  });

  it("asks for content that proves the login: a logged-out config stays quiet", () => {
    const gh = ruleFor("root/.config/gh/hosts.yml")!;
    assert.deepEqual(kindsFound(gh, "github.com:\n    user: dev\n    git_protocol: https\n", 40), []);
    assert.deepEqual(kindsFound(gh, "github.com:\n    oauth_token: gho_0123abcdEFGH4567\n", 40), [
      { kind: "GitHub CLI login", preview: "gh…4567" },
    ]);
  });
});

describe("searchForTokens", () => {
  it("searches what people write under homes, /root, /etc and /workspace", () => {
    for (const path of [
      "root/.bashrc",
      "home/dev/notes.md",
      "etc/app/service.conf",
      "workspace/deploy.sh",
      "root/project/.git/config", // a remote URL with a token in it
    ])
      assert.equal(searchForTokens(path), true, path);
  });

  it("skips system files and what tools download: libraries' fixtures, caches, toolchains", () => {
    for (const path of [
      "usr/lib/python3/dist-packages/x/tests/keys.py",
      "root/project/node_modules/jsonwebtoken/test/fixtures.json",
      "home/dev/.cache/pip/http/abc",
      "home/dev/.rustup/toolchains/stable/share/doc/x.md",
      "home/dev/.nvm/versions/node/v22/include/node/x.h",
      "home/dev/.vscode-server/extensions/x/package.json",
      "root/project/.git/objects/ab/cdef0123",
    ])
      assert.equal(searchForTokens(path), false, path);
  });
});
