import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExitCode } from "../../errors.ts";
import { MediaType, sha256Digest } from "../../registry/oci.ts";
import { ENTRY } from "../../snapshot-file/format.ts";
import { enforceSignature, parsePublicKey, type SignaturePolicy } from "../../snapshot-file/signing.ts";
import { throwsVm } from "../../snapshot-file/testing/assert.ts";
import { newKey } from "../../snapshot-file/testing/keys.ts";
import { sampleMetadata } from "../../snapshot-file/testing/snapshot.ts";
import { verifyContents } from "../../snapshot-file/verify.ts";
import {
  ARTIFACT_TYPE,
  artifactContents,
  artifactEntries,
  buildArtifact,
  type ArtifactInput,
} from "./artifact.ts";

const subject = { mediaType: MediaType.dockerManifest, digest: sha256Digest(Buffer.from("image")), size: 5 };

function input(overrides: Partial<ArtifactInput> = {}): ArtifactInput {
  return {
    name: "vibe-base",
    metadata: sampleMetadata(),
    subject,
    layers: [`sha256:${"a".repeat(64)}`],
    engine: { version: "26.1.5", image_store: "containerd" },
    signer: undefined,
    annotations: { "org.opencontainers.image.created": "2026-12-04T00:00:00Z" },
    ...overrides,
  };
}

/** The artifact's entries as pull reads them: blob bytes by title, each found by its digest. */
function entriesOf(artifact: ReturnType<typeof buildArtifact>): Map<string, Buffer> {
  const document = JSON.parse(artifact.bytes.toString("utf8")) as Parameters<typeof artifactEntries>[0];
  const blobs = new Map(artifact.blobs.map((b) => [b.digest, b.data]));
  return new Map(artifactEntries(document).map((e) => [e.path, blobs.get(e.descriptor.digest)!]));
}

const open: SignaturePolicy = { require: false, trusted: new Map(), sources: [] };

