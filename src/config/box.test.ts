import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { describeBox, parseBox } from "./box.ts";

const WHERE = "/p/vm.yaml";

describe("parseBox", () => {
  let base: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), "vm-box-"));
    writeFileSync(join(base, "Dockerfile"), "FROM scratch\n");
    writeFileSync(join(base, "Dockerfile.dev"), "FROM scratch\n");
    writeFileSync(join(base, "Dockerfile-ci"), "FROM scratch\n");
    writeFileSync(join(base, "app.dockerfile"), "FROM scratch\n");
    mkdirSync(join(base, "docker"));
    writeFileSync(join(base, "docker", "Dockerfile.dev"), "FROM scratch\n");
    mkdirSync(join(base, "Dockerfile.folder"));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  describe("string that names a Dockerfile", () => {
    it("treats ./x as a Dockerfile relative to baseDir, with its folder as context", () => {
      assert.deepEqual(parseBox("./docker/Dockerfile.dev", base, WHERE), {
        kind: "dockerfile",
        dockerfile: join(base, "docker", "Dockerfile.dev"),
        context: join(base, "docker"),
        args: {},
      });
    });

    it("treats ./x as a Dockerfile even when the file does not exist", () => {
      assert.deepEqual(parseBox("./missing", base, WHERE), {
        kind: "dockerfile",
        dockerfile: join(base, "missing"),
        context: base,
        args: {},
      });
    });

    it("treats ../x as a Dockerfile in the parent folder", () => {
      assert.deepEqual(parseBox("../shared/Dockerfile", "/a/b", WHERE), {
        kind: "dockerfile",
        dockerfile: "/a/shared/Dockerfile",
        context: "/a/shared",
        args: {},
      });
    });

    it("treats an absolute path as a Dockerfile", () => {
      assert.deepEqual(parseBox("/opt/boxes/Dockerfile", base, WHERE), {
        kind: "dockerfile",
        dockerfile: "/opt/boxes/Dockerfile",
        context: "/opt/boxes",
        args: {},
      });
    });

    it("treats a bare Dockerfile-like name as a Dockerfile when that file exists in baseDir", () => {
      for (const name of ["Dockerfile", "Dockerfile.dev", "Dockerfile-ci", "app.dockerfile"]) {
        assert.deepEqual(
          parseBox(name, base, WHERE),
          { kind: "dockerfile", dockerfile: join(base, name), context: base, args: {} },
          name,
        );
      }
    });

    it("treats a bare path whose last part is a Dockerfile name as a Dockerfile when it exists", () => {
      assert.deepEqual(parseBox("docker/Dockerfile.dev", base, WHERE), {
        kind: "dockerfile",
        dockerfile: join(base, "docker", "Dockerfile.dev"),
        context: join(base, "docker"),
        args: {},
      });
    });

    it("trims spaces around the value", () => {
      assert.deepEqual(parseBox("  ./Dockerfile  ", base, WHERE), {
        kind: "dockerfile",
        dockerfile: join(base, "Dockerfile"),
        context: base,
        args: {},
      });
    });
  });

  describe("string that is an image reference", () => {
    it("treats a bare Dockerfile-like name as an image when no such file exists", () => {
      const empty = mkdtempSync(join(tmpdir(), "vm-box-empty-"));
      try {
        assert.deepEqual(parseBox("Dockerfile.dev", empty, WHERE), { kind: "image", ref: "Dockerfile.dev" });
        assert.deepEqual(parseBox("foo.dockerfile", empty, WHERE), { kind: "image", ref: "foo.dockerfile" });
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });

    it("treats a Dockerfile-like name that is a folder, not a file, as an image", () => {
      assert.deepEqual(parseBox("Dockerfile.folder", base, WHERE), {
        kind: "image",
        ref: "Dockerfile.folder",
      });
    });

    it("treats a bare name that is not Dockerfile-like as an image even if such a file exists", () => {
      writeFileSync(join(base, "ubuntu"), "not a dockerfile\n");
      assert.deepEqual(parseBox("ubuntu", base, WHERE), { kind: "image", ref: "ubuntu" });
    });

    it("treats name:tag and registry:port/path:tag as images", () => {
      assert.deepEqual(parseBox("debian:bookworm", base, WHERE), { kind: "image", ref: "debian:bookworm" });
      assert.deepEqual(parseBox("registry:5000/a/b:tag", base, WHERE), {
        kind: "image",
        ref: "registry:5000/a/b:tag",
      });
      assert.deepEqual(parseBox("ghcr.io/acme/dev@sha256:abc", base, WHERE), {
        kind: "image",
        ref: "ghcr.io/acme/dev@sha256:abc",
      });
    });
  });

  describe("snapshot", () => {
    it("treats @name as a snapshot", () => {
      assert.deepEqual(parseBox("@vibe-base", base, WHERE), { kind: "snapshot", name: "vibe-base" });
      assert.deepEqual(parseBox("@v1.2_x", base, WHERE), { kind: "snapshot", name: "v1.2_x" });
    });

    it("refuses a snapshot name with capitals or spaces as CONFIG_INVALID, exit 3", () => {
      assert.throws(
        () => parseBox("@Bad Name", base, WHERE),
        (error: unknown) => {
          assert.ok(error instanceof VmError);
          assert.equal(error.code, "CONFIG_INVALID");
          assert.equal(error.exitCode, 3);
          assert.equal(error.message, "/p/vm.yaml: vm.box '@Bad Name' is not a valid snapshot name");
          assert.match(error.hint ?? "", /@vibe-base/);
          return true;
        },
      );
    });

    it("refuses an empty snapshot name, one starting with '-', and one over 128 characters", () => {
      for (const value of ["@", "@-x", `@${"a".repeat(129)}`]) {
        assert.throws(() => parseBox(value, base, WHERE), { code: "CONFIG_INVALID" }, value);
      }
      assert.deepEqual(parseBox(`@${"a".repeat(128)}`, base, WHERE), {
        kind: "snapshot",
        name: "a".repeat(128),
      });
    });
  });

  describe("object form", () => {
    it("resolves the dockerfile against baseDir and defaults the context to its folder", () => {
      assert.deepEqual(parseBox({ dockerfile: "docker/Dockerfile.dev" }, "/proj", WHERE), {
        kind: "dockerfile",
        dockerfile: "/proj/docker/Dockerfile.dev",
        context: "/proj/docker",
        args: {},
      });
    });

    it("resolves an explicit context against baseDir, not against the Dockerfile", () => {
      assert.deepEqual(parseBox({ dockerfile: "docker/Dockerfile", context: "." }, "/proj", WHERE), {
        kind: "dockerfile",
        dockerfile: "/proj/docker/Dockerfile",
        context: "/proj",
        args: {},
      });
      assert.deepEqual(parseBox({ dockerfile: "/abs/Dockerfile", context: "../ctx" }, "/proj", WHERE), {
        kind: "dockerfile",
        dockerfile: "/abs/Dockerfile",
        context: "/ctx",
        args: {},
      });
    });

    it("stringifies number and boolean build args", () => {
      const box = parseBox({ dockerfile: "Dockerfile", args: { N: 22, B: false, S: "x" } }, "/proj", WHERE);
      assert.deepEqual(box, {
        kind: "dockerfile",
        dockerfile: "/proj/Dockerfile",
        context: "/proj",
        args: { N: "22", B: "false", S: "x" },
      });
    });
  });
});

describe("describeBox", () => {
  it("says what kind of box it is", () => {
    assert.equal(describeBox({ kind: "image", ref: "debian:bookworm" }), "image debian:bookworm");
    assert.equal(describeBox({ kind: "snapshot", name: "base" }), "snapshot @base");
    assert.equal(
      describeBox({ kind: "dockerfile", dockerfile: "/p/Dockerfile", context: "/p", args: {} }),
      "Dockerfile /p/Dockerfile",
    );
  });
});
