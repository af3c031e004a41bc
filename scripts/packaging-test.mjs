#!/usr/bin/env node
// The package as users install it: `npm pack`, check the tarball's contents, install it into two
// throwaway applications in a temporary folder and run them against DynamoDB (dynalite, started
// here on loopback):
//   - nest12-esm: NestJS 12, "type": "module", loads the package with `import`;
//   - nest11-cjs: NestJS 11, CommonJS, loads the (ESM-only) package with `require()`.
// Both are plain JavaScript (scripts/packaging-apps/) with decorators applied by hand, so no
// compile step stands between the tarball and Node; the package's types are then compiled against
// in the CommonJS app, as a classic `"module": "commonjs"` TypeScript app and a NodeNext one would.
// Exit code 0 only if every check passed.
//
//   npm run test:packaging
//
// The apps' dependencies come from the npm registry (through npm's cache; versions shared with
// this repository's lockfile where possible, so a CI run downloads little beyond NestJS 11).
// KEEP_PACKAGING_TMP=1 keeps the temporary folder for inspection.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import dynalite from 'dynalite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const appsSource = join(root, 'scripts', 'packaging-apps');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const installed = (name) =>
  JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

const log = (msg) => console.log(`[packaging] ${msg}`);
const timings = [];
async function step(name, fn) {
  const started = Date.now();
  log(`${name} ...`);
  const result = await fn();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  timings.push(`${name}: ${seconds} s`);
  log(`${name}: done in ${seconds} s`);
  return result;
}