describe("vm's metadata as an OCI 1.1 artifact", () => {
  it("is an artifact manifest of vm's type, with an empty config, the image as subject, and one blob per entry", () => {
    const artifact = buildArtifact(input());
    const document = JSON.parse(artifact.bytes.toString("utf8")) as Record<string, unknown>;
    assert.equal(document.mediaType, MediaType.ociManifest);
    assert.equal(document.artifactType, ARTIFACT_TYPE);
    assert.deepEqual(document.config, {
      mediaType: MediaType.ociEmpty,
      digest: sha256Digest(Buffer.from("{}")),
      size: 2,
    });
    assert.deepEqual(document.subject, subject);
    assert.deepEqual(
      [...entriesOf(artifact).keys()],
      [ENTRY.manifest, ENTRY.versions, ENTRY.packages, ENTRY.buildInfo, ENTRY.readme, ENTRY.checksums],
    );
    assert.equal(artifact.digest, sha256Digest(artifact.bytes));
    for (const blob of artifact.blobs) assert.equal(blob.digest, sha256Digest(blob.data));
  });

  it("is the same artifact when the same snapshot is pushed again (no push time inside)", () => {
    assert.equal(buildArtifact(input()).digest, buildArtifact(input()).digest);
  });

  it("passes the file format's checks as it was written, and names the image's config digest and layers", () => {
    const artifact = buildArtifact(input());
    const contents = artifactContents(entriesOf(artifact));
    verifyContents(contents);
    assert.equal(contents.manifest.image_digest, sampleMetadata().image_id);
    assert.deepEqual(contents.manifest.layers, [`sha256:${"a".repeat(64)}`]);
    assert.deepEqual(contents.manifest.streamed, []);
    assert.equal(enforceSignature(open, contents.signatureRaw, contents.checksumsRaw, undefined), undefined);
  });

  it("refuses a changed document, and a changed manifest.json even when its own entries still match", () => {
    const entries = entriesOf(buildArtifact(input()));
    const changed = new Map(entries);
    changed.set(ENTRY.readme, Buffer.from("# something else\n"));
    throwsVm(() => verifyContents(artifactContents(changed)), {
      code: "ARCHIVE_DIGEST_MISMATCH",
      exitCode: ExitCode.integrity,
      message: /docs\/README\.md/,
    });
    const manifest = JSON.parse(entries.get(ENTRY.manifest)!.toString("utf8")) as Record<string, unknown>;
    manifest.image_digest = `sha256:${"b".repeat(64)}`;
    const forged = new Map(entries);
    forged.set(ENTRY.manifest, Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
    throwsVm(() => verifyContents(artifactContents(forged)), {
      code: "ARCHIVE_DIGEST_MISMATCH",
      exitCode: ExitCode.integrity,
      message: /manifest\.json/,
    });
  });

  it("carries a signature over checksums.json that the signature policy accepts from a trusted key only", () => {
    const key = newKey("ci@acme");
    const publicKey = parsePublicKey(key.publicLine)!;
    const signer = {
      privateKey: key.privateKey,
      publicLine: key.publicLine,
      fingerprint: publicKey.fingerprint,
    };
    const artifact = buildArtifact(input({ signer }));
    const entries = entriesOf(artifact);
    assert.ok(entries.has(ENTRY.signature));
    const contents = artifactContents(entries);
    verifyContents(contents);
    assert.equal(contents.manifest.signed_by, publicKey.fingerprint);
    const trusted: SignaturePolicy = {
      require: true,
      trusted: new Map([[publicKey.fingerprint, publicKey]]),
      sources: [],
    };
    assert.equal(
      enforceSignature(trusted, contents.signatureRaw, contents.checksumsRaw, contents.manifest.signed_by)
        ?.fingerprint,
      publicKey.fingerprint,
    );
    throwsVm(
      () =>
        enforceSignature(
          { ...trusted, trusted: new Map() },
          contents.signatureRaw,
          contents.checksumsRaw,
          contents.manifest.signed_by,
        ),
      { code: "SIGNATURE_UNTRUSTED", exitCode: ExitCode.integrity, message: /not a trusted key/ },
    );
    // The signature removed: the manifest still says who signed it.
    const stripped = new Map(entries);
    stripped.delete(ENTRY.signature);
    const unsigned = artifactContents(stripped);
    throwsVm(
      () => enforceSignature(open, unsigned.signatureRaw, unsigned.checksumsRaw, unsigned.manifest.signed_by),
      {
        code: "SIGNATURE_INVALID",
        exitCode: ExitCode.integrity,
        message: /signature\.json is missing/,
      },
    );
  });

  it("refuses artifacts of another type, unknown or repeated entries, and oversized ones", () => {
    const document = JSON.parse(buildArtifact(input()).bytes.toString("utf8")) as Parameters<
      typeof artifactEntries
    >[0];
    const invalid = {
      code: "REGISTRY_MANIFEST_INVALID",
      exitCode: ExitCode.integrity,
      message: /not one vm can read/,
    };
    throwsVm(() => artifactEntries({ ...document, artifactType: "application/vnd.example" }), {
      ...invalid,
      message: /artifactType is application\/vnd\.example/,
    });
    const layer = document.layers[1]!;
    throwsVm(
      () =>
        artifactEntries({
          ...document,
          layers: [
            ...document.layers,
            { ...layer, annotations: { "org.opencontainers.image.title": "../../etc/passwd" } },
          ],
        }),
      { ...invalid, message: /does not know/ },
    );
    throwsVm(() => artifactEntries({ ...document, layers: [...document.layers, layer] }), {
      ...invalid,
      message: /twice/,
    });
    throwsVm(() => artifactEntries({ ...document, layers: [{ ...layer, size: 1024 ** 3 }] }), {
      ...invalid,
      message: /more than vm reads/,
    });
  });

  it("refuses metadata that lists streamed entries other than the image (volumes do not travel)", () => {
    const entries = entriesOf(buildArtifact(input()));
    const manifest = JSON.parse(entries.get(ENTRY.manifest)!.toString("utf8")) as Record<string, unknown>;
    manifest.streamed = [ENTRY.image, "volumes/data.tar"];
    entries.set(ENTRY.manifest, Buffer.from(JSON.stringify(manifest)));
    throwsVm(() => artifactContents(entries), {
      code: "REGISTRY_MANIFEST_INVALID",
      exitCode: ExitCode.integrity,
      message: /lists entries a registry snapshot does not carry/,
    });
  });
});
