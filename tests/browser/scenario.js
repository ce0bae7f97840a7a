// Runs one scripted visit in Debian's headless Chromium and reports what the page sent.
// Usage: node scenario.js '<json>' where the JSON is
//   {url, viewport?: {width, height}, screen?: {width, height}, privacy?: {dnt, gpc},
//    steps: [{click: selector} | {eval: js} | {scroll: [y, ...]} | {hide: true}
//            | {wait: js-condition}],
//    report?: js-expression, sentinel?: {collect, body}, screenshot?: path}
// Prints `result: <json>` last: {posted: [bodies in the order the page sent them],
// failed: [collect requests that got no answer], tracker: {status, encoding},
// report: value of `report`, errors: [uncaught page errors]}. Exits non-zero on failure.
const { chromium } = require('playwright-core');

const COLLECT = '/api/v1/collect';

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({
      viewport: spec.viewport || { width: 1024, height: 600 },
      screen: spec.screen || undefined,
    });
    const privacy = spec.privacy || {};
    // Chromium has no switch for these signals: define them as a browser that sends them does.
    await context.addInitScript((p) => {
      if (p.dnt) Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' });
      if (p.gpc) Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true });
    }, privacy);
    const page = await context.newPage();
    const posted = [], failed = [], errors = [];
    let pending = 0, lastActivity = Date.now();
    const tracker = {};
    page.on('console', (m) => console.log('console:', m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => {
      if (!r.url().includes(COLLECT) || r.method() !== 'POST') return;
      posted.push(JSON.parse(r.postData()));
      pending += 1; lastActivity = Date.now();
    });
    const done = (r, ok) => {
      if (!r.url().includes(COLLECT) || r.method() !== 'POST') return;
      pending -= 1; lastActivity = Date.now();
      if (!ok) failed.push(r.url());
    };
    page.on('requestfinished', (r) => done(r, true));
    page.on('requestfailed', (r) => done(r, false));
    page.on('response', async (r) => {
      if (!r.url().includes('/js/tracker.js')) return;
      tracker.status = r.status();
      tracker.encoding = (await r.allHeaders())['content-encoding'] || null;
    });

    await page.goto(spec.url, { waitUntil: 'load' });
    console.log('step: loaded');
    for (const step of spec.steps || []) {
      if (step.click) await page.click(step.click);
      else if (step.eval) await page.evaluate(step.eval);
      else if (step.wait) await page.waitForFunction(step.wait);
      else if (step.scroll) {
        for (const y of step.scroll) {
          await page.evaluate((top) => window.scrollTo(0, top), y);
          await page.waitForTimeout(100);
        }
      } else if (step.hide) {
        // What a tab switch does to the page (headless Chromium cannot switch tabs).
        await page.evaluate(() => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
          document.dispatchEvent(new Event('visibilitychange'));
        });
      }
      console.log('step: ' + JSON.stringify(step).slice(0, 80));
    }
    // Let the page's own requests settle: none pending and none new for 500 ms.
    await page.waitForTimeout(200);
    for (let i = 0; i < 100 && (pending > 0 || Date.now() - lastActivity < 500); i += 1) {
      await page.waitForTimeout(100);
    }
    const report = spec.report ? await page.evaluate(spec.report) : null;
    if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: false });
    const sent = posted.slice();
    if (spec.sentinel) {
      // Sent last, from the same browser (same visitor, so the same Kafka partition): a
      // reader that stops at it has seen everything the page sent before it.
      await page.evaluate(async (s) => {
        await fetch(s.collect, { method: 'POST', mode: 'no-cors', body: JSON.stringify(s.body),
          headers: { 'Content-Type': 'text/plain' } });
      }, spec.sentinel);
      console.log('step: sentinel');
    }
    console.log('result: ' + JSON.stringify({ posted: sent, failed, tracker, report, errors }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
