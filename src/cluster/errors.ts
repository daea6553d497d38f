// Failure modes of the cluster's Kafka side (ownership, journal writer): one class per mode with
// a fixed name. The first three make a request fail while a partition moves (UNAVAILABLE: the
// client retries, on any node); ClusterConfigError refuses the node's start.
import { RuntimeError } from '../runtime/errors.js';

/** Another node took the partition (its InitProducerId fenced this writer: code 47). */
export class PartitionFencedError extends RuntimeError {
  override readonly name = 'PartitionFencedError';
}

/** A journal transaction failed (or the writer is closed or dead): the commit is not applied. */
export class JournalWriteError extends RuntimeError {
  override readonly name = 'JournalWriteError';
}

/** take() of a generation that is no longer current, or of a partition no longer assigned. */
export class PartitionMovedError extends RuntimeError {
  override readonly name = 'PartitionMovedError';
}

/** The cluster's topics (or the options) do not match what this node was started with. */
export class ClusterConfigError extends RuntimeError {
  override readonly name = 'ClusterConfigError';
}
