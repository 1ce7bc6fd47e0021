import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { Label, extraLabels, managedLabels } from "./labels.ts";

function refused(value: string): VmError {
  try {
    extraLabels({ VM_LABELS: value });
  } catch (error) {
    assert.ok(error instanceof VmError, `expected a VmError, got ${String(error)}`);
    assert.equal(error.code, "VM_LABELS_INVALID");
    assert.equal(error.exitCode, 2);
    return error;
  }
  assert.fail(`expected VM_LABELS=${value} to be refused`);
}

describe("extraLabels", () => {
  it("returns no labels when VM_LABELS is unset, empty or blank", () => {
    assert.deepEqual(extraLabels({}), {});
    assert.deepEqual(extraLabels({ VM_LABELS: "" }), {});
    assert.deepEqual(extraLabels({ VM_LABELS: "   " }), {});
  });

  it("reads comma-separated key=value pairs, trimming spaces", () => {
    assert.deepEqual(extraLabels({ VM_LABELS: " ci.job = 42 , team=infra" }), {
      "ci.job": "42",
      team: "infra",
    });
  });

  it("keeps '=' inside a value and allows an empty value", () => {
    assert.deepEqual(extraLabels({ VM_LABELS: "query=a=b,empty=" }), { query: "a=b", empty: "" });
  });

  it("lets a later pair with the same key win", () => {
    assert.deepEqual(extraLabels({ VM_LABELS: "a=1,a=2" }), { a: "2" });
  });

  it("refuses a pair without '='", () => {
    assert.equal(refused("a=1,oops").message, "VM_LABELS entry 'oops' is not a key=value pair vm may add");
  });

  it("refuses a pair with an empty key", () => {
    refused("=value");
    refused(" =value");
  });

  it("skips empty entries, such as a trailing comma", () => {
    assert.deepEqual(extraLabels({ VM_LABELS: "a=1,,b=2," }), { a: "1", b: "2" });
  });

  it("refuses every one of vm's own label keys", () => {
    for (const key of Object.values(Label)) {
      const error = refused(`ok=1,${key}=x`);
      assert.equal(error.message, `VM_LABELS entry '${key}=x' is not a key=value pair vm may add`);
      assert.match(error.hint ?? "", /reserved/);
    }
  });

  it("allows other keys under dev.vm.", () => {
    assert.deepEqual(extraLabels({ VM_LABELS: "dev.vm.run=7" }), { "dev.vm.run": "7" });
  });
});

describe("managedLabels", () => {
  it("adds the managed and role labels to the extra and more labels", () => {
    assert.deepEqual(managedLabels("environment", { "ci.job": "1" }, { [Label.project]: "demo" }), {
      "ci.job": "1",
      "dev.vm.project": "demo",
      "dev.vm.managed": "true",
      "dev.vm.role": "environment",
    });
  });

  it("lets `more` override `extra`, and never lets either override managed or role", () => {
    assert.deepEqual(
      managedLabels(
        "snapshot",
        { k: "extra", "dev.vm.managed": "no", "dev.vm.role": "box" },
        { k: "more", "dev.vm.role": "volume" },
      ),
      { k: "more", "dev.vm.managed": "true", "dev.vm.role": "snapshot" },
    );
  });

  it("works with no more labels", () => {
    assert.deepEqual(managedLabels("volume", {}), { "dev.vm.managed": "true", "dev.vm.role": "volume" });
  });
});
