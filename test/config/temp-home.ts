/** Test helpers for src/config: real temporary state directories and the built modules for child processes. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Creates a fresh temporary directory (mode 0700, as mkdtemp makes it) to use as CMDOP_HOME. */
export async function createTempHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cmdop-config-test-'));
}

/** Removes a temporary directory made by {@link createTempHome}. */
export async function removeTempHome(home: string): Promise<void> {
  await rm(home, { recursive: true, force: true });
}

/**
 * The absolute path of a built src/config module, for child processes to import. Fails (never
 * skips) when dist/ is missing or older than the source, saying to run the build.
 */
export function builtConfigModule(name: string): string {
  const built = join(repoRoot, 'dist', 'src', 'config', `${name}.js`);
  if (!existsSync(built)) {
    throw new Error(`${built} does not exist: these tests run child processes against the build. Run \`npm run build\` first.`);
  }
  // The child imports the whole layer; every module of it must be built from the current source.
  const sourceDir = join(repoRoot, 'src', 'config');
  for (const file of readdirSync(sourceDir).filter((f) => f.endsWith('.ts'))) {
    const source = join(sourceDir, file);
    const output = join(repoRoot, 'dist', 'src', 'config', file.replace(/\.ts$/, '.js'));
    if (!existsSync(output) || statSync(source).mtimeMs > statSync(output).mtimeMs) {
      throw new Error(`${output} is missing or older than ${source}: run \`npm run build\` first.`);
    }
  }
  return built;
}

/** Writes `text` to `file` with exactly `mode` (umask aside), as a user editing it would leave it. */
export async function putFile(file: string, text: string, mode = 0o600): Promise<void> {
  await writeFile(file, text);
  await chmod(file, mode);
}

/** Awaits a promise that must reject with a CmdopError, and returns the error. */
export async function failure(promise: Promise<unknown>): Promise<CmdopError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CmdopError);
  return error as CmdopError;
}
