import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { errors } from '@amlsim/core';
import type { ImageFile } from '@amlsim/docker';
import { dieWithParent } from '../runtime/die-with-parent';
import { sessionTempPath } from '../runtime/session-temp';

/**
 * Run environments (S8.3 managed step 1, "build the Docker image if needed"; S8.5 an image's
 * dependencies): a list of npm package specs installed ON THE HOST with npm from the registry
 * this machine reaches, then copied into the image as `/node_modules`, where both `require()`
 * and `import` of a script anywhere in the container find them (Node looks for node_modules
 * from the script's directory up to `/`). The container itself keeps no network.
 *
 * An installed tree is kept in the data dir by the digest of its spec list
 * (`<data dir>/environments/<digest>/`), so the same list is installed once per data dir and a
 * later session does not ask the registry again. npm runs in a temp dir of the session
 * (`amlsim-<session>-npm-…`, swept if the simulator dies), with `--ignore-scripts`: no
 * package's code runs on the host.
 */

/** Bump when the way environments are installed changes, so old trees are not reused for a new recipe. */
const RECIPE = 'npm-environment/1';
/** Where an environment's packages go in an image: the root's node_modules, found from any script path. */
export const ENVIRONMENT_IMAGE_DIR = '/node_modules';
/** Where a run's environment build log is kept, beside its other logs (as the platform's azureml-logs/20_image_build_log.txt). */
export const RUN_BUILD_LOG = 'azureml-logs/20_image_build_log.txt';
/** An npm install that takes longer than this is stopped and the environment fails. */
const NPM_TIMEOUT_MS = 5 * 60_000;
const LOG_LIMIT = 256 * 1024;

/** What a driver reports of the environment it put into an image (RunImagePrepared, ImageBuilt). */
export type EnvironmentReport = Pick<PreparedEnvironment, 'digest' | 'packages' | 'source'>;

/** An environment ready to be put into an image. */
export type PreparedEnvironment = {
  /** `sha256:<hex>` of the recipe and the sorted spec list: the cache key. */
  digest: string;
  /** The specs as declared, sorted and without repeats. */
  specs: string[];
  /** Every package installed, `name@version`, sorted (transitive ones too). */
  packages: string[];
  /** `registry`: npm ran now; `cache`: the data dir's tree installed before was used, npm did not run. */
  source: 'registry' | 'cache';
  /** npm's output (no secrets, no host paths), what `prepare` reports to its caller's log. */
  log: string;
  /** The host directory holding `node_modules/`. */
  dir: string;
};

// npm's package-name rules (validate-npm-package-name): lowercase, URL-safe, no leading '.', '_' or '-'.
const NAME = '(?:@[a-z0-9~][a-z0-9._~-]*\\/)?[a-z0-9~][a-z0-9._~-]*';
// A version, tag or range: no ':', '/', '\\' or '#', so no URL, git, file: or npm: alias can name another source.
const RANGE = '[0-9A-Za-z.^~<>=|*+_ -]+';
const SPEC = new RegExp(`^(${NAME})(?:@(${RANGE}))?$`);
const PIP = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(===|==|>=|<=|~=|!=|<|>)\s*([^\s,;]+)?/;

/**
 * Why `spec` is not a registry package spec npm may install, or undefined when it is one.
 * A pip requirement (`numpy==1.26`) is not translated: the message names the npm spelling.
 */
export function dependencySpecProblem(spec: string): string | undefined {
  if (spec.length === 0 || spec.length > 214 + 64) return 'it is empty or too long';
  const pip = PIP.exec(spec);
  if (pip && !SPEC.test(spec)) {
    const version = pip[3]?.replace(/^=+/, '');
    return `it looks like a pip requirement; this simulator's scripts run on Node.js, so environments take npm specs (write '${pip[1]!.toLowerCase()}${version ? `@${version}` : ''}' for an npm package of that name)`;
  }
  if (/^[a-z+]+:|\/\/|^[./~]|\\/.test(spec)) return 'URLs, git, file and alias specs are not installed (only packages of the registry, by name)';
  const m = SPEC.exec(spec);
  if (!m) return /[A-Z]/.test(spec.split('@').find(Boolean) ?? '') ? 'npm package names are lowercase' : 'expected name, name@version or name@range';
  if (m[1]!.length > 214) return 'the package name is longer than 214 characters';
  return undefined;
}

