// Screenshots of the MLflow UI for the README (docs/mlflow-ui-table.png, docs/mlflow-ui-chart.png),
// from a real UI in headless Chromium: the first view of the address `medbench ui` prints (the
// runs table in medbench's saved view), then its chart view.
//
//   .venv/bin/medbench ui --port 5055 &     # in the folder of a finished demo's mlflow.db
//   npm install playwright-core             # the driver only; no browser download
//   node scripts/ui_screenshot.js "http://127.0.0.1:5055/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=medbench" docs/mlflow-ui.png
//
// CHROMIUM names the browser (default /usr/bin/chromium, e.g. Debian's chromium package).
// Written for MLflow 3.17's UI: it waits for the table's "Run Name" header, closes the MLflow
// Assistant panel (it opens by itself in a new browser), and switches to the chart view through
// the view switch's "CHART" radio button.
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
  await page.getByText('Run Name', { exact: true }).first().waitFor({ timeout: 60000 });
  await page.getByText('cv_test_auc_mean', { exact: true }).first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(3000);
  for (const close of await page.$$('button[aria-label="Close"], button[aria-label="close"]')) {
    await close.click({ timeout: 2000 }).catch(() => {});
  }
  await page.waitForTimeout(1500);
  // the table's rows end well above the window's bottom: leave out the empty part
  await page.screenshot({
    path: out.replace(/\.png$/, '-table.png'),
    clip: { x: 0, y: 0, width: 1440, height: 560 },
  });
  // the chart view: the saved view opens it on the test AUC charts
  await page.locator('label:has(input[value="CHART"])').click();
  await page.getByText('cv_test_auc_mean', { exact: true }).last().waitFor({ timeout: 30000 });
  await page.waitForTimeout(4000);
  await page.screenshot({ path: out.replace(/\.png$/, '-chart.png') });
  await browser.close();
})();
