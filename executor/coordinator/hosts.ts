// The hosts of a `redblue launch`, for the length of one workload: started over SSH from a
// hostfile (with a fresh token unless one is given), listed (--hosts), or taken from a Slurm job;
// then connected as one RemoteCluster. Everything is stopped afterwards, also on Ctrl-C, when a
// host fails or when an SSH session ends.
import { randomBytes } from 'node:crypto';
import { hostOf, isLoopback } from '../../common/address.js';
import { UsageError } from '../../common/errors.js';
import type { Auth } from '../../transport/grpc-data.js';
import type { TransportChoice } from '../../transport/control.js';
import { readHostfile, parseHostList } from '../launch/hostfile.js';
import { launchPlace } from '../launch/launch-env.js';
import { SshLauncher } from '../launch/ssh-launch.js';
import { HostLostError, RemoteCluster } from './remote-cluster.js';

export interface HostsOptions {
  hostfile?: string;
  hosts?: string;
  slurm?: boolean;
  /** Supervisor port for --slurm and hostfile lines without port=. */
  port: number;
  sshOption?: string[];
  remoteCommand?: string;
  /** TLS files, passed on to supervisors started over SSH. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** For supervisors started over SSH: how their leaders exchange (their `--transport`). */
  transport?: TransportChoice;
  readyTimeout: number;
  /** Credentials (from the flags); a launch from a hostfile mints a token when none is given. */
  auth: Auth;
  onProgress?: (done: number, total: number, what: string) => void;
  /** Called once on SIGINT/SIGTERM, before everything is stopped and the process exits with 130. */
  onInterrupt?: () => void;
  /** false: the caller handles SIGINT/SIGTERM itself (a server drains first); default true. */
  handleSignals?: boolean;
  /**
   * Set: a host lost mid-work (its link, or the host itself) does not end the run: the sessions
   * are ended, the hosts left are connected again and `work` runs again on them (it keeps what
   * lets it go on). Called with the host lost and the addresses left.
   */
  onHostLost?: (lost: { host: number; address: string; reason: string }, left: string[]) => void;
  /**
   * Called with the error that ends the run, before the hosts are stopped: stopping waits for
   * each host left to end its session (up to 3 s), and the user should hear of a lost host at
   * once, not after that.
   */
  onFailure?: (err: unknown) => void;
  /** Stops what else the work started beside the hosts (a draft model's local executors), on Ctrl-C too. */
  alsoStop?: () => Promise<void>;
}

/** A fresh shared secret for one launch; it reaches the hosts over ssh's stdin. */
export function mintToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Starts (or reaches) the hosts, runs `work`, and always stops everything. */
export async function withHosts<T>(o: HostsOptions, work: (rc: RemoteCluster) => Promise<T>): Promise<T> {
  const given = [o.hostfile, o.hosts, o.slurm].filter(Boolean).length;
  if (given !== 1)
    throw new UsageError('say where the hosts are: exactly one of --hostfile, --hosts or --slurm');
  if (o.transport && !o.hostfile)
    throw new UsageError(
      '--transport sets how hosts started from --hostfile exchange; hosts already running use their own `redblue executor --transport`',
    );
  const auth = o.auth;
  let launcher: SshLauncher | undefined;
  let rc: RemoteCluster | undefined;
  let interrupted = false;
  const stopAll = async () => {
    await Promise.all([rc?.stop(), o.alsoStop?.()]);
    await launcher?.stop();
  };
  const onSignal = () => {
    interrupted = true;
    o.onInterrupt?.();
    void stopAll().then(() => process.exit(130));
  };
  const signals = o.handleSignals ?? true;
  if (signals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    let addresses: string[];
    if (o.hostfile) {
      const entries = readHostfile(o.hostfile, {
        port: o.port,
        ...(o.remoteCommand ? { command: o.remoteCommand } : {}),
      });
      auth.token ??= mintToken();
      launcher = new SshLauncher();
      const tls = o.tlsCert ? ['--tls-cert', o.tlsCert, '--tls-key', o.tlsKey!, '--tls-ca', o.tlsCa!] : [];
      addresses = await launcher.start(entries, {
        token: auth.token,
        sshOptions: o.sshOption ?? [],
        executorArgs: [...tls, ...(o.transport ? ['--transport', o.transport] : [])],
        readyTimeoutMs: o.readyTimeout * 1000,
        onProgress: (done, total) => o.onProgress?.(done, total, 'executors ready'),
      });
    } else if (o.hosts) {
      addresses = parseHostList(o.hosts);
    } else {
      const place = launchPlace();
      if (!place?.hosts)
        throw new UsageError('--slurm: SLURM_JOB_NODELIST is not set (run inside a Slurm allocation)');
      addresses = place.hosts.map((h) => `${h}:${o.port}`);
    }
    if (!addresses.every((a) => isLoopback(hostOf(a))) && !auth.token && !auth.tls) {
      throw new UsageError('hosts beyond loopback need --token-file F or --tls-cert/--tls-key/--tls-ca');
    }
    const sshLost = launcher?.failed();
    sshLost?.catch(() => undefined);
    for (;;) {
      rc = await RemoteCluster.connect({
        addresses,
        auth,
        readyTimeoutMs: o.readyTimeout * 1000,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
      try {
        return await rc.guard(sshLost ? Promise.race([work(rc), sshLost]) : work(rc));
      } catch (e) {
        if (!o.onHostLost || !(e instanceof HostLostError) || e.address === undefined) {
          o.onFailure?.(e);
          throw e;
        }
        const gone = e.address;
        await rc.stop();
        rc = undefined;
        const left = addresses.filter((a) => a !== gone);
        if (left.length === 0 || left.length === addresses.length)
          throw new Error(`${e.message}, and no host is left to go on with`, { cause: e });
        o.onHostLost({ host: e.host ?? -1, address: gone, reason: e.message }, left);
        addresses = left;
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await stopAll();
    // A connection to a host whose link is gone can hold the event loop until TCP gives up
    // (minutes): once everything is stopped, nothing is left to wait for.
    setTimeout(() => process.exit(), 1000).unref();
  }
}
