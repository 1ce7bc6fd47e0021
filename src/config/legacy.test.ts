import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { IGNORED_FIELDS } from "./legacy.ts";
import { parseConfig } from "./load.ts";
import { resolveLimits } from "../lib/units.ts";

const FILE = "/projects/demo/vm.yaml";

function invalid(text: string): VmError {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof VmError, String(error));
    assert.equal(error.exitCode, 3);
    return error;
  }
  assert.fail("expected parseConfig to throw");
}

/** vm 3.4.0's configs/defaults.yaml, verbatim, then what `vm init` and presets add. */
const VM3 = `---
# Default VM configuration - contains all schema defaults
# This file provides sensible defaults for all VM configuration options

# Metadata & Schema
version: "1.2.1"

# Provider & Environment
provider: docker
os: auto

# Project Identity
project:
  name: vm-project
  hostname: dev.vm-project.local
  workspace_path: /workspace

# VM Resources
vm:
  box: ubuntu/jammy64
  memory: 8192
  cpus: 6
  swap: 2048
  swappiness: 60
  user: developer
  port_binding: 127.0.0.1
  gui: false
  timezone: auto

# Runtime Versions
versions:
  node: "22"
  python: "3.11"

# Development Environment
terminal:
  emoji: "🚀"
  username: dev
  theme: dracula
  show_git_branch: true
  show_timestamp: false
ports:
  _range: [3120, 3129]
  mappings:
    - host: 8080
      guest: 80
      protocol: tcp
    - { host: 5353, guest: 53, protocol: udp }
  frontend: 3001
services:
  postgresql:
    enabled: true
    version: 15
    port: 3129
    database: "{{ project.name }}_dev"
  redis:
    enabled: false
apt_packages: [htop]
npm_packages:
  - prettier
pip_packages: [httpie]
cargo_packages: [ripgrep]
package_linking: { npm: true }
aliases:
  ll: "ls -la"
  gs: "git status"
environment:
  NODE_ENV: development
  PORT: 3000
  DEBUG: true
development:
  ssh_agent_forwarding: true
claude_sync: true
gemini_sync: false
copy_git_config: true
security:
  no_new_privileges: true
worktrees:
  enabled: true
networking:
  networks: [jules]
tart:
  disk_size: 40
$schema: ./schema/vm.schema.yaml
`;

describe("a vm.yaml from vm 3.x", () => {
  const config = parseConfig(VM3, FILE);

  it("reads the fields that mean the same here", () => {
    assert.deepEqual(
      { ...config, warnings: [] },
      {
        file: FILE,
        dir: "/projects/demo",
        version: "1.2.1",
        project: { name: "vm-project", workspacePath: "/workspace", hostname: "dev.vm-project.local" },
        box: { kind: "image", ref: "ubuntu/jammy64" },
        memoryBytes: 8192 * 1024 ** 2,
        nanoCpus: 6_000_000_000,
        user: "developer",
        ports: [
          { host: 8080, container: 80, protocol: "tcp", hostIp: "127.0.0.1" },
          { host: 5353, container: 53, protocol: "udp", hostIp: "127.0.0.1" },
        ],
        environment: { NODE_ENV: "development", PORT: "3000", DEBUG: "true" },
        volumes: [],
        warnings: [],
      },
    );
  });

  it("warns once, naming each ignored field with its line and why", () => {
    assert.deepEqual(config.warnings, [
      `vm.yaml has fields from vm 3.x that vm does not use; they are ignored:
  line 10: os (the box image decides the operating system)
  line 23: vm.swap (vm limits memory only; the engine decides swap)
  line 24: vm.swappiness (vm limits memory only; the engine decides swap)
  line 27: vm.gui (vm has no GUI support)
  line 28: vm.timezone (the box image sets the time zone; TZ in environment works too)
  line 31: versions (pin language versions in the box's Dockerfile)
  line 36: terminal (vm does not set up the shell prompt; the box image does)
  line 43: ports._range (vm publishes only the ports listed)
  line 49: ports.frontend (vm 3.x did not publish named ports either; list them under ports.mappings)
  line 50: services (vm does not install services; run them in the box image or as containers)
  line 58: apt_packages (install packages in the box's Dockerfile)
  line 59: npm_packages (install packages in the box's Dockerfile)
  line 61: pip_packages (install packages in the box's Dockerfile)
  line 62: cargo_packages (install packages in the box's Dockerfile)
  line 63: package_linking (vm does not link host packages into the environment)
  line 64: aliases (define aliases in the box image's shell profile)
  line 71: development (vm does not forward the SSH agent or sync dotfiles)
  line 73: claude_sync (vm does not sync AI tool settings)
  line 74: gemini_sync (vm does not sync AI tool settings)
  line 75: copy_git_config (vm does not copy the host's git config)
  line 76: security (vm uses the engine's default container security)
  line 78: worktrees (vm does not manage git worktrees)
  line 80: networking (vm does not join Docker networks)
  line 82: tart (vm runs Docker only)
  line 84: $schema (vm 3.x's schema; vm's is schema/vm.schema.json)`,
    ]);
  });

  it("keeps scalars as written where vm 3.x read text", () => {
    const c = parseConfig(
      "version: 1.10\nvm:\n  user: 1000\nenvironment:\n  RATIO: 1.50\n  HEX: 0x1F\n",
      FILE,
    );
    assert.equal(c.version, "1.10");
    assert.equal(c.user, "1000");
    assert.deepEqual(c.environment, { RATIO: "1.50", HEX: "0x1F" });
    assert.equal(parseConfig("version: true\n", FILE).version, "true");
  });

  it("has a reason for every ignored field", () => {
    for (const field of IGNORED_FIELDS) assert.ok(field.reason.length > 10, field.path.join("."));
  });
});

