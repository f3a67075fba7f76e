// The card emulator's control socket (issuer/src/emulator/control.rs): one command
// line, one reply line. remove | insert | pull-after INS | pull-before INS | status.

import net from 'node:net';

export function control(socketPath, line) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socketPath);
    let buf = '';
    s.on('connect', () => s.write(`${line}\n`));
    s.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        s.end();
        const reply = buf.slice(0, nl);
        if (reply.startsWith('ok')) resolve(reply);
        else reject(new Error(`card-emulator: ${line}: ${reply}`));
      }
    });
    s.on('error', reject);
  });
}