/** Runs a command; resolves its output, rejects with the output when it exits non-zero. */
function run(cmd, args, options = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolveRun(output);
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} (in ${options.cwd ?? root}) failed with ${code ?? signal}:\n${output}`,
          ),
        );
    });
  });
}

/** What the tarball must and must not hold. */
function checkTarball(files) {
  const paths = files.map((f) => f.path).sort();
  const problems = [];
  const need = [
    'package.json',
    'README.md',
    'CHANGELOG.md',
    'LICENSE',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/index.js.map',
  ];
  for (const p of need) if (!paths.includes(p)) problems.push(`missing ${p}`);
  const exportsTypes = pkg.exports?.['.']?.types?.replace(/^\.\//, '');
  const exportsMain = pkg.exports?.['.']?.default?.replace(/^\.\//, '');
  for (const p of [exportsTypes, exportsMain]) {
    if (!p || !paths.includes(p))
      problems.push(`package.json "exports" points at ${p}, not in the tarball`);
  }
  for (const p of paths) {
    const allowed =
      ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md'].includes(p) ||
      (p.startsWith('dist/') && /\.(js|d\.ts|js\.map)$/.test(p));
    if (!allowed) problems.push(`unexpected file ${p}`);
  }
  // Every module ships with its declarations and its source map.
  for (const p of paths.filter((x) => x.startsWith('dist/') && x.endsWith('.js'))) {
    const base = p.slice(0, -3);
    if (!paths.includes(`${base}.d.ts`)) problems.push(`no ${base}.d.ts beside ${p}`);
    if (!paths.includes(`${p}.map`)) problems.push(`no ${p}.map beside ${p}`);
  }
  if (problems.length) throw new Error(`tarball contents:\n  ${problems.join('\n  ')}`);
  return paths;
}

/** A source map must carry its sources: lib/ is not published. */
function checkSourceMaps(tarball, work) {
  const dir = join(work, 'unpacked');
  mkdirSync(dir);
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const map = JSON.parse(readFileSync(join(dir, 'package', 'dist', 'index.js.map'), 'utf8'));
  if (!Array.isArray(map.sourcesContent) || map.sourcesContent.some((s) => typeof s !== 'string')) {
    throw new Error(
      'dist/index.js.map has no sourcesContent: the maps would point at unpublished files',
    );
  }
}

const apps = [
  {
    name: 'nest12-esm',
    type: 'module',
    main: 'main.mjs',
    dependencies: {
      '@nestjs/common': installed('@nestjs/common'),
      '@nestjs/core': installed('@nestjs/core'),
      '@nestjs/platform-express': installed('@nestjs/platform-express'),
    },
  },
  {
    name: 'nest11-cjs',
    type: 'commonjs',
    main: 'main.cjs',
    dependencies: {
      '@nestjs/common': '^11.0.0',
      '@nestjs/core': '^11.0.0',
      '@nestjs/platform-express': '^11.0.0',
    },
  },
];

async function installApp(app, work, tarball) {
  const dir = join(work, app.name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify(
      {
        name: `packaging-${app.name}`,
        private: true,
        type: app.type,
        dependencies: {
          ...app.dependencies,
          '@aws-sdk/client-dynamodb': installed('@aws-sdk/client-dynamodb'),
          'reflect-metadata': installed('reflect-metadata'),
          rxjs: installed('rxjs'),
          'nestjs-dynamo-cache': `file:${tarball}`,
        },
      },
      null,
      2,
    ),
  );
  for (const f of [app.main, 'exercise.cjs']) copyFileSync(join(appsSource, f), join(dir, f));
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--ignore-scripts',
      '--loglevel=error',
    ],
    { cwd: dir },
  );
  // Exits non-zero on a missing or unmet peer dependency.
  await run('npm', ['ls', '--omit=dev'], { cwd: dir });
  const nest = JSON.parse(
    readFileSync(join(dir, 'node_modules/@nestjs/core/package.json'), 'utf8'),
  );
  log(`${app.name}: installed @nestjs/core ${nest.version}, npm ls clean`);
  return dir;
}

/**
 * Compiles a file that imports every entry point under `"module": "commonjs"` (the classic
 * tsconfig, whose resolution ignores `exports`: the subpaths resolve through `typesVersions`) and
 * under `"module": "nodenext"`. `skipLibCheck`: the optional peers are not installed in the app.
 */
async function checkTypes(dir) {
  writeFileSync(
    join(dir, 'types-check.ts'),
    [
      "import { DynamoCacheModule } from 'nestjs-dynamo-cache';",
      "import type { DynamoCacheHealthIndicator } from 'nestjs-dynamo-cache/terminus';",
      "import type { DynamoCacheMetricsModule } from 'nestjs-dynamo-cache/otel';",
      "import type { RedisDynamoCacheBus } from 'nestjs-dynamo-cache/redis-bus';",
      'export type Used = [typeof DynamoCacheModule, DynamoCacheHealthIndicator, DynamoCacheMetricsModule, RedisDynamoCacheBus];',
      '',
    ].join('\n'),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const module of ['commonjs', 'nodenext']) {
    const config = join(dir, `tsconfig.${module}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: true,
          noEmit: true,
          target: 'es2022',
          module,
          types: [],
        },
        files: ['types-check.ts'],
      }),
    );
    await run(process.execPath, [tsc, '-p', config], { cwd: dir });
  }
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'nestjs-dynamo-cache-packaging-'));
  const server = dynalite({ createTableMs: 0 });
  let ok = false;
  try {
    await step('build', () => run('npm', ['run', 'build'], { cwd: root }));
    const tarball = await step('npm pack', async () => {
      const out = await run(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', work],
        { cwd: root },
      );
      const [info] = JSON.parse(out);
      const paths = checkTarball(info.files);
      const file = join(work, info.filename);
      checkSourceMaps(file, work);
      log(`${info.filename}: ${paths.length} files, ${(info.size / 1024).toFixed(1)} kB packed`);
      return file;
    });
    const dirs = await step('install the tarball into both apps', () =>
      Promise.all(apps.map((app) => installApp(app, work, tarball))),
    );
    await step('types of every entry point, as a CommonJS and a NodeNext TypeScript app', () =>
      checkTypes(dirs[apps.findIndex((app) => app.type === 'commonjs')]),
    );
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${server.address().port}`;
    // The ESM app also runs under every Node binary in PACKAGING_ESM_NODES (colon-separated,
    // e.g. from scripts/with-node.mjs); the CommonJS one stays on this (the oldest) Node.
    const extraNodes = (process.env.PACKAGING_ESM_NODES ?? '').split(':').filter(Boolean);
    const runs = apps.flatMap((app, i) =>
      (app.type === 'module' ? [process.execPath, ...extraNodes] : [process.execPath]).map(
        (node) => ({ app, dir: dirs[i], node }),
      ),
    );
    for (const [n, { app, dir, node }] of runs.entries()) {
      const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
      await step(`run ${app.name} on Node ${version}`, async () => {
        const out = await run(node, [app.main], {
          cwd: dir,
          env: {
            ...process.env,
            NODE_OPTIONS: '',
            ENDPOINT: endpoint,
            // A table per run: each run starts cold.
            TABLE: `packaging-${app.name}-${n}`,
          },
        });
        process.stdout.write(`${out.trimEnd().replace(/^/gm, `  ${app.name} | `)}\n`);
      });
    }
    ok = true;
  } finally {
    await new Promise((r) => (server.listening ? server.close(() => r()) : r()));
    if (ok && !process.env.KEEP_PACKAGING_TMP) rmSync(work, { recursive: true, force: true });
    else log(`temporary folder kept: ${work}`);
  }
  log(`timings: ${timings.join('; ')}`);
  log(
    `package ${pkg.name}@${pkg.version}: OK in the NestJS 12 ESM app and the NestJS 11 CommonJS app`,
  );
}

main().catch((err) => {
  console.error(`[packaging] FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
