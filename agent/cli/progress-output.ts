import { formatDuration, formatSize } from '../../common/config/index.js';
import type { UploadSnapshot } from '../engine/upload-events.js';

/** How `upload` reports: bars redrawn in place on a terminal, one plain line per event otherwise. */
export interface ProgressOutput {
  update(upload: UploadSnapshot): void;
  line(text: string): void;
  /** Stop redrawing; leaves the final state on screen. */
  close(): void;
}

/** One line per state change (queued, uploading, retrying, verified, failed): for logs and pipes. */
export function plainProgress(out: NodeJS.WritableStream): ProgressOutput {
  const last = new Map<string, string>();
  return {
    update(upload) {
      if (upload.state === 'completed') return; // reported by line() once verified
      const previous = last.get(upload.id);
      if (previous === upload.state) return;
      last.set(upload.id, upload.state);
      const extra = upload.state === 'retrying' || upload.state === 'failed' ? `: ${upload.lastError ?? ''}` : '';
      out.write(`${upload.state} ${upload.remotePath} (${formatSize(upload.bytesTotal)})${extra}\n`);
    },
    line(text) {
      out.write(`${text}\n`);
    },
    close() {},
  };
}

const BAR = 24;

/** Progress bars for the uploads in flight, redrawn at most 5 times a second. */
export function ttyProgress(out: NodeJS.WriteStream): ProgressOutput {
  const active = new Map<string, UploadSnapshot>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const clear = (): void => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = (): void => {
    timer = undefined;
    clear();
    const width = out.columns ?? 100;
    const rows = [...active.values()].map((upload) => {
      const fraction =
        upload.bytesTotal > 0
          ? Math.min(1, upload.bytesSent / upload.bytesTotal)
          : upload.state === 'uploading'
            ? 0
            : 1;
      const filled = Math.round(fraction * BAR);
      const rate = upload.rate > 0 ? ` ${formatSize(upload.rate)}/s` : '';
      const eta = upload.etaSeconds !== undefined ? ` ETA ${formatDuration(upload.etaSeconds)}` : '';
      const state = upload.state === 'uploading' ? '' : ` ${upload.state}`;
      const text =
        `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ` +
        `${String(Math.floor(fraction * 100)).padStart(3)}% ${upload.remotePath}${rate}${eta}${state}`;
      return text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text;
    });
    if (rows.length > 0) out.write(`${rows.join('\n')}\n`);
    drawn = rows.length;
  };
  const schedule = (): void => {
    timer ??= setTimeout(draw, 200);
  };
  return {
    update(upload) {
      if (upload.state === 'completed' || upload.state === 'failed') active.delete(upload.id);
      else if (upload.state !== 'waiting_for_close') active.set(upload.id, upload);
      schedule();
    },
    line(text) {
      clear();
      out.write(`${text}\n`);
      schedule();
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
      clear();
    },
  };
}
