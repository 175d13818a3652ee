import { wireErrorCodes } from '../../../common/protocol/errors/wire-errors.js';
import type { FleetSnapshot, FleetUpdate, ViewerSession } from '../../../common/protocol/fleet-views.js';
import { bagKey, FleetState } from './fleet-state.js';
import { ago, bytes, clock, duration, rate } from './format.js';
import { KeyedTable } from './keyed-table.js';

/** How many bags are drawn at most; the filter narrows the rest down. */
const BAGS_DRAWN = 300;

/** What the page measures about itself (read by the browser tests and the benchmark). */
interface PageStats {
  firstRenderMs: number | undefined;
  renders: number;
  lastRenderMs: number;
  maxRenderMs: number;
  totalRenderMs: number;
  messages: number;
  connected: boolean;
}
const stats: PageStats = {
  firstRenderMs: undefined,
  renders: 0,
  lastRenderMs: 0,
  maxRenderMs: 0,
  totalRenderMs: 0,
  messages: 0,
  connected: false,
};
(window as unknown as { dashboardStats: PageStats }).dashboardStats = stats;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

const state = new FleetState();
const meaning = (code: string): string =>
  (wireErrorCodes as Record<string, string>)[code] ?? 'an error this page does not know';

const robots = new KeyedTable(
  element<HTMLTableElement>('robots'),
  (robot: FleetSnapshot['robots'][number]) => robot.uploader,
  (robot) => [
    { text: robot.uploader, className: 'name' },
    { text: robot.online ? 'online' : 'offline', className: robot.online ? 'badge ok' : 'badge off' },
    { text: ago(robot.lastSeen, state.now()), title: robot.lastSeen ?? '' },
    { text: bytes(robot.bytesToday), className: 'num' },
    { text: String(robot.filesToday), className: 'num' },
    { text: rate(robot.rate), className: 'num' },
    { text: String(robot.errorsLastHour), className: robot.errorsLastHour > 0 ? 'num warn' : 'num' },
    { text: String(robot.uploading), className: 'num' },
  ],
);

const uploads = new KeyedTable(
  element<HTMLTableElement>('uploads'),
  (upload: FleetSnapshot['uploads'][number]) => upload.id,
  (upload) => [
    { text: upload.uploader, className: 'name' },
    { text: upload.path, className: 'path' },
    {
      text: `${Math.floor((100 * upload.receivedBytes) / Math.max(1, upload.size))}% of ${bytes(upload.size)}`,
      progress: { value: upload.receivedBytes, max: Math.max(1, upload.size) },
      className: 'progress',
    },
    { text: rate(upload.rate), className: 'num' },
    { text: duration(upload.etaSeconds), className: 'num' },
    { text: upload.state, className: `badge ${upload.state}` },
  ],
);

const bags = new KeyedTable(
  element<HTMLTableElement>('bags'),
  bagKey,
  (bag: FleetSnapshot['bags'][number]) => [
    { text: bag.uploader, className: 'name' },
    { text: bag.bag, className: 'path' },
    {
      text: bag.complete ? 'complete' : bag.metadataError ? 'unreadable metadata' : 'incomplete',
      className: `badge ${bag.complete ? 'complete' : 'incomplete'}`,
      title: bag.metadataError ?? '',
    },
    { text: bag.expected === null ? `${bag.files} / ?` : `${bag.arrived} / ${bag.expected}`, className: 'num' },
    {
      text: bag.complete ? '' : bag.expected === null ? 'metadata.yaml not here yet' : missingText(bag),
      className: 'missing',
    },
    { text: bytes(bag.bytes), className: 'num' },
    { text: ago(bag.updatedAt, state.now()), title: bag.updatedAt },
  ],
  (bag) => (bag.complete ? 'complete' : 'incomplete'),
);

