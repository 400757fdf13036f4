/**
 * One writer per index file. A writer (a service, or `sslkit index` replacing the file) creates
 * `INDEX.lock` exclusively (O_EXCL) with its pid and host, and removes it when it closes. A second
 * writer is refused with a message naming the first. A lock whose process is gone (`kill -9`, a
 * power cut) is stale and taken over, as PostgreSQL does with postmaster.pid; a lock from another
 * host cannot be checked, so it is refused with the way to remove it. Replicas that share one
 * index need PostgreSQL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../core/errors.js';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  command: string;
}

/** Lock files this process holds: a second open in the same process is a second writer too. */
const held = new Set<string>();

export interface IndexLock {
  readonly file: string;
  release(): void;
}

/** True while a process with this pid exists (EPERM: it does, as another user's). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Creates the lock file with our name in it; false when it exists. */
function create(lockFile: string, me: LockOwner): boolean {
  let fd: number;
  try {
    fd = fs.openSync(lockFile, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    fs.writeSync(fd, JSON.stringify(me));
    fs.fsyncSync(fd);
  } catch (e) {
    fs.rmSync(lockFile, { force: true });
    throw e;
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

function readOwner(lockFile: string): LockOwner | null {
  try {
    const o = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? (o as LockOwner) : null;
  } catch {
    return null; // gone meanwhile, or a torn write of a crashed writer
  }
}

/**
 * Takes the write lock of `indexFile`, or throws a UserError naming the process that holds it.
 * `log` hears of a stale lock taken over.
 */
export function lockIndex(indexFile: string, log: (line: string) => void = () => {}): IndexLock {
  // One spelling per file: a relative and an absolute path to the same index share one lock.
  const lockFile = `${path.resolve(indexFile)}.lock`;
  const me: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    command: process.argv.slice(1).join(' '),
  };
  if (held.has(lockFile)) throw refusal(indexFile, lockFile, me);
  for (let attempt = 0; !create(lockFile, me); attempt++) {
    const owner = readOwner(lockFile);
    // Our own pid in a lock this process does not hold: a crashed predecessor whose pid came round again.
    const stale = owner !== null && owner.host === me.host && (owner.pid === process.pid || !isRunning(owner.pid));
    if (owner && !stale) throw refusal(indexFile, lockFile, owner);
    if (attempt >= 10)
      throw new UserError(
        `${lockFile}: cannot take the index's write lock (it keeps changing); remove it if no sslkit process uses ${indexFile}`,
      );
    if (!owner) {
      // Unreadable: a writer creating it right now, or one that died while writing it.
      const age = Date.now() - (fs.statSync(lockFile, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age < 2_000) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        continue;
      }
    }
    fs.rmSync(lockFile, { force: true });
    log(
      `${indexFile}: took over the lock of a writer that is gone (${owner ? `pid ${owner.pid}, since ${owner.since}` : 'unreadable lock file'})`,
    );
  }
  held.add(lockFile);
  return {
    file: lockFile,
    release() {
      if (!held.delete(lockFile)) return;
      // Only our own lock: never one that another writer took over meanwhile.
      if (readOwner(lockFile)?.pid === process.pid) fs.rmSync(lockFile, { force: true });
    },
  };
}

function refusal(indexFile: string, lockFile: string, owner: LockOwner): UserError {
  const who =
    owner.pid === process.pid && owner.host === os.hostname()
      ? 'this process already has it open'
      : `it is open for writing by pid ${owner.pid} on ${owner.host} since ${owner.since} (${owner.command || 'sslkit'})`;
  return new UserError(
    `${indexFile}: ${who}. One process writes an index file; several replicas need a PostgreSQL index (--index postgres://…). ` +
      `If that process is gone, remove ${lockFile}.`,
  );
}
