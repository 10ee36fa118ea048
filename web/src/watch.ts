// Follows a run's events live. A stream that breaks (a restart, a proxy, the
// server's stream limit) reconnects after the last event it delivered
// (after_sequence): no gaps, no repeats.

import { Code, ConnectError } from "@connectrpc/connect";
import { training } from "./rpc";
import type { TrainingEvent } from "./gen/tunixrt/v1/training_pb";

const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.Aborted]);

export async function follow(
  name: string,
  onEvent: (event: TrainingEvent) => void,
  signal: AbortSignal,
  onReconnect: (attempt: number) => void = () => {},
): Promise<void> {
  let after = 0n;
  let attempt = 0;
  while (!signal.aborted) {
    try {
      for await (const event of training.watchTrainingRun({ name, afterSequence: after }, { signal })) {
        after = event.sequence;
        attempt = 0;
        onEvent(event);
      }
      return; // the run ended and the server closed the stream
    } catch (err) {
      const e = ConnectError.from(err);
      if (signal.aborted || e.code === Code.Canceled || !RETRYABLE.has(e.code)) {
        if (!signal.aborted && e.code !== Code.Canceled) throw err;
        return;
      }
      attempt += 1;
      onReconnect(attempt);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt) * (0.5 + Math.random())));
    }
  }
}