/** The splits a bag still lacks, the first few by name. */
function missingText(bag: FleetSnapshot['bags'][number]): string {
  const more = bag.missingCount - bag.missing.length;
  return `${bag.missing.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

const completions = new KeyedTable(
  element<HTMLTableElement>('completions'),
  (c: FleetSnapshot['completions'][number]) => `${c.uploader}/${c.path}/${c.completedAt}`,
  (c) => [
    { text: clock(c.completedAt), title: c.completedAt },
    { text: c.uploader, className: 'name' },
    { text: c.path, className: 'path', title: `sha256 ${c.sha256}` },
    { text: bytes(c.size), className: 'num' },
  ],
);

const failures = new KeyedTable(
  element<HTMLTableElement>('failures'),
  (f: FleetSnapshot['failures'][number]) => String(f.id),
  (f) => [
    { text: clock(f.at), title: f.at },
    { text: f.uploader ?? '(no valid token)', className: 'name' },
    { text: f.code, className: 'badge code', title: `HTTP ${f.status}` },
    { text: `${meaning(f.code)}: ${f.message}`, className: 'message', title: f.route },
  ],
);

const bagFilter = element<HTMLSelectElement>('bag-filter');
const bagSearch = element<HTMLInputElement>('bag-search');
const redrawBags = (): void => {
  state.dirty.add('bags');
  schedule();
};
bagFilter.addEventListener('change', redrawBags);
bagSearch.addEventListener('input', redrawBags);

/** The 5-second clock ran since the last render: texts like "5 s ago" need redrawing. */
let clockTicked = false;
let frame = 0;
/** Renders at most once per animation frame, however many messages arrived. */
function schedule(): void {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function render(): void {
  const started = performance.now();
  const server = state.server;
  if (server) {
    element('server-info').textContent =
      `version ${server.version} · up ${duration(server.uptimeSeconds)} · ` +
      `${server.freeBytes === null ? 'free space unknown' : `${bytes(server.freeBytes)} free`} · ` +
      `bags ${server.bags.complete} complete, ${server.bags.incomplete} incomplete`;
  }
  // Only what changed is drawn again: with 500 robots and thousands of bags, an upload's
  // progress must not cost a pass over every robot and bag.
  const dirty = new Set(state.dirty);
  state.dirty.clear();
  const aged = clockTicked;
  clockTicked = false;
  if (dirty.has('robots')) renderRobots(aged);
  if (dirty.has('uploads')) renderUploads();
  if (dirty.has('bags')) renderBags(aged);
  if (dirty.has('completions')) completions.render(state.completions);
  if (dirty.has('failures')) failures.render(state.failures);

  const spent = performance.now() - started;
  stats.renders += 1;
  stats.lastRenderMs = spent;
  stats.totalRenderMs += spent;
  stats.maxRenderMs = Math.max(stats.maxRenderMs, spent);
  if (stats.firstRenderMs === undefined) stats.firstRenderMs = performance.now();
}

function renderRobots(refill: boolean): void {
  const robotList = [...state.robots.values()];
  robots.render(robotList, refill);
  const online = robotList.filter((robot) => robot.online).length;
  element('robots-summary').textContent = `${online} of ${robotList.length} online`;
}

function renderUploads(): void {
  const uploadList = [...state.uploads.values()].sort(
    (a, b) => order(a.state) - order(b.state) || a.uploader.localeCompare(b.uploader) || a.path.localeCompare(b.path),
  );
  uploads.render(uploadList);
  element('uploads-summary').textContent = `${uploadList.length}`;
}

function renderBags(refill: boolean): void {
  const filter = bagFilter.value;
  const search = bagSearch.value.trim().toLowerCase();
  const matching = [...state.bags.values()].filter(
    (bag) =>
      (filter === 'all' || (filter === 'complete') === bag.complete) &&
      (search === '' || bag.uploader.toLowerCase().includes(search) || bag.bag.toLowerCase().includes(search)),
  );
  matching.sort(
    (a, b) =>
      Number(a.complete) - Number(b.complete) || (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0),
  );
  bags.render(matching.slice(0, BAGS_DRAWN), refill);
  element('bags-summary').textContent = `${state.bags.size}`;
  element('bags-more').textContent =
    matching.length > BAGS_DRAWN
      ? `Showing ${BAGS_DRAWN} of ${matching.length}: narrow them down with the filter.`
      : '';
}

function order(state: string): number {
  return state === 'completing' ? 0 : state === 'receiving' ? 1 : 2;
}

// ---- connection -----------------------------------------------------------------------------

let source: EventSource | undefined;

function setConnection(text: string, live: boolean): void {
  const node = element('connection');
  node.textContent = text;
  node.className = `connection ${live ? 'live' : 'down'}`;
  stats.connected = live;
}

function connect(): void {
  source?.close();
  const events = new EventSource('../v1/events');
  source = events;
  setConnection('connecting…', false);
  const onMessage = (event: MessageEvent<string>): void => {
    stats.messages += 1;
    state.apply(JSON.parse(event.data) as FleetSnapshot | FleetUpdate);
    setConnection('live', true);
    schedule();
  };
  events.addEventListener('snapshot', onMessage);
  events.addEventListener('update', onMessage);
  events.addEventListener('error', () => {
    // The browser reconnects by itself (the server's retry: 2 s); a refusal (signed out,
    // login expired) closes the stream for good: ask whether a login is needed.
    setConnection('reconnecting…', false);
    if (events.readyState === EventSource.CLOSED) setTimeout(() => void start(), 2000);
  });
}

async function start(): Promise<void> {
  let answer: Response;
  try {
    answer = await fetch('../v1/dashboard/session', { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    setConnection('server unreachable, retrying…', false);
    setTimeout(() => void start(), 3000);
    return;
  }
  if (answer.status === 401) {
    showLogin();
    return;
  }
  if (!answer.ok) {
    setConnection(`server answered ${answer.status}, retrying…`, false);
    setTimeout(() => void start(), 3000);
    return;
  }
  const session = (await answer.json()) as ViewerSession;
  showFleet(session);
  connect();
}

// ---- login ----------------------------------------------------------------------------------

function showLogin(): void {
  source?.close();
  element('fleet').hidden = true;
  element('login').hidden = false;
  element('viewer').textContent = '';
  setConnection('signed out', false);
  element<HTMLInputElement>('token').focus();
}

function showFleet(session: ViewerSession): void {
  element('login').hidden = true;
  element('fleet').hidden = false;
  const viewer = element('viewer');
  viewer.textContent = session.open ? 'open server' : `${session.viewer} · `;
  if (!session.open) {
    const logout = document.createElement('button');
    logout.type = 'button';
    logout.id = 'logout';
    logout.textContent = 'Sign out';
    logout.addEventListener('click', () => {
      void fetch('../v1/dashboard/logout', { method: 'POST', credentials: 'same-origin' }).then(() => showLogin());
    });
    viewer.append(logout);
  }
}

element<HTMLFormElement>('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = element<HTMLInputElement>('token');
  const error = element('login-error');
  error.textContent = '';
  void fetch('../v1/dashboard/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: input.value }),
  }).then(async (answer) => {
    input.value = '';
    if (answer.ok) {
      await start();
      return;
    }
    const body = (await answer.json().catch(() => ({}))) as { error?: string };
    error.textContent = body.error ?? `The server answered ${answer.status}`;
  });
});

// "ago" texts (robots' last seen, bags' last change) age between messages too.
setInterval(() => {
  clockTicked = true;
  state.dirty.add('robots');
  state.dirty.add('bags');
  schedule();
}, 5000);
void start();
