"""Several replicas on one store: who this replica is, and the lease that elects the one evaluator."""