/** @throws SimError BadRequest naming the first dependency that is not an npm spec (S8.3, S8.5). */
export function checkDependencies(specs: readonly string[]): void {
  for (const spec of specs) {
    const problem = dependencySpecProblem(spec);
    if (problem) throw errors.invalidDependency(spec, problem);
  }
}

/** The package a spec names: `ms@2.1.3` → `ms`, `@scope/x@^1` → `@scope/x`. */
export const packageOfSpec = (spec: string): string => SPEC.exec(spec)?.[1] ?? spec;

/** The cache key of a spec list: order and repeats do not matter. */
export function environmentDigest(specs: readonly string[]): string {
  const sorted = [...new Set(specs)].sort();
  return `sha256:${createHash('sha256').update(JSON.stringify({ recipe: RECIPE, specs: sorted })).digest('hex')}`;
}

/**
 * Installs environments with npm, and keeps them by digest under `root` (the data dir's
 * `environments/`, mode 0700). One store per driver; the same list asked for twice at once is
 * installed once.
 */
export class EnvironmentStore {
  /** How many times npm was run (tests: a cached environment runs none). */
  npmRuns = 0;
  /** Installs under way by digest: a second caller waits for the first, and gets its log and its outcome. */
  private readonly pending = new Map<string, Promise<{ log: string; prepared?: PreparedEnvironment; error?: unknown }>>();
  private swept = false;

  constructor(
    private readonly root: string,
    private readonly options: { npm?: string; timeoutMs?: number } = {},
  ) {}

  /**
   * The environment of `specs`, from the cache or installed now in a temp dir of `session`.
   * @throws SimError BadRequest for a spec that is not an npm spec; EnvironmentBuildFailed
   *   naming the package npm could not install (the temp dir is removed, nothing is cached).
   *   `onLog` gets npm's output in both cases, before the throw.
   */
  async prepare(session: string, specs: readonly string[], onLog?: (log: string) => void): Promise<PreparedEnvironment> {
    checkDependencies(specs);
    const digest = environmentDigest(specs);
    let job = this.pending.get(digest);
    if (!job) {
      let log = '';
      job = this.resolve(session, digest, [...new Set(specs)].sort(), (l) => (log = l))
        .then(
          (prepared) => ({ log, prepared }),
          (error: unknown) => ({ log, error }),
        )
        .finally(() => this.pending.delete(digest));
      this.pending.set(digest, job);
    }
    const outcome = await job;
    if (outcome.log) onLog?.(outcome.log);
    if (outcome.error !== undefined) throw outcome.error;
    return outcome.prepared!;
  }

  private dirOf(digest: string): string {
    return join(this.root, digest.replace(/^sha256:/, ''));
  }

