import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { launchChromium } from '../../test/helpers/browser.js';
import type { Benchmark, BenchContext, BenchResult } from '../support/benchmark.js';
import { makeTempDir, removeTempDir } from '../support/cleanup.js';
import { statusKiB } from '../support/proc-usage.js';
import { type ServerProgram, startServerProgram } from '../support/processes.js';
import { fig } from '../support/units.js';

const ROBOTS = 500;
const FULL_BAGS_PER_ROBOT = 10;
const QUICK_BAGS_PER_ROBOT = 2;
const VIEWER_TOKEN = 'bench-viewer-token-0123456789abcdef0123456789-0001';
/** Uploads in flight at once while seeding and under load. */
const PARALLEL = 16;

/** The page's counters (server/dashboard-page/src/main.ts). */
interface PageStats {
  firstRenderMs: number | undefined;
  renders: number;
  maxRenderMs: number;
  totalRenderMs: number;
  messages: number;
}
/** The page's globals, as seen by the callbacks that run inside Chromium (no DOM typings here). */
declare const window: { dashboardStats: PageStats };

/**
 * The live dashboard's cost with a large fleet: ROBOTS uploaders, each with bags (half complete,
 * half missing a split), then a steady trickle of small files from every robot. Measured: server
 * CPU and RSS under that load without and with a dashboard page open (headless Chromium, signed
 * in, on the event stream), the cost of a /metrics scrape, and in the page: time to first render
 * and the cost of each render (updates coalesced per frame).
 */
