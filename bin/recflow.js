#!/usr/bin/env node
// The `recflow` command: runs the TypeScript CLI through tsx (no build step).
'use strict';
require('tsx/cjs/api').register();
require('../clients/cli.ts')
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`recflow: ${err && err.stack ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
