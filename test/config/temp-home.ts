/** Test helpers for src/config: real temporary state directories and the built modules for child processes. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
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
