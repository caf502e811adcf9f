// Placement by batch systems (Slurm, Open MPI variables), hostfiles, host lists and addresses.
import { describe, expect, it } from 'vitest';
import { expandHostlist, launchPlace, tasksOnNode } from '../../executor/launch/launch-env.js';
import { parseHostfile, parseHostList } from '../../executor/launch/hostfile.js';
import { shellQuote, sshArgs } from '../../executor/launch/ssh-launch.js';
import { parseCpuList, parseDataPort, parseListen } from '../../executor/host/options.js';
import { hostOf, isLoopback, joinHostPort } from '../../common/address.js';
import { runCli } from '../helpers/cli.js';

describe('Slurm and Open MPI variables', () => {
  it('reads a Slurm task: rank, size, local rank, host index and the expanded host list', () => {
    const p = launchPlace({
      SLURM_PROCID: '5',
      SLURM_NTASKS: '8',
      SLURM_LOCALID: '1',
      SLURM_NODEID: '2',
      SLURM_JOB_NUM_NODES: '4',
      SLURM_TASKS_PER_NODE: '2(x4)',
      SLURM_JOB_NODELIST: 'cn[01-03],gpu7',
    });
    expect(p).toEqual({
      source: 'slurm',
      rank: 5,
      size: 8,
      localRank: 1,
      localSize: 2,
      hostIndex: 2,
      hostCount: 4,
      hosts: ['cn01', 'cn02', 'cn03', 'gpu7'],
    });
  });

  it('reads an Open MPI rank; host index from rank and local size', () => {
    const p = launchPlace({
      OMPI_COMM_WORLD_RANK: '3',
      OMPI_COMM_WORLD_SIZE: '4',
      OMPI_COMM_WORLD_LOCAL_RANK: '0',
      OMPI_COMM_WORLD_LOCAL_SIZE: '1',
    });
    expect(p).toMatchObject({
      source: 'ompi',
      rank: 3,
      size: 4,
      localRank: 0,
      localSize: 1,
      hostIndex: 3,
      hostCount: 4,
    });
    expect(launchPlace({})).toBeUndefined();
  });

  it('rejects inconsistent or malformed variables with the variable named', () => {
    expect(() => launchPlace({ SLURM_PROCID: '4', SLURM_NTASKS: '4' })).toThrow(
      /task 4 is not below the task count 4/,
    );
    expect(() => launchPlace({ SLURM_PROCID: 'x', SLURM_NTASKS: '4' })).toThrow(
      /SLURM_PROCID must be a whole number/,
    );
    expect(() => launchPlace({ OMPI_COMM_WORLD_RANK: '0' })).toThrow(/OMPI_COMM_WORLD_SIZE is not set/);
    // Found by test/fuzz/hosts.test.ts: digits past 2^53 were read as a rounded number.
    expect(() => launchPlace({ SLURM_NTASKS: '99999999999999999999', SLURM_PROCID: '0' })).toThrow(
      /SLURM_NTASKS must be a whole number \(at most 2\^53\), got '99999999999999999999'/,
    );
    expect(() => tasksOnNode('9007199254740993', 0)).toThrow(
      /SLURM_TASKS_PER_NODE: cannot read '9007199254740993'/,
    );
  });

  it('expands Slurm host lists and tasks per node', () => {
    expect(expandHostlist('a[1-2]-b[08-09],c')).toEqual(['a1-b08', 'a1-b09', 'a2-b08', 'a2-b09', 'c']);
    expect(expandHostlist('n[7,10-11]')).toEqual(['n7', 'n10', 'n11']);
    expect(() => expandHostlist('n[1-2')).toThrow(/unbalanced/);
    expect(tasksOnNode('2(x3),1', 2)).toBe(2);
    expect(tasksOnNode('2(x3),1', 3)).toBe(1);
  });

  it('refuses host lists that expand too far, at once (found by test/fuzz/hosts.test.ts)', () => {
    // 200000 names: was 'Maximum call stack size exceeded' (a RangeError from push(...names)).
    expect(() => expandHostlist('[1-2][0-99999]')).toThrow(
      /^host list '\[1-2\]\[0-99999\]' expands to more than 100000 hosts$/,
    );
    // 10^10 names: was minutes of work and gigabytes before the count was checked.
    const t0 = Date.now();
    expect(() => expandHostlist('a[0-99999][0-99999]')).toThrow(/expands to more than 100000 hosts/);
    expect(Date.now() - t0).toBeLessThan(1000);
    // Past 2^53, i++ leaves i as it is: the loop never ended (and ran out of memory).
    expect(() => expandHostlist('n[9007199254740992-9007199254740996]')).toThrow(
      /bad range '9007199254740992-9007199254740996'/,
    );
    expect(expandHostlist('n[0-99999]')).toHaveLength(100_000);
  });

  it('an executor started as a second task on its host refuses, saying why', () => {
    const r = runCli(['executor', '--listen', '127.0.0.1:0'], {
      env: {
        ...process.env,
        SLURM_PROCID: '1',
        SLURM_NTASKS: '2',
        SLURM_LOCALID: '1',
        SLURM_TASKS_PER_NODE: '2',
      },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/slurm: this is task 1 on its host; run one `redblue executor` per host/);
  });
});

describe('hostfiles and addresses', () => {
  it('parses hosts with per-host ssh user, port, identity and executor options', () => {
    const hosts = parseHostfile(
      [
        '# a comment',
        'node1 user=alice ssh-port=2222 identity=/k/id port=7000',
        '',
        '10.0.0.2 listen=0.0.0.0 virtual-nodes=2 data-port=7071 command="/opt/rb/bin/redblue --x"  # trailing',
      ].join('\n'),
      'hf',
      { port: 7070 },
    );
    expect(hosts).toEqual([
      { host: 'node1', user: 'alice', sshPort: 2222, identity: '/k/id', port: 7000, command: 'redblue' },
      {
        host: '10.0.0.2',
        listen: '0.0.0.0',
        virtualNodes: 2,
        dataPort: 7071,
        port: 7070,
        command: '/opt/rb/bin/redblue --x',
      },
    ]);
  });

  it('names the line of a bad hostfile entry', () => {
    expect(() => parseHostfile('a\nb colour=red', 'hf')).toThrow(/hf:2: unknown option 'colour'/);
    expect(() => parseHostfile('a port=99999', 'hf')).toThrow(/hf:1: port must be a port number/);
    expect(() => parseHostfile('a data-port=x', 'hf')).toThrow(/hf:1: data-port must be a port number/);
    expect(() => parseHostfile('a\na', 'hf')).toThrow(/a:7070 appears twice/);
    expect(() => parseHostfile('# nothing', 'hf')).toThrow(/lists no hosts/);
  });

  it('builds an ssh command line that passes the token on stdin only', () => {
    const args = sshArgs(
      {
        host: 'h',
        user: 'u',
        sshPort: 22,
        identity: '/k',
        port: 7070,
        command: 'redblue',
        virtualNodes: 2,
        dataPort: 7071,
      },
      { sshOptions: ['StrictHostKeyChecking=yes'] },
    );
    expect(args).toContain('BatchMode=yes');
    expect(args.slice(-2)).toEqual([
      'u@h',
      'redblue executor --listen h:7070 --token-stdin --exit-on-eof --virtual-nodes 2 --data-port 7071',
    ]);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("passes a hostfile line's transport after launch's own, and refuses an unknown one", () => {
    const [e] = parseHostfile('ib3 transport=ucx', 'hf');
    expect(e!.transport).toBe('ucx');
    const args = sshArgs(e!, { sshOptions: [], executorArgs: ['--transport', 'grpc'] });
    expect(args.at(-1)).toMatch(/--transport grpc --transport ucx$/);
    expect(() => parseHostfile('ib3 transport=rdma', 'hf')).toThrow(
      /hf:1: transport must be auto, ucx or grpc, got 'rdma'/,
    );
  });

  it('parses listen addresses and host lists; knows loopback', () => {
    expect(parseListen('[::1]:7070')).toEqual({ host: '::1', port: 7070 });
    expect(parseListen('10.1.2.3:0')).toEqual({ host: '10.1.2.3', port: 0 });
    expect(() => parseListen('nowhere')).toThrow(/HOST:PORT/);
    expect(isLoopback('127.0.0.2')).toBe(true);
    expect(isLoopback('10.213.0.1')).toBe(false);
    expect(parseHostList('a:1, b:2')).toEqual(['a:1', 'b:2']);
    expect(() => parseHostList('a')).toThrow(/'a' is not HOST:PORT/);
    expect(parseDataPort('7071')).toBe(7071);
    expect(parseDataPort('0')).toBe(0);
    for (const bad of ['65536', '-1', 'x', '1.5'])
      expect(() => parseDataPort(bad)).toThrow(/--data-port must be a port number \(0-65535/);
  });

  it('parses --cpus lists; a range past 2^53 is refused (found by test/fuzz/cli-flags.test.ts)', () => {
    expect(parseCpuList('0-3,8')).toEqual([0, 1, 2, 3, 8]);
    expect(() => parseCpuList('3-0')).toThrow(/--cpus: bad range '3-0'/);
    // Was an endless loop (c++ no longer changes c there) until the heap ran out.
    expect(() => parseCpuList('9007199254740992-9007199254740996')).toThrow(
      /--cpus: bad range '9007199254740992-9007199254740996'/,
    );
  });
});

describe('addresses', () => {
  it('takes the host out of HOST:PORT and puts it back, IPv6 in brackets', () => {
    expect(hostOf('10.0.0.1:7070')).toBe('10.0.0.1');
    expect(hostOf('[::1]:7070')).toBe('::1');
    expect(hostOf('[fe80::1%eth0]:7070')).toBe('fe80::1%eth0');
    expect(hostOf('node-3')).toBe('node-3');
    expect(joinHostPort('::1', 7171)).toBe('[::1]:7171');
    expect(joinHostPort('host.example', 7171)).toBe('host.example:7171');
    expect(joinHostPort(hostOf('[::1]:7070'), 7171)).toBe('[::1]:7171');
  });
});
