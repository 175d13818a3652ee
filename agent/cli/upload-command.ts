import path from 'node:path';
import type { Logger } from 'pino';
import { formatSize } from '../../common/config/index.js';
import { UploadError } from '../../common/errors/upload-error.js';
import { escapeRefusedCharacters } from '../../common/protocol/relative-path.js';
import type { AgentProblem } from '../app/agent-controller.js';
import type { FailedEvent } from '../engine/upload-events.js';
import { listUpload, type ListedFile, type SkippedEntry } from '../watcher/bag-listing.js';
import type { HeldFile, VerifiedFile } from '../app/upload-agent.js';
import { exitCodeOf, exitCodes } from './exit-codes.js';
import type { Invocation } from './invocation.js';
import { startProgramAgent } from './program-agent.js';
import { plainProgress, ttyProgress } from './progress-output.js';
import { onStopSignal } from './shutdown.js';

/**
 * The one-shot upload keeps its own journal in this subfolder of the state directory, so it
 * can run while a `watch` daemon holds the state directory, and an interrupted run resumes.
 */
export const UPLOAD_COMMAND_STATE = 'upload-command';

/**
 * `upload <file or bag folder>...`: uploads once and exits 0 only when the server verified
 * every file (1 when some failed). Bag folders go split by split, metadata.yaml last. Progress
 * bars on a terminal, plain lines otherwise. Something that stops every upload until it is
 * fixed ends the command at once with its exit code: a full state disk 73, a refused server
 * certificate 78 (a daemon would wait; a one-shot command must not wait forever). Running the
 * same command again resumes.
 */
