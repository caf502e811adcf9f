// A throwaway cluster certificate for the pretend hosts of the benchmarks and tests: a CA, and
// one host certificate for the name every host presents (`redblue`, transport/grpc-data.ts), as
// docs/hosts.md tells users to make theirs. Made with the openssl command-line tool.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A CA, a host certificate for the cluster name "redblue" it signed, and its key. */
export function makeCerts(dir: string, prefix: string): { ca: string; cert: string; key: string } {
  const p = (x: string) => join(dir, `${prefix}-${x}`);
  const ossl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', timeout: 20_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=redblue-test-ca',
  ]);
  ossl(['req', ...ec, '-keyout', p('host.key'), '-out', p('host.csr'), '-subj', '/CN=redblue']);
  writeFileSync(p('ext'), 'subjectAltName=DNS:redblue\n');
  ossl([
    'x509',
    '-req',
    '-in',
    p('host.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('host.pem'),
    '-days',
    '1',
    '-extfile',
    p('ext'),
  ]);
  return { ca: p('ca.pem'), cert: p('host.pem'), key: p('host.key') };
}
