/** Test support: assertions on the VmError a refusal must be, not only that something threw. */
import assert from "node:assert/strict";
import { VmError } from "../../errors.ts";

export interface Expected {
  code: string;
  exitCode: number;
  /** Every pattern must match the message (it names the entry, the digests, ...). */
  message: RegExp | RegExp[];
}

export function checkVmError(error: unknown, expected: Expected): VmError {
  assert.ok(error instanceof VmError, `expected a VmError ${expected.code}, got ${String(error)}`);
  assert.equal(error.code, expected.code, `code of: ${error.message}`);
  assert.equal(error.exitCode, expected.exitCode, `exit code of: ${error.message}`);
  for (const pattern of [expected.message].flat()) assert.match(error.message, pattern);
  return error;
}

export async function rejectsVm(promise: Promise<unknown>, expected: Expected): Promise<VmError> {
  try {
    await promise;
  } catch (error) {
    return checkVmError(error, expected);
  }
  assert.fail(`expected ${expected.code}, but it succeeded`);
}

export function throwsVm(fn: () => unknown, expected: Expected): VmError {
  try {
    fn();
  } catch (error) {
    return checkVmError(error, expected);
  }
  assert.fail(`expected ${expected.code}, but it succeeded`);
}
