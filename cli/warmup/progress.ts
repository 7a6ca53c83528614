// Reading `juicefs warmup` as it runs, and showing it. The client's own output (juicedata/juicefs
// cmd/warmup.go, pkg/utils/progress.go), on the terminal pods/exec gives it (tty=true: without a
// terminal the client shows no progress at all):
//   - two spinner lines redrawn in place (mpb: cursor up, clear, redraw):
//       "warmup file: 12  3.4/s ⠋"   and   "warmup size: 1.2 MiB (1258291 Bytes)  300.0 KiB/s ⠋"
//   - log lines "<time> juicefs[<pid>] <LEVEL>: <message> [file.go:NN]"; at the end
//       "warmup: 12 files (1.2 MiB bytes)", or with --background "warmup for 3 paths in background",
//     or a failure as <FATAL> / <ERROR>.
// The terminal turns "\n" into "\r\n"; ANSI sequences are dropped before parsing.

export interface WarmupProgress {
  files: number;
  bytes: number;
}

export interface WarmupOutcome extends WarmupProgress {
  /** The client's closing line ("warmup: 12 files (1.2 MiB bytes)"), if it printed one. */
  summary?: string;
  background: boolean;
  /** WARNING/ERROR/FATAL log lines and any other line that is not progress, in order. */
  messages: string[];
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what is matched.
const ansi = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;
const fileRe = /warmup file:\s*(\d+)/;
const sizeRe = /warmup size:.*?\((\d+) Bytes\)/;
const logRe = /<(DEBUG|INFO|WARNING|WARN|ERROR|FATAL)>:\s*(.*?)(?:\s+\[[\w./-]+:\d+\])?$/;
const summaryRe = /^warmup: (\d+) files \((.+) bytes\)$/;
const backgroundRe = /^warmup for \d+ paths in background$/;

/** Incremental parser of the client's terminal output. */
export class WarmupOutputParser {
  readonly outcome: WarmupOutcome = { files: 0, bytes: 0, background: false, messages: [] };
  private rest = "";
  private readonly onProgress: ((p: WarmupProgress) => void) | undefined;
  private readonly onMessage: ((line: string) => void) | undefined;

  constructor(o: { onProgress?: (p: WarmupProgress) => void; onMessage?: (line: string) => void } = {}) {
    this.onProgress = o.onProgress;
    this.onMessage = o.onMessage;
  }

  push(chunk: Buffer | string): void {
    const text = this.rest + chunk.toString();
    const lines = text.split(/\r\n|\r|\n/);
    this.rest = lines.pop() ?? "";
    for (const l of lines) this.line(l);
  }

  end(): WarmupOutcome {
    if (this.rest) this.line(this.rest);
    this.rest = "";
    return this.outcome;
  }

  private line(raw: string): void {
    const l = raw.replace(ansi, "").trim();
    if (!l) return;
    const o = this.outcome;
    const f = fileRe.exec(l);
    const s = sizeRe.exec(l);
    if (f || s) {
      if (f) o.files = Math.max(o.files, Number(f[1]));
      if (s) o.bytes = Math.max(o.bytes, Number(s[1]));
      this.onProgress?.({ files: o.files, bytes: o.bytes });
      return;
    }
    const m = logRe.exec(l);
    if (m) {
      const msg = m[2]!;
      const sum = summaryRe.exec(msg);
      if (sum) {
        o.summary = msg;
        o.files = Number(sum[1]);
        return;
      }
      if (backgroundRe.test(msg)) {
        o.background = true;
        o.summary = msg;
        return;
      }
      if (m[1] === "INFO" || m[1] === "DEBUG") return;
      o.messages.push(`${m[1]}: ${msg}`);
      this.onMessage?.(`${m[1]}: ${msg}`);
      return;
    }
    o.messages.push(l);
    this.onMessage?.(l);
  }
}

/** Sizes as the JuiceFS client prints them (humanize.IBytes): "512 B", "1.5 KiB", "12 MiB". */
export function iBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1024)), units.length - 1);
  const val = Math.floor((n / 1024 ** e) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : val.toFixed(0)} ${units[e]}`;
}

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Shows the progress of one client: on a terminal one line redrawn in place (an activity bar: the
 * client does not know the total before it is done, so files, bytes and throughput, no percentage);
 * otherwise a plain line at most every `intervalMs` while the counters move.
 */
export class ProgressView {
  private frame = 0;
  private lastPlain = 0;
  private lastShown = "";
  private drawn = false;
  private readonly started = Date.now();
  private readonly o: {
    label: string;
    tty: boolean;
    write: (s: string) => void;
    intervalMs?: number | undefined;
    now?: () => number;
  };
  constructor(o: ProgressView["o"]) {
    this.o = o;
  }

  private rate(bytes: number): string {
    const secs = Math.max(((this.o.now?.() ?? Date.now()) - this.started) / 1000, 0.001);
    return `${iBytes(Math.round(bytes / secs))}/s`;
  }

  update(p: WarmupProgress): void {
    const counters = `${p.files} files, ${iBytes(p.bytes)}`;
    if (this.o.tty) {
      const glyph = spinner[this.frame++ % spinner.length];
      this.o.write(`\r\x1b[2K${glyph} ${this.o.label}: ${counters}  ${this.rate(p.bytes)}`);
      this.drawn = true;
      return;
    }
    const now = this.o.now?.() ?? Date.now();
    if (counters === this.lastShown || now - this.lastPlain < (this.o.intervalMs ?? 5000)) return;
    this.lastPlain = now;
    this.lastShown = counters;
    this.o.write(`${this.o.label}: ${counters} so far\n`);
  }

  /** A line that must not be overwritten (a warning from the client). */
  message(line: string): void {
    if (this.o.tty && this.drawn) this.o.write("\r\x1b[2K");
    this.o.write(`${this.o.label}: ${line}\n`);
  }

  /** Clears the bar before the summary line. */
  done(): void {
    if (this.o.tty && this.drawn) this.o.write("\r\x1b[2K");
    this.drawn = false;
  }

  elapsed(): string {
    return `${(((this.o.now?.() ?? Date.now()) - this.started) / 1000).toFixed(1)} s`;
  }
}
