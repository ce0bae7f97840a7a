// Builds the served tracker (collector/static/tracker.js) from its readable source
// (collector/tracker/tracker.js) with terser, pinned in tests/browser/package-lock.json
// (installed by infra/bootstrap.sh with the browser tests' packages).
// Usage: node collector/tracker/build.js          writes collector/static/tracker.js
//        node collector/tracker/build.js --stdout  prints the build (the test compares)
const fs = require('fs');
const path = require('path');
const { minify } = require(path.join(__dirname, '..', '..', 'tests', 'browser', 'node_modules', 'terser'));

const SRC = path.join(__dirname, 'tracker.js');
const OUT = path.join(__dirname, '..', 'static', 'tracker.js');
const BANNER = '';

async function main() {
  const result = await minify(fs.readFileSync(SRC, 'utf8'), {
    ecma: 2020,
    compress: { passes: 3, unsafe_arrows: true, unsafe: true, unsafe_comps: true, booleans_as_integers: true, hoist_funs: true },
    mangle: true,
    format: { comments: false },
  });
  const out = BANNER + result.code + '\n';
  if (process.argv.includes('--stdout')) process.stdout.write(out);
  else fs.writeFileSync(OUT, out);
}

main().catch((e) => { console.error(e); process.exit(1); });