/** vm 4.x/5.x keys (host_sync, profiles, storage, ...), as in 5.x's vibe-tart preset and VmConfig. */
const VM5 = `$schema: https://example.com/vm.schema.json
version: "2"
preset: vibe
provider: docker
default_profile: tart
project:
  name: vibe
  workspace_path: /workspace
  backup_pattern: "*backup*.sql.gz"
  env_template_path: .env.example
vm:
  box: '@vibe-box'
  cpus: 75%
  memory: 75%
  swap: 2048
  user: developer
  uid: 1000
  gid: 1000
  pids_limit: 512
  stop_grace_period: 10
  logging: { driver: local, max_size: 20m, max_files: 5 }
storage:
  volumes:
    cache: { target: /cache }
mounts:
  - { source: ../shared, target: /shared, access: read_only }
tools:
  updates: prompt
bootstrap:
  dependencies: true
host_sync:
  git_config: true
  ai_tools: true
profiles:
  tart:
    provider: tart
package_edge:
  image: x
ai_sync: true
`;

describe("a vm.yaml from vm 4.x/5.x", () => {
  const config = parseConfig(VM5, FILE);

  it("reads the box and keeps the percentages for the engine", () => {
    assert.deepEqual(config.box, { kind: "snapshot", name: "vibe-box" });
    assert.equal(config.memoryPercent, 75);
    assert.equal(config.cpusPercent, 75);
    assert.equal(config.memoryBytes, undefined);
    assert.equal(config.nanoCpus, undefined);
    assert.equal(config.version, "2");
  });

  it("names every ignored field with its line", () => {
    const lines = config.warnings[0]!.split("\n").slice(1);
    assert.deepEqual(
      lines.map((l) => l.replace(/ \(.*\)$/, "")),
      [
        "  line 1: $schema",
        "  line 3: preset",
        "  line 5: default_profile",
        "  line 9: project.backup_pattern",
        "  line 10: project.env_template_path",
        "  line 15: vm.swap",
        "  line 17: vm.uid",
        "  line 18: vm.gid",
        "  line 19: vm.pids_limit",
        "  line 20: vm.stop_grace_period",
        "  line 21: vm.logging",
        "  line 22: storage",
        "  line 25: mounts",
        "  line 27: tools",
        "  line 29: bootstrap",
        "  line 31: host_sync",
        "  line 34: profiles",
        "  line 37: package_edge",
        "  line 39: ai_sync",
      ],
    );
    assert.equal(config.warnings.length, 1);
  });

  it("still refuses a field no version of vm had, with a suggestion", () => {
    assert.equal(
      invalid("servics:\n  redis: {}\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 1, servics: unknown field (did you mean services?)",
    );
    assert.equal(
      invalid("vm:\n  memroy: 4gb\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 2, vm.memroy: unknown field (did you mean vm.memory?)",
    );
    assert.match(invalid("flux_capacitor: 1\n").message, /line 1, flux_capacitor: unknown field$/);
  });
});

describe("vm.memory and vm.cpus as percentages", () => {
  it("keeps 1% to 100% and refuses others with the line", () => {
    assert.equal(parseConfig('vm:\n  memory: "50%"\n', FILE).memoryPercent, 50);
    assert.equal(parseConfig("vm:\n  cpus: 100%\n", FILE).cpusPercent, 100);
    assert.match(
      invalid("vm:\n  memory: 0%\n").message,
      /line 2, vm\.memory: expected a percentage from "1%" to "100%" \(got "0%"\)/,
    );
    assert.match(
      invalid("vm:\n  cpus: 150%\n").message,
      /line 2, vm\.cpus: expected a percentage from "1%" to "100%"/,
    );
    assert.match(
      invalid("vm:\n  cpus: 2gb\n").message,
      /line 2, vm\.cpus: expected a positive number of CPUs/,
    );
  });

  it("resolves them against the engine's memory and CPUs, at least 1 CPU", () => {
    const engine = { memoryBytes: 16 * 1024 ** 3, cpus: 8 };
    assert.deepEqual(resolveLimits({ memoryPercent: 50, cpusPercent: 75 }, engine), {
      memoryBytes: 8 * 1024 ** 3,
      nanoCpus: 6_000_000_000,
    });
    assert.deepEqual(resolveLimits({ cpusPercent: 10 }, { memoryBytes: 0, cpus: 2 }), { nanoCpus: 1e9 });
    assert.deepEqual(resolveLimits({ cpusPercent: 30 }, { memoryBytes: 0, cpus: 6 }), { nanoCpus: 1.8e9 });
    assert.deepEqual(resolveLimits({ memoryBytes: 5, nanoCpus: 7 }, undefined), {
      memoryBytes: 5,
      nanoCpus: 7,
    });
  });
});

describe("vm.port_binding", () => {
  it("gives ports without a host address 127.0.0.1, and keeps the ones that name one", () => {
    const config = parseConfig(
      'vm:\n  port_binding: 127.0.0.1\nports: ["3000:3000", "0.0.0.0:80:80"]\n',
      FILE,
    );
    assert.deepEqual(config.ports, [
      { host: 3000, container: 3000, protocol: "tcp", hostIp: "127.0.0.1" },
      { host: 80, container: 80, protocol: "tcp", hostIp: "0.0.0.0" },
    ]);
  });

  it("leaves ports on every interface for 0.0.0.0, and refuses other addresses", () => {
    const config = parseConfig('vm:\n  port_binding: 0.0.0.0\nports: ["3000:3000"]\n', FILE);
    assert.deepEqual(config.ports, [{ host: 3000, container: 3000, protocol: "tcp" }]);
    assert.match(
      invalid("vm:\n  port_binding: 10.0.0.1\n").message,
      /line 2, vm\.port_binding: expected "127\.0\.0\.1" or "0\.0\.0\.0" \(got "10\.0\.0\.1"\)/,
    );
  });
});

describe("ports in vm 3.x's map form", () => {
  it("reports a bad mapping with its line", () => {
    assert.match(
      invalid("ports:\n  mappings:\n    - host: 70000\n      guest: 80\n").message,
      /line 3, ports\.mappings\[0\]\.host: /,
    );
    assert.match(
      invalid("ports:\n  mappings:\n    - { host: 1, guest: 2, protocol: sctp }\n").message,
      /line 3, ports\.mappings\[0\]\.protocol: expected "tcp" or "udp"/,
    );
  });

  it("still reports a bad port of the list form under its index", () => {
    assert.match(
      invalid('ports:\n  - "3000:3000"\n  - "abc"\n').message,
      /^[^\n]+\n {2}line 3, ports\[1\]: expected "host:guest"/,
    );
  });
});

describe("vm.box_name (vm 3.x's deprecated name for vm.box)", () => {
  it("is the box when vm.box is absent, with a warning", () => {
    const config = parseConfig("vm:\n  box_name: debian:bookworm\n", FILE);
    assert.deepEqual(config.box, { kind: "image", ref: "debian:bookworm" });
    assert.deepEqual(config.warnings, [
      "vm.yaml line 2: vm.box_name is deprecated (vm 3.x); it is used as vm.box, so rename it to vm.box",
    ]);
  });

  it("is ignored, with a warning, when vm.box is set", () => {
    const config = parseConfig("vm:\n  box: '@vibe'\n  box_name: debian\n", FILE);
    assert.deepEqual(config.box, { kind: "snapshot", name: "vibe" });
    assert.deepEqual(config.warnings, [
      "vm.yaml line 3: vm.box_name is deprecated (vm 3.x) and ignored, because vm.box is set (line 2)",
    ]);
  });
});

describe("project.hostname", () => {
  it("is read, and refused when it is not a host name", () => {
    assert.equal(
      parseConfig("project:\n  hostname: dev.app.local\n", FILE).project.hostname,
      "dev.app.local",
    );
    assert.equal(parseConfig("", FILE).project.hostname, undefined);
    assert.match(
      invalid("project:\n  hostname: 'not a host'\n").message,
      /line 2, project\.hostname: expected a host name/,
    );
  });
});

describe("provider", () => {
  it("refuses vagrant and tart, saying vm runs Docker only, with the line", () => {
    assert.equal(
      invalid("version: 1\nprovider: vagrant\n").message,
      '/projects/demo/vm.yaml is invalid:\n  line 2, provider: vm runs environments on Docker only; vm 3.x\'s vagrant provider is not supported (write provider: docker, and a Docker image, Dockerfile or snapshot as vm.box) (got "vagrant")',
    );
    assert.match(
      invalid("provider: tart\n").message,
      /line 1, provider: vm runs environments on Docker only; vm 3\.x's tart provider/,
    );
    assert.match(
      invalid("provider: podman\n").message,
      /line 1, provider: expected "docker": vm runs environments on Docker only/,
    );
  });
});
