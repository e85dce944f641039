#!/usr/bin/env node
// tsrun on Node 20, from a checkout: the same code as the compiled bin/tsrun,
// bundled for Node by `npm run build` (lib/build/build.mjs).
'use strict';
require('../lib/_build/tsrun.cjs');
