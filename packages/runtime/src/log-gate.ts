/**
 * At most one log line per `intervalMs` for something a peer or an outage can repeat without end (refused input,
 * a backend away): `due()` says whether to log now, and how many were left out since the last line.
 */
export class LogGate {
  private last = -Infinity;
  private leftOut = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** When a line is due: how many were left out since the last one (the caller logs). Else undefined, counted. */
  due(): number | undefined {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.leftOut++;
      return undefined;
    }
    this.last = t;
    const n = this.leftOut;
    this.leftOut = 0;
    return n;
  }
}
