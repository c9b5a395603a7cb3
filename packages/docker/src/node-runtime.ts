import { execFile } from 'node:child_process';
import { access, realpath } from 'node:fs/promises';
import { promisify } from 'node:util';
import { runtimeFilesUnavailable } from './errors';
import type { ImageFile } from './image-files';

const run = promisify(execFile);

/** The non-root account every simulated compute node runs as (S8: least privilege in containers). */
export const RUNTIME_USER = { name: 'aml', uid: 1000, gid: 1000 } as const;

/** Where the host's files come from; defaults fit Debian 12 (docs/architecture.md "Docker conventions"). */
export interface NodeRuntimeSources {
  /** The Node binary to copy; defaults to the one running this code. */
  nodeBinary?: string;
  /** A static busybox (Debian `busybox-static`) giving the image a shell. */
  busybox?: string;
}

/**
 * The files of a FROM-scratch Node runtime: `/usr/bin/node`, every shared library `ldd` lists
 * at the path the dynamic loader looks for it (real file copied, symlinks resolved), the loader
 * itself, an empty world-writable `/tmp`, `/etc/passwd` + `/etc/group` with the non-root user
 * `aml` (uid 1000), and busybox at `/bin/busybox` with `/bin/sh` and its applets as symlinks
 * (management code may need a shell).
 */
export async function collectNodeRuntimeFiles(sources: NodeRuntimeSources = {}): Promise<ImageFile[]> {
  const node = sources.nodeBinary ?? process.execPath;
  const busybox = sources.busybox ?? '/bin/busybox';
  const files: ImageFile[] = [{ path: '/usr/bin/node', hostPath: await realpath(node), mode: 0o755 }];

  const libs = new Map<string, string>();
  for (const [inImage, onHost] of await sharedLibraries(node)) libs.set(inImage, onHost);

  try {
    await access(busybox);
  } catch (cause) {
    throw runtimeFilesUnavailable('busybox', `'${busybox}' is missing (Debian package busybox-static)`, cause);
  }
  files.push({ path: '/bin/busybox', hostPath: await realpath(busybox), mode: 0o755 });
  // A dynamically linked busybox would need its libraries too; the static one lists none.
  for (const [inImage, onHost] of await sharedLibraries(busybox)) libs.set(inImage, onHost);
  for (const [inImage, onHost] of [...libs].sort()) files.push({ path: inImage, hostPath: onHost, mode: 0o755 });

  const applets = await busyboxApplets(busybox);
  for (const applet of new Set(['sh', ...applets])) {
    if (applet === 'busybox' || applet.includes('/')) continue;
    files.push({ path: `/bin/${applet}`, linkTo: 'busybox' });
  }

  const { name, uid, gid } = RUNTIME_USER;
  files.push(
    // 01777 like any /tmp: every user may create files, only the owner may delete them.
    { path: '/tmp', directory: true, mode: 0o1777 },
    // HOME is /tmp: COPY makes everything root-owned, so a home directory could not be the user's.
    { path: '/etc/passwd', content: `root:x:0:0:root:/root:/bin/sh\n${name}:x:${uid}:${gid}:${name}:/tmp:/bin/sh\n`, mode: 0o644 },
    { path: '/etc/group', content: `root:x:0:\n${name}:x:${gid}:\n`, mode: 0o644 },
  );
  return files;
}

/**
 * `[path the loader expects, real file on the host]` for each library `ldd` lists, including
 * the dynamic loader (`/lib64/ld-linux-x86-64.so.2`). The in-image path keeps ldd's spelling:
 * with no ld.so.cache in the image, the loader searches its built-in directories
 * (/lib/x86_64-linux-gnu, …), so the files must sit exactly there.
 */
async function sharedLibraries(binary: string): Promise<Array<[string, string]>> {
  let stdout: string;
  try {
    ({ stdout } = await run('ldd', [binary]));
  } catch (cause) {
    const out = `${(cause as { stdout?: string }).stdout ?? ''}${(cause as { stderr?: string }).stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(out)) return [];
    throw runtimeFilesUnavailable('shared libraries', `\`ldd ${binary}\` failed: ${out.trim() || String(cause)}`, cause);
  }
  if (/statically linked/.test(stdout)) return [];
  const result: Array<[string, string]> = [];
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)";
    // linux-vdso has no file (the kernel maps it).
    const m = /=>\s*(\/\S+)\s*\(/.exec(line) ?? /^\s*(\/\S+)\s*\(/.exec(line);
    if (!m?.[1]) {
      if (/=>\s*not found/.test(line)) throw runtimeFilesUnavailable('shared libraries', `ldd reports '${line.trim()}'`);
      continue;
    }
    result.push([m[1], await realpath(m[1])]);
  }
  return result;
}

async function busyboxApplets(busybox: string): Promise<string[]> {
  try {
    const { stdout } = await run(busybox, ['--list']);
    return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  } catch (cause) {
    throw runtimeFilesUnavailable('busybox applets', `\`${busybox} --list\` failed`, cause);
  }
}
