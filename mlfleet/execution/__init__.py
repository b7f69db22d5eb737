"""Ray: starting or joining it, warming workers, submitting tasks, the multi-node guard, progress."""
