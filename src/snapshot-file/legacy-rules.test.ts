/**
 * vm 3.x snapshot files, made without an engine the way vm 3.x laid them out (the folder "./" first, then
 * images/base.tar, compose/ files and the two documents in no fixed order). Their entries must be regular
 * files, like a vm snapshot file's: a link or a device where a compose file should be is drained unread
 * like the file it stands for, so only the entry check itself can refuse it. And the image must be the one
 * metadata.json records, the one digest such a file carries.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { rejectsVm } from "./testing/assert.ts";
import { dockerSave } from "./testing/docker-save.ts";
import { compress, verifyBytes } from "./testing/tamper.ts";
import { tarBytes, type ItemType, type TarItem } from "./testing/tar.ts";

const COMPOSE: TarItem = { name: "compose/vm.yaml", data: "project:\n  name: proj\n" };

/** A vm 3.x project snapshot file of one image, with `compose` standing for compose/vm.yaml. */
function vm3File(compose: TarItem = COMPOSE, recordedId?: string): Buffer {
  const image = dockerSave();
  const metadata = {
    name: "old-dev",
    created_at: "2025-10-30T20:27:20.123456789Z",
    description: "snapshot of proj",
    project_name: "proj",
    project_dir: "/home/me/proj",
    git_commit: "0123456789abcdef0123456789abcdef01234567",
    git_dirty: false,
    git_branch: "main",
    services: [
      {
        name: "dev",
        image_tag: "vm-snapshot/proj/dev:old-dev",
        image_file: "base.tar",
        image_digest: recordedId ?? image.configDigest,
      },
    ],
    volumes: [],
    compose_file: "docker-compose.yml",
    vm_config_file: "vm.yaml",
    total_size_bytes: image.tar.length,
  };
  const manifest = {
    created_at: metadata.created_at,
    description: metadata.description,
    is_global: false,
    project_name: "proj",
    services: 1,
    snapshot_name: "old-dev",
    total_size_bytes: image.tar.length,
    version: "1.0",
    volumes: 0,
  };
  return compress(
    tarBytes([
      { name: "./", type: "directory" },
      { name: "images/", type: "directory" },
      { name: "images/base.tar", data: image.tar },
      { name: "compose/", type: "directory" },
      compose,
      { name: "metadata.json", data: JSON.stringify(metadata, null, 2) },
      { name: "manifest.json", data: JSON.stringify(manifest, null, 2) },
    ]),
    "gzip",
  );
}

const verify = verifyBytes;

describe("vm 3.x snapshot files: the checks such a file allows", () => {
  it("verifies the file with its compose file as a regular file", async () => {
    const result = await verify(vm3File());
    assert.equal(result.kind, "vm3");
    if (result.kind === "vm3") assert.equal(result.identity.configDigest, dockerSave().configDigest);
  });

  it("refuses a symlink, a hard link, a FIFO, a device or a contiguous file where a compose file should be", async () => {
    const cases: [ItemType, string][] = [
      ["symlink", "symlink"],
      ["link", "link"],
      ["fifo", "fifo"],
      ["char", "character-device"],
      ["contiguous", "contiguous-file"],
    ];
    for (const [type, kind] of cases) {
      await rejectsVm(verify(vm3File({ name: "compose/vm.yaml", type, linkname: "/etc/passwd" })), {
        code: "ARCHIVE_INVALID",
        exitCode: ExitCode.integrity,
        message: new RegExp(
          `^Entry 'compose/vm\\.yaml' is a ${kind}; snapshot files hold only regular files$`,
        ),
      });
    }
  });

  it("refuses an image that is not the one metadata.json records, naming both IDs", async () => {
    const recorded = `sha256:${"c".repeat(64)}`;
    await rejectsVm(verify(vm3File(COMPOSE, recorded)), {
      code: "ARCHIVE_DIGEST_MISMATCH",
      exitCode: ExitCode.integrity,
      message: new RegExp(
        `^images/base\\.tar is not the image metadata\\.json records: expected image ID ${recorded}, the file's image is ${dockerSave().configDigest}$`,
      ),
    });
  });
});