  private async resolve(session: string, digest: string, specs: string[], onLog?: (log: string) => void): Promise<PreparedEnvironment> {
    this.sweepStaging();
    const cached = this.cached(digest, specs);
    if (cached) {
      onLog?.(cached.log);
      return cached;
    }
    const tmp = sessionTempPath(session, 'npm', randomBytes(4).toString('hex'));
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    try {
      writeFileSync(join(tmp, 'package.json'), `${JSON.stringify({ name: 'amlsim-environment', version: '0.0.0', private: true }, null, 2)}\n`);
      const args = ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--omit=dev', '--no-bin-links', '--no-package-lock', '--logs-max=0', '--loglevel=http', '--', ...specs];
      this.npmRuns++;
      const { code, output } = await runNpm(this.options.npm ?? 'npm', args, tmp, this.options.timeoutMs ?? NPM_TIMEOUT_MS);
      const log = `$ npm ${args.join(' ')}\n${cleanLog(output, tmp)}`;
      if (code !== 0) {
        onLog?.(log);
        const { reason, pkg } = npmFailure(output, specs, code);
        throw errors.environmentBuildFailed(reason, pkg);
      }
      const packages = installedPackages(join(tmp, 'node_modules'));
      const full = `${log}\ninstalled ${packages.length} package${packages.length === 1 ? '' : 's'}: ${packages.join(', ')}\n`;
      const dir = this.keep(digest, tmp, { specs, packages, log: full });
      onLog?.(full);
      return { digest, specs, packages, source: 'registry', log: full, dir };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** A tree kept before (by this or an earlier session): the registry is not asked again. */
  private cached(digest: string, specs: string[]): PreparedEnvironment | undefined {
    const dir = this.dirOf(digest);
    let meta: { specs: string[]; packages: string[]; log: string };
    try {
      meta = JSON.parse(readFileSync(join(dir, 'environment.json'), 'utf8')) as typeof meta;
    } catch {
      return undefined;
    }
    if (JSON.stringify(meta.specs) !== JSON.stringify(specs) || !existsSync(join(dir, 'node_modules'))) return undefined;
    const log = `environment ${digest} was installed before: its packages are taken from the data dir's cache (npm is not run)\n${meta.log}`;
    return { digest, specs, packages: meta.packages, source: 'cache', log, dir };
  }

  /**
   * Copies the installed tree into the data dir (staged, then renamed in one step, so a reader
   * never sees half a tree; another process that kept the same digest first wins). Everything
   * in the data dir is the owner's only (docs/security.md "Data dir"): dirs 0700, files 0600.
   */
  private keep(digest: string, tmp: string, meta: { specs: string[]; packages: string[]; log: string }): string {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    chmodSync(this.root, 0o700);
    const staging = join(this.root, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(staging, { mode: 0o700 });
    try {
      if (existsSync(join(tmp, 'node_modules'))) cpSync(join(tmp, 'node_modules'), join(staging, 'node_modules'), { recursive: true, verbatimSymlinks: true });
      else mkdirSync(join(staging, 'node_modules'));
      writeFileSync(join(staging, 'environment.json'), `${JSON.stringify(meta, null, 2)}\n`);
      ownerOnly(staging);
      const dir = this.dirOf(digest);
      try {
        renameSync(staging, dir);
      } catch (error) {
        if (!existsSync(join(dir, 'environment.json'))) throw error;
      }
      return dir;
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /** Staging dirs of processes that died while keeping a tree. */
  private sweepStaging(): void {
    if (this.swept || !existsSync(this.root)) return;
    this.swept = true;
    for (const name of readdirSync(this.root)) {
      const pid = Number(/^\.staging-(\d+)-/.exec(name)?.[1]);
      if (!pid || pid === process.pid || alive(pid)) continue;
      rmSync(join(this.root, name), { recursive: true, force: true });
    }
  }
}

/**
 * The image files of an environment: its node_modules under {@link ENVIRONMENT_IMAGE_DIR},
 * root-owned in the image and readable by the run's user (files 0644, executables 0755).
 */
export function environmentImageFiles(env: PreparedEnvironment): ImageFile[] {
  const files: ImageFile[] = [{ path: ENVIRONMENT_IMAGE_DIR, directory: true, mode: 0o755 }];
  const walk = (host: string, inImage: string) => {
    for (const name of readdirSync(host).sort()) {
      const h = join(host, name);
      const p = posix.join(inImage, name);
      const st = lstatSync(h);
      if (st.isDirectory()) {
        files.push({ path: p, directory: true, mode: 0o755 });
        walk(h, p);
      } else if (st.isSymbolicLink()) {
        const target = readlinkSync(h);
        // Only relative links that stay inside the tree (npm's own); anything else is left out.
        const inside = !target.startsWith('/') && posix.normalize(posix.join(posix.dirname(p), target)).startsWith(`${ENVIRONMENT_IMAGE_DIR}/`);
        if (inside) files.push({ path: p, linkTo: target });
      } else if (st.isFile()) {
        files.push({ path: p, hostPath: h, mode: st.mode & 0o100 ? 0o755 : 0o644 });
      }
    }
  };
  walk(join(env.dir, 'node_modules'), ENVIRONMENT_IMAGE_DIR);
  return files;
}

function ownerOnly(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o700);
    for (const name of readdirSync(path)) ownerOnly(join(path, name));
  } else {
    chmodSync(path, st.mode & 0o100 ? 0o700 : 0o600);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every package under node_modules as `name@version` (npm's hidden lockfile lists them). */
function installedPackages(nodeModules: string): string[] {
  try {
    const lock = JSON.parse(readFileSync(join(nodeModules, '.package-lock.json'), 'utf8')) as { packages?: Record<string, { version?: string }> };
    return Object.entries(lock.packages ?? {})
      .map(([path, p]) => `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${p.version ?? '?'}`)
      .sort();
  } catch {
    return [];
  }
}

/**
 * npm with the host's environment minus the package manager's own lifecycle variables (a
 * simulator started by `pnpm` would hand npm pnpm's settings); the registry, proxy and cache
 * settings of this machine stay. Ended, by its pid, when it takes too long, and with the simulator.
 */
function runNpm(npm: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !/^npm_config_(registry|cache|userconfig|https?_proxy|proxy|noproxy|strict_ssl|cafile)$/i.test(k)) continue;
    if (/^(AZUREML|AMLSIM)_/.test(k)) continue;
    env[k] = v;
  }
  return new Promise((resolve) => {
    let output = '';
    // Dies with the simulator (a killed one's npm does not go on writing into a swept temp dir).
    const [command, argv] = dieWithParent(npm, args);
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const add = (chunk: Buffer) => {
      if (output.length < LOG_LIMIT) output += chunk.toString('utf8');
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => {
      output += `\nnpm did not finish within ${timeoutMs} ms and was stopped\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, output: `${output}could not run npm: ${error.message}\n` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

/** npm's output with the temp dir's path taken out and anything credential-shaped masked. */
function cleanLog(output: string, tmp: string): string {
  return output
    .split(tmp)
    .join('.')
    .replace(/(_authToken|_auth|_password|token)=\S+/gi, '$1=***')
    .replace(/(\w+:\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***@')
    .replace(/^npm error A complete log of this run.*\n?/gm, '');
}

/** What npm said went wrong, naming the package when it named one. */
function npmFailure(output: string, specs: string[], code: number): { reason: string; pkg?: string } {
  const notFound = /404 Not Found - GET \S+\/((?:@[^/\s]+%2[fF])?[^/\s]+)\s*(?:-|$)/m.exec(output) ?? /'((?:@[^/'\s]+\/)?[^@'\s]+)@[^'\s]*' (?:could not be found|is not in this registry)/.exec(output);
  if (notFound) {
    const pkg = decodeURIComponent(notFound[1]!);
    const spec = specs.find((s) => packageOfSpec(s) === pkg) ?? pkg;
    return { reason: `the npm package '${pkg}' (${spec}) does not exist on the registry (npm E404); check its name in the environment's dependencies`, pkg };
  }
  const noVersion = /No matching version found for ((?:@[^/\s]+\/)?[^@\s]+)@(\S+?)\.?$/m.exec(output);
  if (noVersion) {
    const pkg = noVersion[1]!;
    return { reason: `no version of the npm package '${pkg}' matches '${noVersion[2]}' (npm ETARGET)`, pkg };
  }
  const line = output
    .split('\n')
    .filter((l) => /^npm (error|ERR!)/.test(l))
    .map((l) => l.replace(/^npm (error|ERR!)\s*/, ''))
    .filter(Boolean)
    .slice(0, 3)
    .join('; ');
  if (code === 127) return { reason: `npm could not be run (is it installed and on PATH?): ${output.trim().split('\n').at(-1) ?? ''}` };
  // Not npm's own words (it was stopped, or died): the output's last line says why.
  const last = line || output.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) || '';
  return { reason: `npm install ${specs.join(' ')} exited with code ${code}${last ? `: ${last}` : ''}` };
}
