#!/usr/bin/env node
// A stand-in for a native host of a later protocol version (the one fault the real
// binary cannot produce): it refuses every request as the real host refuses a hello of
// a version it does not speak, naming the versions it does. Used by the end-to-end
// test of the version check.

let buf = Buffer.alloc(0);
process.stdin.on('data', (c) => {
  buf = Buffer.concat([buf, c]);
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
    const len = buf.readUInt32LE(0);
    const req = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
    buf = buf.subarray(4 + len);
    const body = Buffer.from(JSON.stringify({
      type: 'error', id: req.id, code: 'version_mismatch',
      message: 'The browser extension and the card-reader program on this computer do not match. Please update both.',
      detail: `the extension speaks protocol ${req.protocol}; this host speaks [2]`,
    }));
    const head = Buffer.alloc(4);
    head.writeUInt32LE(body.length);
    process.stdout.write(Buffer.concat([head, body]));
  }
});
process.stdin.on('end', () => process.exit(0));
