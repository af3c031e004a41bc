import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Child-process fixtures import dist/: refuse to test a build older than the source. */
export function assertFreshBuild(): void {
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((e) =>
        e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
      ),
    );
  let built = 0;
  try {
    built = statSync(join(root, 'dist', 'index.js')).mtimeMs;
  } catch {
    // missing: reported below
  }
  if (built < newest(join(root, 'lib'))) {
    throw new Error(
      'dist/ is missing or older than lib/: run `npm run build` first (npm test does)',
    );
  }
}