export async function uploadCommand(
  invocation: Invocation,
  logger: Logger,
  out: NodeJS.WriteStream | NodeJS.WritableStream,
): Promise<number> {
  const files: ListedFile[] = [];
  const skipped = new Map<string, SkippedEntry>();
  for (const input of invocation.paths) {
    const listing = await listUpload(input, { allFiles: true });
    files.push(...listing.files);
    for (const entry of listing.skipped) skipped.set(entry.path, entry);
  }
  const unique = new Map(files.map((file) => [file.path, file]));
  if (unique.size === 0 && ![...skipped.values()].some((entry) => entry.counts)) {
    const why = [...skipped.values()].map((entry) => `\n  skipped ${entry.path}: ${entry.reason}`).join('');
    throw new UploadError('LOCAL_FILE_NOT_FOUND', `Nothing to upload in ${invocation.paths.join(' ')}${why}`);
  }
  const config = {
    ...invocation.config,
    watchDir: undefined,
    stateDir: path.join(invocation.config.stateDir, UPLOAD_COMMAND_STATE),
  };
  const started = await startProgramAgent(config, logger, {
    command: 'upload',
    userStateDir: invocation.config.stateDir,
  });
  const { agent } = started;
  const progress = 'isTTY' in out && out.isTTY ? ttyProgress(out) : plainProgress(out);
  if (started.server) {
    progress.line(
      'no server given (--server-url): uploading to the bundled server on this machine, which stores the files ' +
        `in ${started.server.storageRoot}`,
    );
  }
  agent.engine.on('offline', ({ reason }) =>
    progress.line(`server unreachable (${reason}): waiting for it; Ctrl-C stops, and the same command resumes`),
  );
  agent.engine.on('online', () => progress.line('server reachable again: going on'));
  // What is not uploaded at all (a link inside a folder, a name the server cannot store) is said first.
  for (const entry of skipped.values()) progress.line(`skipped ${entry.path}: ${entry.reason}`);
  const unsendable = [...skipped.values()].filter((entry) => entry.counts).length;
  // What happened to each listed file, for the lines and the exit code; when to stop is the agent's onIdle().
  const verified = new Set<string>();
  const failed = new Map<string, string>();
  const ignored = (file: string): boolean => !unique.has(file) || verified.has(file);
  agent.onChange((upload) => upload && unique.has(upload.localPath) && progress.update(upload));
  agent.on('verified', (file: VerifiedFile) => {
    if (ignored(file.localPath)) return;
    verified.add(file.localPath);
    failed.delete(file.localPath);
    progress.line(
      `verified ${file.remotePath} (${formatSize(file.size)}) sha256 ` +
        `${file.sha256}${file.deduplicated ? ' (already on the server)' : ''}`,
    );
  });
  agent.on('failed', (event: FailedEvent) => {
    if (ignored(event.upload.localPath)) return;
    failed.set(event.upload.localPath, event.reason);
    progress.line(`failed ${event.upload.remotePath}: ${event.reason}`);
  });
  // A metadata.yaml held back by a failed split is said once, at the end, with the others.
  const held = new Map<string, HeldFile>();
  agent.on('held', (file: HeldFile) => {
    if (ignored(file.localPath)) return;
    // A metadata.yaml held back by a failed split is said once, at the end (its failure was said);
    // a file refused for its name, and a metadata.yaml held back by one, at once.
    if (/^it goes after .*, which failed/s.test(file.reason)) {
      held.set(file.localPath, file);
      return;
    }
    failed.set(file.localPath, file.reason);
    // The name may hold the very characters it was refused for (a bidi override): print them escaped.
    progress.line(`not sent ${escapeRefusedCharacters(file.remotePath)}: ${file.reason}`);
  });
  const interrupted = onStopSignal(async () => {
    progress.close();
    await started.controller.stop();
  }, logger).then((code) => ({ interrupted: true as const, code }));
  const blocked = new Promise<AgentProblem>((resolve) => {
    agent.once('problem', resolve);
    const known = agent.status().problems[0];
    if (known) resolve(known);
  }).then((problem) => ({ interrupted: false as const, problem }));
  for (const input of invocation.paths) {
    const result = await agent.enqueue(input);
    if (!result.accepted) progress.line(`not queued: ${result.message}`);
  }
  // Idle: every upload verified or failed, nothing retrying or waiting for the network, no
  // metadata.yaml still to follow its bag (one held back by a failed split does not count).
  const outcome = await Promise.race([
    agent.onIdle().then(() => ({ interrupted: false as const, code: 0 })),
    interrupted,
    blocked,
  ]);
  const notVerified = unique.size - verified.size + unsendable;
  if ('problem' in outcome) {
    progress.close();
    await started.controller.stop();
    progress.line(
      `stopped: ${outcome.problem.message}; ${verified.size} of ${unique.size} file(s) verified, ` +
        'run the same command again once it is fixed',
    );
    return exitCodeOf(new UploadError(outcome.problem.code, outcome.problem.message));
  }
  if (outcome.interrupted) {
    progress.line(
      `interrupted: ${notVerified} of ${unique.size} file(s) not verified yet; run the same command again to resume`,
    );
    return exitCodes.UPLOAD_FAILED;
  }
  progress.close();
  await started.controller.stop();
  const notSent = [...held.values()].filter((file) => !verified.has(file.localPath));
  if (notSent.length > 0) {
    progress.line(
      `not sent: ${notSent.map((file) => escapeRefusedCharacters(file.remotePath)).join(', ')} ` +
        "(a bag's metadata.yaml goes only after the rest of its bag, which failed)",
    );
  }
  const by = started.server ? `the bundled server on this machine (in ${started.server.storageRoot})` : 'the server';
  progress.line(
    `${verified.size} of ${unique.size + unsendable} file(s) verified by ${by}` +
      `${failed.size > 0 ? `, ${failed.size} failed` : ''}${notSent.length > 0 ? `, ${notSent.length} not sent` : ''}` +
      `${unsendable > 0 ? `, ${unsendable} cannot be uploaded (see "skipped" above)` : ''}`,
  );
  return notVerified === 0 ? exitCodes.OK : exitCodes.UPLOAD_FAILED;
}
