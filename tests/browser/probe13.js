// Adversarial probe of the tracker (issue 13 review). Usage: node probe13.js <scenario-json-file>
// Each scenario: {name, html, url?, headers?, steps: [js strings], privacy?, initScript?}
// Pages are fulfilled by page.route (no page server); the tracker comes from the real collector.
const { chromium } = require('playwright-core');
const fs = require('fs');
async function run(browser, sc) {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 }, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' });
  await context.addInitScript((p) => {
    if (p.dnt) Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' });
    if (p.gpc) Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true });
  }, sc.privacy || {});
  if (sc.initScript) await context.addInitScript(sc.initScript);
  fs.writeFileSync('/tmp/r13probe/current.html', sc.html);
  const page = await context.newPage();
  const out = { name: sc.name, sent: [], errors: [], console: [], results: [] };
  page.on('pageerror', (e) => out.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('response', async (r) => {
    if (r.url().includes('/api/v1/collect') && r.request().method() === 'POST') {
      let b = r.request().postData(); try { b = JSON.parse(b); } catch (e) {}
      out.sent.push({ status: r.status(), type: b.event_type, path: b.path, name: b.properties && b.properties.name, body: b });
    }
  });
  page.on('requestfailed', (r) => { if (r.url().includes('/collect')) out.console.push('FAILED ' + r.failure().errorText); });
  try {
    await page.goto(sc.url || 'http://site.test:18620/', { waitUntil: 'load' });
    await page.waitForTimeout(400);
    for (const s of sc.steps || []) {
      try { out.results.push(await page.evaluate(s)); } catch (e) { out.results.push('THREW: ' + String(e).slice(0, 200)); }
      await page.waitForTimeout(150);
    }
    await page.waitForTimeout(600);
  } catch (e) { out.errors.push('DRIVER: ' + e); }
  await context.close();
  return out;
}
(async () => {
  const scenarios = JSON.parse(fs.readFileSync(process.argv[2]));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP site.test 127.0.0.1'] });
  try {
    for (const sc of scenarios) {
      const o = await run(browser, sc);
      for (const s of o.sent) delete s.body.website_id;
      console.log(JSON.stringify({ name: o.name, errors: o.errors, console: o.console, results: o.results,
        sent: o.sent.map((s) => [s.status, s.type, s.path, s.name === undefined ? null : String(s.name).slice(0, 40)]) }));
      if (process.env.FULL) console.log(JSON.stringify(o.sent.map((s) => s.body)));
    }
  } finally { await browser.close(); }
})();
