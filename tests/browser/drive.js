// Drives Debian's headless Chromium through one visit of the test page:
// load, SPA navigation, scroll, custom event, outbound click, tab close.
// Usage: node drive.js <page-url>. Prints one line per step; exits non-zero on failure.
const { chromium } = require('playwright-core');

async function main() {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1024, height: 600 } });
    page.on('console', (m) => console.log('console:', m.text()));
    const posted = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/collect')) posted.push(r.postData()); });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => window.analytics && typeof window.analytics.track === 'function');
    console.log('step: loaded');
    await page.evaluate(() => history.pushState({}, '', '/spa/next'));
    console.log('step: spa');
    for (const y of [800, 1800, 2800, 3800, 5000]) {
      await page.evaluate((top) => window.scrollTo(0, top), y);
      await page.waitForTimeout(100);
    }
    console.log('step: scrolled');
    await page.evaluate(() => window.analytics.track('signup', { plan: 'pro' }));
    console.log('step: custom');
    await page.click('#outbound');
    console.log('step: outbound');
    await page.waitForTimeout(300);
    await page.close({ runBeforeUnload: true });
    console.log('step: closed');
    console.log('posted: ' + posted.length);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
