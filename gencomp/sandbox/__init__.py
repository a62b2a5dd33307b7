"""gencomp.sandbox: the import paths of theano.sandbox that classic programs use (rng_mrg)."""