export const dashboard: Benchmark = {
  name: 'dashboard',
  summary:
    `${ROBOTS} robots, ${ROBOTS * FULL_BAGS_PER_ROBOT} bags: ` +
    'server CPU/RSS with and without a page, /metrics, page render cost',
  async run({ args, say }: BenchContext): Promise<BenchResult> {
    const bagsPerRobot = args.quick ? QUICK_BAGS_PER_ROBOT : FULL_BAGS_PER_ROBOT;
    const loadSeconds = args.duration ?? (args.quick ? 10 : 30);
    const dir = await makeTempDir('dashboard');
    const tokens = Array.from({ length: ROBOTS }, (_, i) => ({
      robot: `robot-${String(i).padStart(3, '0')}`,
      token: randomBytes(16).toString('hex'),
    }));
    let server: ServerProgram | undefined;
    try {
      server = await startServerProgram(path.join(dir, 'server'), ['--no-rate-limit'], {
        reportDir: dir,
        env: {
          UPLOAD_SERVER_TOKENS: tokens.map((t) => `${t.robot}=${t.token}`).join(','),
          UPLOAD_SERVER_VIEWER_TOKENS: `ops=${VIEWER_TOKEN}`,
        },
      });
      const url = server.url;
      const put = async (token: string, remote: string, body: Buffer): Promise<void> => {
        const answer = await fetch(`${url}/v1/files/${remote}`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/octet-stream',
            'x-content-sha256': createHash('sha256').update(body).digest('hex'),
          },
          body,
        });
        if (answer.status !== 201 && answer.status !== 200)
          throw new Error(`PUT ${remote}: ${answer.status} ${await answer.text()}`);
      };
      const run = async (jobs: (() => Promise<void>)[]): Promise<void> => {
        let next = 0;
        await Promise.all(
          Array.from({ length: PARALLEL }, async () => {
            while (next < jobs.length) await jobs[next++]?.();
          }),
        );
      };

      // Seed: every robot's bags; even ones complete, odd ones missing their second split.
      const seedStart = performance.now();
      const seed: (() => Promise<void>)[] = [];
      for (const { robot, token } of tokens)
        for (let b = 0; b < bagsPerRobot; b += 1) {
          const bag = `${robot}_bag${b}`;
          const listed = b % 2 === 0 ? [`${bag}_0.mcap`] : [`${bag}_0.mcap`, `${bag}_1.mcap`];
          const metadata = `rosbag2_bagfile_information:\n  version: 5\n  relative_file_paths:\n${listed
            .map((file) => `    - ${file}\n`)
            .join('')}`;
          seed.push(() => put(token, `${bag}/${bag}_0.mcap`, randomBytes(1024)));
          seed.push(() => put(token, `${bag}/metadata.yaml`, Buffer.from(metadata)));
        }
      await run(seed);
      const bags = ROBOTS * bagsPerRobot;
      say(
        `seeded ${ROBOTS} robots, ${bags} bags (${seed.length} files) ` +
          `in ${fig((performance.now() - seedStart) / 1000)} s`,
      );

      /** Every robot sends one small file over `seconds`; server CPU and RSS over that window. */
      const steady = async (label: string): Promise<{ cpuPercent: number; rssMiB: number; files: number }> => {
        const pid = server?.handle.pid ?? 0;
        const cpuBefore = server?.handle.cpuSeconds() ?? 0;
        const started = performance.now();
        const jobs = tokens.map(({ robot, token }, i) => async () => {
          const due = started + (i / ROBOTS) * loadSeconds * 1000;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          await put(token, `live-${label}/${robot}.bin`, randomBytes(4096));
        });
        await run(jobs);
        const seconds = (performance.now() - started) / 1000;
        const cpu = (server?.handle.cpuSeconds() ?? 0) - cpuBefore;
        return { cpuPercent: (100 * cpu) / seconds, rssMiB: (statusKiB(pid, 'VmRSS') ?? 0) / 1024, files: jobs.length };
      };

      const without = await steady('without-page');
      say(
        `no page: ${without.files} files over ${loadSeconds} s: server CPU ${fig(without.cpuPercent)} %, ` +
          `RSS ${fig(without.rssMiB)} MiB`,
      );

      // /metrics: the cost of one scrape.
      const scrapes = 20;
      const cpuBefore = server.handle.cpuSeconds() ?? 0;
      const scrapeStart = performance.now();
      let metricsBytes = 0;
      for (let i = 0; i < scrapes; i += 1) {
        const answer = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
        metricsBytes = (await answer.text()).length;
      }
      const scrapeMs = (performance.now() - scrapeStart) / scrapes;
      const scrapeCpuMs = (((server.handle.cpuSeconds() ?? 0) - cpuBefore) * 1000) / scrapes;
      say(
        `/metrics: ${fig(metricsBytes / 1024)} KiB, ${fig(scrapeMs)} ms per scrape, ${fig(scrapeCpuMs)} ms server CPU`,
      );

      // The page: sign in, wait for the first render of the whole fleet, then the same load.
      const browser = await launchChromium();
      try {
        const { page } = browser;
        const navigated = performance.now();
        await page.goto(`${url}/`);
        await page.locator('#token').waitFor({ state: 'visible' });
        await page.fill('#token', VIEWER_TOKEN);
        await page.click('#login-form button');
        await page
          .locator('#robots tbody tr')
          .nth(ROBOTS - 1)
          .waitFor({ timeout: 120_000 });
        const shown = performance.now() - navigated;
        const first = await page.evaluate(() => window.dashboardStats);
        say(
          `page: fleet drawn ${fig(shown)} ms after navigation (first render took ${fig(first.maxRenderMs)} ms ` +
            `in the page)`,
        );
        const withPage = await steady('with-page');
        const stats = await page.evaluate(() => window.dashboardStats);
        const renders = stats.renders - first.renders;
        const perRender = renders > 0 ? (stats.totalRenderMs - first.totalRenderMs) / renders : 0;
        say(
          `page open: server CPU ${fig(withPage.cpuPercent)} %, RSS ${fig(withPage.rssMiB)} MiB; page: ` +
            `${stats.messages - first.messages} messages, ${renders} renders, ${fig(perRender)} ms per render ` +
            `(max ${fig(stats.maxRenderMs)} ms)`,
        );
        return {
          figures: {
            robots: ROBOTS,
            bags,
            window_seconds: loadSeconds,
            server_cpu_percent_without_page: without.cpuPercent,
            server_cpu_percent_with_page: withPage.cpuPercent,
            server_rss_mib_without_page: without.rssMiB,
            server_rss_mib_with_page: withPage.rssMiB,
            metrics_scrape_ms: scrapeMs,
            metrics_scrape_cpu_ms: scrapeCpuMs,
            metrics_kib: metricsBytes / 1024,
            page_fleet_drawn_ms: shown,
            page_first_render_ms: first.maxRenderMs,
            page_ms_per_render: perRender,
            page_max_render_ms: stats.maxRenderMs,
            page_renders: renders,
          },
          targets: {
            page_first_render_ms: { value: first.maxRenderMs, op: '<=', limit: 1000, unit: 'ms' },
            page_ms_per_render: { value: perRender, op: '<=', limit: 16, unit: 'ms' },
          },
          row: {
            Robots: `${ROBOTS}`,
            Bags: `${bags}`,
            'Server CPU no page / page': `${fig(without.cpuPercent)} / ${fig(withPage.cpuPercent)} %`,
            'Server RSS no page / page': `${fig(without.rssMiB)} / ${fig(withPage.rssMiB)} MiB`,
            '/metrics': `${fig(scrapeMs)} ms, ${fig(scrapeCpuMs)} ms CPU`,
            'Page first render': `${fig(first.maxRenderMs)} ms (drawn ${fig(shown)} ms)`,
            'Per render': `${fig(perRender)} ms (max ${fig(stats.maxRenderMs)})`,
          },
        };
      } finally {
        await browser.close();
      }
    } finally {
      await server?.stop();
      await removeTempDir(dir);
    }
  },
};
