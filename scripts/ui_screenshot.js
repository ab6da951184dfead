// Screenshots of the MLflow UI for the README (docs/mlflow-ui-*.png), from a real UI in
// headless Chromium: the runs view grouped by optimizer, then the chart view.
//
//   medbench ui --port 5055 &            # in the folder of a finished demo's mlflow.db
//   npm install playwright-core          # the driver only; no browser download
//   node scripts/ui_screenshot.js "http://127.0.0.1:5055/#/experiments/1/runs?workflowType=machine_learning" docs/mlflow-ui.png
//
// CHROMIUM names the browser (default /usr/bin/chromium, e.g. apt's chromium package).
// Written for MLflow 3.17's UI: the clicks follow its labels ("Group by", "Search metric charts").
const { chromium } = require('playwright-core');

(async () => {
  const [url, out] = process.argv.slice(2);
  if (!url || !out) {
    console.error('usage: node scripts/ui_screenshot.js RUNS_URL OUT.png');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  await page.getByRole('button', { name: 'Group by' }).waitFor({ timeout: 60000 });
  await page.waitForTimeout(3000);
  // the MLflow Assistant side panel may open by itself: close it (its X button)
  for (const close of await page.$$('button[aria-label="Close"], button[aria-label="close"]')) {
    await close.click({ timeout: 2000 }).catch(() => {});
  }
  // group the runs by the optimizer param: each group holds the parent and its fold runs
  await page.getByRole('button', { name: 'Group by' }).click();
  await page.keyboard.type('optimizer');
  await page.getByText('optimizer', { exact: true }).last().click();
  await page.keyboard.press('Escape');
  await page.waitForTimeout(1500);
  await page.screenshot({ path: out.replace(/\.png$/, '-table.png') });
  // the chart view (the second view switch), narrowed to the test AUC charts
  await page.getByRole('radio').nth(1).click().catch(() => page.mouse.click(296, 119));
  const search = page.getByPlaceholder('Search metric charts');
  await search.waitFor({ timeout: 30000 });
  await search.fill('test_auc');
  await page.waitForTimeout(3000);
  await page.screenshot({ path: out.replace(/\.png$/, '-chart.png') });
  await browser.close();
})();
