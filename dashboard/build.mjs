// Builds the dashboard into api/dashboard_dist/: one JS bundle and one CSS file with
// content-hashed names (cached for a year) and index.html naming them (never cached).
// Everything, uPlot included, comes from node_modules: the page loads nothing from
// another origin. Usage: npm run build
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'api', 'dashboard_dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// uPlot's MIT notice: its header is a plain /** comment, which esbuild drops, so its
// LICENSE is served beside the bundle and the bundle's first line names it.
const LICENSES = 'uplot-LICENSE.txt';
copyFileSync(join(here, 'node_modules', 'uplot', 'LICENSE'), join(out, LICENSES));
const banner = `/*! TinyTrail dashboard. Includes uPlot (MIT License, Copyright (c) Leon Sorokin): see ${LICENSES} */`;

const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js'), style: join(here, 'src', 'style.css') },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['es2020'],
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'linked',
  banner: { js: banner, css: banner },
  logLevel: 'warning',
});
const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = files.find((f) => f.startsWith('app-') && f.endsWith('.js'));
const css = files.find((f) => f.startsWith('style-') && f.endsWith('.css'));
if (!js || !css) throw new Error(`build produced ${files.join(', ')}`);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('{{CSS}}', css).replace('{{JS}}', js);
writeFileSync(join(out, 'index.html'), html);
console.log(`dashboard built: ${files.concat('index.html', LICENSES).join(', ')} -> ${out}`);
