// A run state's name, for the run list and the run page (one module, so that
// neither imports the other).

import { TrainingRunState } from "../gen/tunixrt/v1/training_pb";

export function stateName(state: TrainingRunState): string {
  return TrainingRunState[state] ?? String(state);
}
